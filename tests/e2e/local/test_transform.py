"""``sagemaker-inference transform`` over generated data, against our server, compared with the model applied
record by record in this process."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.serverproc import ServerProcess

MODEL_SOURCE = Path(__file__).with_name("transform_model.py")
LINES = 10_000


def _reference():
    spec = importlib.util.spec_from_file_location("transform_reference", MODEL_SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _reference()


def model_dir(base: Path) -> Path:
    (base / "code").mkdir(parents=True)
    shutil.copy(MODEL_SOURCE, base / "code" / "inference.py")
    return base


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerProcess(["--model-dir", str(model_dir(tmp_path_factory.mktemp("tmodel") / "model")),
                        "--workers", "2"]) as process:
        yield process.wait_ready()


def transform(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    return subprocess.run([sys.executable, "-m", "sagemaker_inference", "transform", *args], capture_output=True,
                          text=True, timeout=300, env={**clean, **(env or {})})


def csv_lines(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [f"{i},{rng.randint(0, 99)},{rng.random():.4f},{rng.randint(-5, 5)}" for i in range(count)]


def json_lines(count: int, seed: int = 2) -> list[str]:
    rng = random.Random(seed)
    return [json.dumps({"id": i, "features": [rng.randint(0, 9), rng.random()]}) for i in range(count)]


def out_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.mark.parametrize("strategy", ["SingleRecord", "MultiRecord"])
def test_csv_lines_both_strategies_match_the_model_record_by_record(server, tmp_path, strategy):
    rows = csv_lines(LINES)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "data.csv").write_text("\n".join(rows) + "\n")
    done = transform("--endpoint-url", server.url, "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                     "--content-type", "text/csv", "--accept", "text/csv", "--split-type", "Line",
                     "--batch-strategy", strategy, "--assemble-with", "Line", "--max-concurrent-transforms", "4",
                     "--max-payload", "1")
    assert done.returncode == 0, done.stderr
    assert out_lines(tmp_path / "out" / "data.csv.out") == [reference._csv(row) for row in rows]
    assert f"records: {LINES}" in done.stderr
    assert strategy in done.stderr.splitlines()[0]


def test_gzip_json_lines_joined_with_the_input(server, tmp_path):
    rows = json_lines(LINES)
    (tmp_path / "in").mkdir()
    with gzip.open(tmp_path / "in" / "part-0.jsonl.gz", "wt") as f:
        f.write("\n".join(rows) + "\n")
    done = transform("--endpoint-url", server.url, "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                     "--content-type", "application/jsonlines", "--accept", "application/jsonlines",
                     "--split-type", "Line", "--compression-type", "Gzip", "--batch-strategy", "MultiRecord",
                     "--assemble-with", "Line", "--join-source", "Input", "--max-concurrent-transforms", "3")
    assert done.returncode == 0, done.stderr
    got = [json.loads(line) for line in out_lines(tmp_path / "out" / "part-0.jsonl.gz.out")]
    assert got == [{**json.loads(row), "SageMakerOutput": json.loads(reference._json(row))} for row in rows]


def test_csv_input_filter_join_and_output_filter(server, tmp_path):
    """SageMaker's classic: drop the id column for the model, join, keep the id and the prediction."""
    rows = csv_lines(LINES, seed=3)
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    done = transform("--endpoint-url", server.url, "--input", str(tmp_path / "data.csv"),
                     "--output", str(tmp_path / "out"), "--content-type", "text/csv", "--accept", "text/csv",
                     "--split-type", "Line", "--batch-strategy", "MultiRecord", "--assemble-with", "Line",
                     "--input-filter", "$[1:]", "--join-source", "Input", "--output-filter", "$[0,-1]")
    assert done.returncode == 0, done.stderr
    expected = [f"{row.split(',')[0]},{reference._csv(row.split(',', 1)[1])}" for row in rows]
    assert out_lines(tmp_path / "out" / "data.csv.out") == expected


def test_json_output_filter_on_the_joined_record(server, tmp_path):
    rows = json_lines(500, seed=4)
    (tmp_path / "data.jsonl").write_text("\n".join(rows) + "\n")
    done = transform("--endpoint-url", server.url, "--input", str(tmp_path / "data.jsonl"),
                     "--output", str(tmp_path / "out"), "--content-type", "application/jsonlines",
                     "--split-type", "Line", "--batch-strategy", "SingleRecord", "--assemble-with", "Line",
                     "--join-source", "Input", "--output-filter", "$['id','SageMakerOutput']")
    assert done.returncode == 0, done.stderr
    got = [json.loads(line) for line in out_lines(tmp_path / "out" / "data.jsonl.out")]
    assert got == [[json.loads(row)["id"], json.loads(reference._json(row))] for row in rows]


def test_failing_record_fails_its_object_only_and_resume_skips_completed(server, tmp_path):
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    good, bad = csv_lines(2000, seed=5), csv_lines(2000, seed=6)
    bad[1233] = "poison,1,2,3"
    (source / "good.csv").write_text("\n".join(good) + "\n")
    (source / "sub" / "bad.csv").write_text("\n".join(bad) + "\n")
    args = ["--endpoint-url", server.url, "--input", str(source), "--output", str(tmp_path / "out"),
            "--content-type", "text/csv", "--split-type", "Line", "--assemble-with", "Line",
            "--max-concurrent-transforms", "4"]
    failed = transform(*args)
    assert failed.returncode == 1
    assert "sub/bad.csv: record 1234: the container answered 400" in failed.stderr
    assert "poisoned record: poison,1,2,3" in failed.stderr
    assert not (tmp_path / "out" / "sub" / "bad.csv.out").exists()
    assert not list((tmp_path / "out").rglob("*.partial"))
    assert out_lines(tmp_path / "out" / "good.csv.out") == [reference._csv(row) for row in good]

    bad[1233] = "1233,1,2,3"
    (source / "sub" / "bad.csv").write_text("\n".join(bad) + "\n")
    resumed = transform(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert "good.csv: skipped" in resumed.stderr
    assert "1 transformed, 1 skipped, 0 failed" in resumed.stderr
    assert out_lines(tmp_path / "out" / "sub" / "bad.csv.out") == [reference._csv(row) for row in bad]
    forced = transform(*args, "--force")
    assert forced.returncode == 0 and "2 transformed, 0 skipped" in forced.stderr


def test_split_none_sends_each_object_whole_and_assembles_without_newlines(server, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    for i in range(5):
        (source / f"doc-{i}.csv").write_text("\n".join(csv_lines(20, seed=i)))
    done = transform("--endpoint-url", server.url, "--input", str(source), "--output", str(tmp_path / "out"),
                     "--content-type", "text/csv")
    assert done.returncode == 0, done.stderr
    for i in range(5):
        expected = "\n".join(reference._csv(row) for row in csv_lines(20, seed=i)) + "\n"
        assert (tmp_path / "out" / f"doc-{i}.csv.out").read_text() == expected


def recordio(payload: bytes) -> bytes:
    padding = b"\0" * ((4 - len(payload) % 4) % 4)
    return struct.pack("<II", 0xCED7230A, len(payload)) + payload + padding


def test_recordio_records_keep_their_framing_and_pack_in_multirecord(server, tmp_path):
    sizes = [random.Random(7).randint(1, 3000) for _ in range(300)]
    (tmp_path / "data.rec").write_bytes(b"".join(recordio(b"r" * n) for n in sizes))
    for strategy in ("SingleRecord", "MultiRecord"):
        done = transform("--endpoint-url", server.url, "--input", str(tmp_path / "data.rec"), "--output",
                         str(tmp_path / strategy), "--content-type", "application/x-recordio", "--split-type",
                         "RecordIO", "--batch-strategy", strategy, "--assemble-with", "Line", "--max-payload", "1")
        assert done.returncode == 0, done.stderr
        assert out_lines(tmp_path / strategy / "data.rec.out") == [str(n) for n in sizes]


def test_model_dir_starts_the_server_with_the_batch_environment_and_precedence(tmp_path):
    model = model_dir(tmp_path / "model")
    (tmp_path / "probe.txt").write_text("env?")
    container_says = {"TEST_EXECUTION_PARAMETERS": json.dumps(
        {"BatchStrategy": "MULTI_RECORD", "MaxConcurrentTransforms": 3, "MaxPayloadInMB": 2})}
    done = transform("--model-dir", str(model), "--input", str(tmp_path / "probe.txt"), "--output",
                     str(tmp_path / "out"), "--content-type", "text/x-environment", "--max-payload", "5",
                     env=container_says)
    assert done.returncode == 0, done.stderr
    # the flag wins for MaxPayloadInMB; the container's answer for the others
    assert "MultiRecord, MaxPayloadInMB 5, MaxConcurrentTransforms 3" in done.stderr.splitlines()[0]
    environment = json.loads((tmp_path / "out" / "probe.txt.out").read_text())
    assert environment["SAGEMAKER_BATCH"] == "true"
    assert environment["SAGEMAKER_MAX_PAYLOAD_IN_MB"] == "5"
    assert "SAGEMAKER_BATCH_STRATEGY" not in environment  # not set for the job: the container decides


def test_defaults_apply_when_the_container_has_no_execution_parameters(tmp_path):
    """A stdlib container that answers 404 to /execution-parameters: SageMaker's defaults."""
    from tests.e2e.local.runtimeproc import chunked_container

    (tmp_path / "x.txt").write_text("chunks:3")
    with chunked_container() as container:
        done = transform("--endpoint-url", container.url, "--input", str(tmp_path / "x.txt"), "--output",
                         str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "SingleRecord, MaxPayloadInMB 6, MaxConcurrentTransforms 1" in done.stderr.splitlines()[0]
    assert (tmp_path / "out" / "x.txt.out").read_text() == "part-0\npart-1\npart-2\n"


def test_progress_bar_and_usage_errors(server, tmp_path):
    (tmp_path / "data.csv").write_text("\n".join(csv_lines(100)) + "\n")
    done = transform("--endpoint-url", server.url, "--input", str(tmp_path / "data.csv"), "--output",
                     str(tmp_path / "out"), "--content-type", "text/csv", "--split-type", "Line", "--progress", "bar")
    assert done.returncode == 0, done.stderr
    assert "transform: 100%" in done.stderr and "records=100" in done.stderr
    bad = transform("--endpoint-url", server.url, "--input", str(tmp_path / "data.csv"), "--output",
                    str(tmp_path / "out"), "--input-filter", "$..x", "--content-type", "text/csv")
    assert bad.returncode == 2 and "--input-filter" in bad.stderr
    missing = transform("--endpoint-url", server.url, "--input", str(tmp_path / "nope"), "--output", str(tmp_path))
    assert missing.returncode == 2 and "no such file" in missing.stderr

"""Hostile management calls against the real multi-model server: handlers that would run code from
outside the model directory, numbers past what the server can frame or schedule, names and hints
that used to be 500s. Each refusal is a 400 naming the field, and the server keeps serving.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from tests.e2e.test_mme import SERVICE, add_model, error, invoke, names, register, start_mme

EVIL = """
open({marker!r}, "w").close()  # importing this proves the server ran code from outside the model directory

def handle(data, context):
    return None if data is None else [b"evil"] * len(data)
"""


@pytest.fixture
def hostile(tmp_path: Path):
    """A model root with one good model; ``outside/evilmod.py`` importable (on PYTHONPATH), marker path."""
    root, outside = tmp_path / "models", tmp_path / "outside"
    add_model(root, "good")
    outside.mkdir()
    marker = tmp_path / "EVIL_RAN"
    (outside / "evilmod.py").write_text(EVIL.format(marker=str(marker)))
    return root, outside, marker


def test_handlers_outside_the_model_directory_are_refused_and_never_run(hostile):
    root, outside, marker = hostile
    (root / "good" / "linked.py").symlink_to(outside / "evilmod.py")
    with start_mme(root, env={"PYTHONPATH": str(outside)}) as server:
        for handler in (f" {outside}/evilmod.py:handle", f"\t{outside}/evilmod.py", "evilmod:handle", "evilmod",
                        "linked.py:handle", "linked:handle", "code/../../outside/evilmod.py"):
            status, _, message = error(register(server, "attempt", "good", handler=handler))
            assert status == 400, (handler, message)
            assert "Invalid handler" in message
        assert names(server) == []
        # The refusals left the server working, and a handler file inside the directory is fine.
        (root / "good" / "service.py").write_text(SERVICE)
        assert register(server, "svc", "good", handler="service.py:handle").status_code == 200
        assert invoke(server, "svc", [1]).json()["model"] == "service"
    assert not marker.exists()


def test_an_operator_may_allow_installed_handler_modules(hostile):
    root, outside, marker = hostile
    with start_mme(root, env={"PYTHONPATH": str(outside), "SAGEMAKER_MME_HANDLER_MODULES": "evilmod"}) as server:
        assert register(server, "allowed", "good", handler="evilmod:handle").status_code == 200
    assert marker.exists()


def test_numbers_past_their_bounds_are_400_naming_the_field_and_free_the_name(hostile):
    root, _, _ = hostile
    with start_mme(root) as server:
        for field, value in [("batch_size", 2**31), ("batch_size", 2**63), ("initial_workers", "\u00b2"),
                             ("initial_workers", 10**6), ("max_batch_delay", int("9" * 400)),
                             ("response_timeout", 10**12)]:
            status, _, message = error(register(server, "good", "good", **{field: value}))
            assert (status, field in message) == (400, True), (field, message)
        # Nothing hung, nothing holds the name.
        assert register(server, "good", "good", batch_size=2, initial_workers=1).status_code == 200
        for query in ({"min_worker": "1000000"}, {"min_worker": "\u00b2"}, {"min_worker": "1", "max_worker": "9" * 30}):
            response = server.client.put("/models/good", params=query)
            assert error(response)[0] == 400, query
        assert server.client.get("/models/good").json()["minWorkers"] == 1


def test_infinite_memory_hint_is_400(hostile):
    root, _, _ = hostile
    add_model(root, "inf", **{"memory_mb": "1e400"})
    with start_mme(root) as server:
        status, error_type, message = error(register(server, "inf", "inf"))
        assert (status, error_type) == (400, "InvalidModelException")
        assert "memory_mb" in message


def test_longest_name_with_an_archive(hostile):
    root, _, _ = hostile
    with tarfile.open(root / "long.tar.gz", "w:gz") as tar:
        for name, text in (("code/inference.py", "def model_fn(d):\n    return 'long'\n"
                                                 "def predict_fn(x, m):\n    return {'model': m}\n"),):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    name = "n" * 256
    with start_mme(root) as server:
        assert register(server, name, "long.tar.gz").status_code == 200
        assert invoke(server, name, [1]).json() == {"model": "long"}


def test_list_with_limit_zero_pages_forward(hostile):
    root, _, _ = hostile
    add_model(root, "other")
    with start_mme(root) as server:
        assert register(server, "good", "good").status_code == 200
        assert register(server, "other", "other").status_code == 200
        page = server.client.get("/models", params={"limit": "0"}).json()
        assert [m["modelName"] for m in page["models"]] == ["good", "other"]
        assert "nextPageToken" not in page
        first = server.client.get("/models", params={"limit": "1"}).json()
        assert first["nextPageToken"] == "1"
        rest = server.client.get("/models", params={"limit": "1", "next_page_token": first["nextPageToken"]}).json()
        assert [m["modelName"] for m in rest["models"]] == ["other"]


# -- archives ----------------------------------------------------------------------------------


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))


def long_name_bomb(path: Path, claimed: int) -> Path:
    """A gzipped tar whose first header is a GNU long name of ``claimed`` bytes (they compress well)."""
    header = tarfile.TarInfo("././@LongLink")
    header.type, header.size = tarfile.GNUTYPE_LONGNAME, claimed
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(header.tobuf(tarfile.GNU_FORMAT))
        chunk = b"a" * (1 << 20)
        for _ in range(claimed // len(chunk)):
            out.write(chunk)
        out.write(tarfile.TarInfo("x").tobuf(tarfile.GNU_FORMAT) + b"\0" * 1024)  # the member it names
    return path


def test_archive_bombs_cost_the_frontend_nothing(hostile, tmp_path):
    root, _, _ = hostile
    long_name_bomb(root / "longname.tar.gz", 64 * 1024 * 1024)
    assert (root / "longname.tar.gz").stat().st_size < 400_000
    with tarfile.open(root / "many.tar.gz", "w:gz") as tar:
        for i in range(20_001):
            tar.addfile(tarfile.TarInfo(f"f{i}"), io.BytesIO(b""))
    with tarfile.open(root / "clash.tar", "w") as tar:
        for name in ("code", "code/inference.py"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with start_mme(root, env={"TMPDIR": str(scratch)}) as server:
        before = peak_rss_mib(server.proc.pid)
        for url, expected in (("longname.tar.gz", "extended header"), ("many.tar.gz", "more than 20000 entries"),
                              ("clash.tar", "both as a file and as a directory")):
            status, error_type, message = error(register(server, "bomb", url))
            assert (status, error_type) == (400, "InvalidModelException"), message
            assert expected in message
        assert peak_rss_mib(server.proc.pid) - before < 20
        assert list(scratch.iterdir()) == []
        assert register(server, "good", "good").status_code == 200


def test_unpacked_size_cap_and_sparse_members(hostile, tmp_path):
    root, _, _ = hostile
    with tarfile.open(root / "zeros.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("weights.bin")
        info.size = 64 * 1024 * 1024
        tar.addfile(info, io.BytesIO(b"\0" * info.size))
    sparse = tarfile.TarInfo("sparse.bin")
    sparse.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "sparse.bin",
                          "GNU.sparse.realsize": "150000000"}
    with tarfile.open(root / "sparse.tar", "w", format=tarfile.PAX_FORMAT) as tar:
        sparse.size = 2
        tar.addfile(sparse, io.BytesIO(b"0\n"))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with start_mme(root, env={"TMPDIR": str(scratch), "SAGEMAKER_MME_MAX_UNPACKED_MB": "16"}) as server:
        status, _, message = error(register(server, "zeros", "zeros.tar.gz"))
        assert status == 413 and "SAGEMAKER_MME_MAX_UNPACKED_MB" in message
        status, _, message = error(register(server, "sparse", "sparse.tar"))
        assert status == 400 and "sparse" in message
        assert list(scratch.iterdir()) == []


def test_shutdown_during_extraction_leaves_no_directory(hostile, tmp_path):
    root, _, _ = hostile
    # One 2 GiB member of zeros: a sparse file, free to create, seconds to unpack, plenty to interrupt.
    info = tarfile.TarInfo("w0.bin")
    info.size = 2 << 30
    with open(root / "big.tar", "wb") as f:
        f.write(info.tobuf(tarfile.GNU_FORMAT))
        f.truncate(512 + info.size + 1024)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    server = start_mme(root, env={"TMPDIR": str(scratch)})
    try:
        assert server.client.post("/models", json={"model_name": "big", "url": "big.tar",
                                                   "synchronous": False}).status_code == 202
        deadline = time.monotonic() + 30
        while not any(scratch.rglob("w*.bin")) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert any(scratch.rglob("w*.bin")), "extraction never started"
    finally:
        assert server.stop() == 0
    assert list(scratch.iterdir()) == []


# -- memory accounting -------------------------------------------------------------------------


def test_every_worker_process_is_counted(hostile):
    # Four ~1 KB models "fit" a 100 MiB budget by size alone; each worker is ~30 MiB of Python.
    root, _, _ = hostile
    for name in ("a", "b", "c", "d"):
        add_model(root, name)
    with start_mme(root, env={"SAGEMAKER_MODEL_MEMORY_LIMIT_MB": "100"}) as server:
        for name in ("a", "b", "c"):
            assert register(server, name, name).status_code == 200
        status, _, message = error(register(server, "d", "d"))
        assert status == 507 and "Not enough memory to load model d" in message


def test_scaling_reserves_and_releases_memory(hostile):
    root, _, _ = hostile
    for name in ("a", "b", "c"):
        add_model(root, name)
    with start_mme(root, env={"SAGEMAKER_MODEL_MEMORY_LIMIT_MB": "100"}) as server:
        assert register(server, "a", "a").status_code == 200
        for synchronous in ("true", "false"):
            response = server.client.put("/models/a", params={"min_worker": "8", "synchronous": synchronous})
            assert error(response)[0] == 507
        assert server.client.put("/models/a", params={"min_worker": "2", "synchronous": "true"}).status_code == 200
        assert len(server.client.get("/models/a").json()["workers"]) == 2
        assert register(server, "b", "b").status_code == 200  # 3 workers: 90 of 100 MiB
        assert error(register(server, "c", "c"))[0] == 507
        # Scaling down gives the memory back: the next load fits.
        assert server.client.put("/models/a", params={"min_worker": "1", "max_worker": "1",
                                                      "synchronous": "true"}).status_code == 200
        assert register(server, "c", "c").status_code == 200


def test_eviction_only_when_it_can_make_room(hostile):
    root, _, _ = hostile
    for name in ("a", "b"):
        add_model(root, name)
    add_model(root, "huge", **{"memory_mb": "100"})
    add_model(root, "small")
    env = {"SAGEMAKER_MODEL_MEMORY_LIMIT_MB": "80", "SAGEMAKER_MME_LRU_EVICTION": "true"}
    with start_mme(root, env=env) as server:
        assert register(server, "a", "a").status_code == 200
        assert register(server, "b", "b").status_code == 200
        assert error(register(server, "huge", "huge"))[0] == 507  # 130 MiB can never fit in 80
        assert names(server) == ["a", "b"]  # nothing was evicted for it
        assert invoke(server, "b", [1]).status_code == 200  # a is now the least recently used
        assert register(server, "small", "small").status_code == 200  # 30 MiB, 20 free: evicts a only
        assert names(server) == ["b", "small"]


def test_an_archive_unpacked_into_memory_counts_whatever_its_hint(hostile, tmp_path):
    from sagemaker_inference.server import memory

    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK) and memory.in_memory(str(shm))):
        pytest.skip("no writable tmpfs at /dev/shm")
    root, _, _ = hostile
    with tarfile.open(root / "weights.tar", "w") as tar:
        for name, data in (("code/inference.py", b"def model_fn(d):\n    return 1\n"), ("memory_mb", b"1"),
                           ("weights.bin", b"\1" * (40 * 1024 * 1024))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    in_memory = Path(tempfile.mkdtemp(dir=shm, prefix="h15-test-"))
    on_disk = tmp_path / "scratch"
    on_disk.mkdir()
    try:
        # 60 MiB budget: a worker (30) + the hint (1) fit; + the 40 MiB of files held in tmpfs do not.
        env = {"SAGEMAKER_MODEL_MEMORY_LIMIT_MB": "60"}
        with start_mme(root, env={**env, "TMPDIR": str(in_memory)}) as server:
            assert error(register(server, "w", "weights.tar"))[0] == 507
            assert list(in_memory.iterdir()) == []
        with start_mme(root, env={**env, "TMPDIR": str(on_disk)}) as server:
            assert register(server, "w", "weights.tar").status_code == 200
    finally:
        shutil.rmtree(in_memory, ignore_errors=True)

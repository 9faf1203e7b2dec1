"""The Hugging Face DLC's serving stack on our package vs on MMS 1.1.11 (Java), same tiny model, same run.

    python bench/hf_container.py [--quick] [--connections 1,16] [--stacks ours,mms] [--workers 2]

Both stacks run the Hugging Face inference toolkit's own entrypoint, ``serving.main()``
(sagemaker-huggingface-inference-toolkit 2.6.0, ``tests/e2e/hf_entrypoint.py``), which writes the MMS properties
file and runs ``multi-model-server --start``; only what that command is differs. "ours": this repo's venv, whose
``multi-model-server`` starts our server. "mms": the upstream venv (sagemaker-inference 1.10.1, multi-model-server
1.1.11, Java 17); the toolkit, transformers, torch and their dependencies reach it through a PYTHONPATH directory of
symlinks to what our interpreter has and the upstream venv lacks, so it keeps its own sagemaker_inference and mms.
The model is the tests' tiny text-classification BERT (``tests/e2e/hf_tiny_model.py``), built once per run.

Figures: startup (spawn to the first 200 on /invocations), idle RSS/PSS of the whole process tree, req/s and latency
per connection count, CPU per request. Needs in this Python: the toolkit, transformers<5, torch==2.13.0 (as the
``test`` extra and ``.ci/run`` install them).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import site
import sys
from pathlib import Path

import harness
import report
import stacks
import workloads
from stacks import Launch, Options

REPO = Path(__file__).resolve().parents[1]
ENTRYPOINT = REPO / "tests" / "e2e" / "hf_entrypoint.py"
BODY = b'{"inputs": ["i love this movie", "the plot was boring"]}'
HF_ENV = {"HF_TASK": "text-classification", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
          "TOKENIZERS_PARALLELISM": "false"}


@dataclasses.dataclass(frozen=True)
class TinyBert(workloads.Workload):
    """The tests' tiny model, as the toolkit finds it in /opt/ml/model (no code/inference.py)."""

    def materialize(self, model_dir: Path) -> Path:
        sys.path.insert(0, str(REPO))
        from tests.e2e import hf_tiny_model

        return hf_tiny_model.build(model_dir)


def _launch(python: str, workdir: Path, options: Options, run_id: str, extra_env: dict[str, str]) -> Launch:
    env = stacks._base_env(options, run_id)
    env.update(HF_ENV)
    env["HF_TEST_MMS_CONFIG_FILE"] = str(workdir / "sagemaker-mms.properties")
    env["PATH"] = f"{Path(python).parent}{os.pathsep}{env.get('PATH', '')}"  # whose multi-model-server runs
    env.update(extra_env)
    return Launch([python, str(ENTRYPOINT)], env, workdir)


class HFOnOurs(stacks.Ours):
    def launch(self, workdir: Path, options: Options, run_id: str) -> Launch:
        (workdir / "tmp").mkdir(exist_ok=True)
        return _launch(self.python, workdir, options, run_id, {"TMPDIR": str(workdir / "tmp")})


class HFOnMMS(stacks.MMS):
    def launch(self, workdir: Path, options: Options, run_id: str) -> Launch:
        env = {"LOG_LOCATION": str(workdir / "logs"), "METRICS_LOCATION": str(workdir / "logs"),
               "PYTHONPATH": str(_extras(workdir))}
        return _launch(stacks.UPSTREAM_PYTHON, workdir, options, run_id, env)


def _extras(workdir: Path) -> Path:
    """Symlinks to every top-level entry of our interpreter's site directories that the upstream venv lacks."""
    theirs = stacks._site_packages(stacks.UPSTREAM_PYTHON)
    skip = {p.name.lower() for p in theirs.iterdir()}
    extras = workdir / "upstream-extras"
    extras.mkdir(exist_ok=True)
    for directory in [Path(p) for p in [*site.getsitepackages(), site.getusersitepackages()] if Path(p).is_dir()]:
        for entry in directory.iterdir():
            name = entry.name.lower()
            if name in skip or name.endswith(".pth") or name.startswith("__editable__"):
                continue
            skip.add(name)
            (extras / entry.name).symlink_to(entry)
    return extras


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stacks", default="ours,mms")
    parser.add_argument("--connections", default="1,16")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="3 s runs after 2 s warm-ups")
    parser.add_argument("--retries", type=int, default=1)
    parser.add_argument("--keep-dirs", action="store_true")
    args = parser.parse_args(argv)
    settings = harness.Settings.quick() if args.quick else harness.Settings()
    settings = dataclasses.replace(settings, connections=tuple(int(c) for c in args.connections.split(",")),
                                   workers=args.workers, keep_dirs=args.keep_dirs)
    known = {"ours": HFOnOurs(), "mms": HFOnMMS()}
    workload = TinyBert("hf-text-classification", "", BODY)
    harness.stop_servers_on_sigterm()
    before = report.machine()
    runs = []
    for name in args.stacks.split(","):
        attempt = functools.partial(harness.measure, known[name.strip()], workload, settings)
        runs.append(harness.with_retries(f"{name} / {workload.name}", attempt, args.retries))
    print(report.render(runs))
    print(f"figures: {report.write_json('hf_container', runs, settings, before)}")
    return 0 if all(r.error is None for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

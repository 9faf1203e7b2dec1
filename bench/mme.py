"""Multi-model endpoints: time to load (POST /models -> 200) and unload (DELETE /models/<name> -> 200) a model, and
req/s across N loaded models with a random target per request, one stack after the other.

    python bench/mme.py [--models 10] [--workload echo] [--connections 16,64] [--quick] [--stacks ours,mms]

Both stacks run with SAGEMAKER_MULTI_MODEL=true and SAGEMAKER_BASE_DIR=<tmp>; every model is a copy of the workload's
model dir under <tmp>/models/, loaded by its absolute path as the SageMaker platform does. MMS gets its handler the
way the toolkit gives it: start_model_server() puts its handler_service into SAGEMAKER_HANDLER. Requests go to
POST /models/<name>/invoke, which both stacks route (MMS ignores X-Amzn-SageMaker-Target-Model).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import harness
import procs
import report
import stacks
import workloads
import wrk
from server import Probe, Server, StartupError, free_port, request


@dataclass
class MmeRun:
    stack: str
    models: int
    startup_s: float | None = None
    load_s: list[float] = field(default_factory=list)
    unload_s: list[float] = field(default_factory=list)
    loaded: procs.Memory | None = None  # all models loaded, before traffic
    after_load: procs.Memory | None = None
    after_unload: procs.Memory | None = None
    levels: list[harness.Level] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def _timed(port: int, method: str, path: str, body: bytes = b"") -> float:
    headers = {"Content-Type": "application/json"} if body else {}
    start = time.perf_counter()
    status = request(port, method, path, body, headers)
    elapsed = time.perf_counter() - start
    if status != 200:
        raise RuntimeError(f"{method} {path} answered {status or 'nothing'}")
    return elapsed


def load_model(port: int, name: str, url: Path) -> float:
    return _timed(port, "POST", "/models", json.dumps({"model_name": name, "url": str(url)}).encode())


def unload_model(port: int, name: str) -> float:
    return _timed(port, "DELETE", f"/models/{name}")


def measure(stack: stacks.Stack, workload: workloads.Workload, count: int, settings: harness.Settings) -> MmeRun:
    run = MmeRun(stack.name, count)
    reason = stack.preflight()
    if reason:
        run.error = f"cannot start {stack.name}: {reason}"
        return run
    with harness.work_dir(f"mme-{stack.name}", settings.keep_dirs, run.notes) as workdir:
        options = stacks.Options(
            base_dir=workdir / "ml", port=free_port(), workers=settings.workers, multi_model=True, needs=workload.needs
        )
        names = [f"m{i}" for i in range(count)]
        for name in names:
            _materialize(workload, options.base_dir / "models" / name)
        try:
            with harness.started(stack, options, workdir, Probe("GET", "/ping"), run.notes) as (server, startup):
                run.startup_s = startup
                _exercise(server, workload, names, options.base_dir / "models", settings, workdir, run)
        except (StartupError, RuntimeError, ValueError) as exc:
            run.error = str(exc)
            raise harness.KeepDir from exc
    return run


def _materialize(workload: workloads.Workload, model_dir: Path) -> None:
    """The workload's model dir, plus a copy of code/inference.py at its top level. Upstream needs the copy: in MME
    mode MMS puts only the model dir on the worker's PYTHONPATH, and the toolkit's handler service adds code/ to
    os.environ["PYTHONPATH"] of the already running worker, which changes nothing, so code/inference.py is never
    imported and model_fn is "not implemented" (while POST /models still answers 200)."""
    workload.materialize(model_dir)
    shutil.copyfile(model_dir / "code" / "inference.py", model_dir / "inference.py")


def _check_serving(port: int, workload: workloads.Workload, names: list[str]) -> None:
    """One request per model: a load that answered 200 is not proof that the model serves (see _materialize)."""
    headers = {"Content-Type": workload.content_type, "Accept": workload.accept}
    for name in names:
        status = request(port, "POST", f"/models/{name}/invoke", workload.body, headers)
        if status != 200:
            raise RuntimeError(f"model {name} loaded but its first request answered {status or 'nothing'}")


def _exercise(
    server: Server,
    workload: workloads.Workload,
    names: list[str],
    root: Path,
    settings: harness.Settings,
    workdir: Path,
    run: MmeRun,
) -> None:
    run.load_s = [load_model(server.port, name, root / name) for name in names]
    _check_serving(server.port, workload, names)
    time.sleep(settings.idle_wait)
    run.loaded = procs.memory(server.pids())
    paths = [f"/models/{name}/invoke" for name in names]
    script = wrk.write_script(workdir, workload.body, workload.content_type, workload.accept, paths)
    url = f"http://127.0.0.1:{server.port}"
    harness.prewarm(url, script, settings)
    for connections in settings.connections:
        run.levels.append(harness.measured_level(server, script, connections, settings))
    run.after_load = procs.memory(server.pids())
    run.unload_s = [unload_model(server.port, name) for name in names]
    time.sleep(1.0)
    run.after_unload = procs.memory(server.pids())


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values) * 1e3:,.0f} / {max(values) * 1e3:,.0f}"


def render(runs: list[MmeRun]) -> str:
    header = ["stack", "startup s", "load ms med/max", "unload ms med/max", "RSS MB loaded", "after load", "unloaded"]
    rows = []
    for r in runs:
        rss = [f"{m.rss / report.MB:,.0f}" if m else "-" for m in (r.loaded, r.after_load, r.after_unload)]
        startup = f"{r.startup_s:.2f}" if r.startup_s is not None else "-"
        rows.append([r.stack, startup, _ms(r.load_s), _ms(r.unload_s), *rss])
    lines = [report.table(header, rows), ""]
    level_runs = [harness.Run(r.stack, f"mme x{r.models}", levels=r.levels) for r in runs]
    lines.append(report.load_table(level_runs))
    for r in runs:
        if r.error:
            lines.append(f"{r.stack}: FAILED: {r.error}")
        lines += [f"{r.stack}: {note}" for note in r.notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--workload", default="echo", choices=list(workloads.WORKLOADS))
    parser.add_argument("--stacks", default="ours,mms")
    parser.add_argument("--connections", type=lambda t: tuple(int(x) for x in t.split(",")), default=(16, 64))
    parser.add_argument("--quick", action="store_true", help="3 s runs after 2 s warm-ups instead of 10 s after 5 s")
    parser.add_argument("--prewarm", type=float, default=0.0, help="seconds of load before the sweep (MMS's JIT)")
    parser.add_argument("--workers", type=int, default=1, help="workers per model (default 1, as MMS's MME config)")
    parser.add_argument("--retries", type=int, default=1, help="re-run a failed stack this often (default 1)")
    parser.add_argument("--keep-dirs", action="store_true")
    parser.add_argument("--no-json", action="store_true")
    args = parser.parse_args(argv)
    settings = harness.Settings.quick() if args.quick else harness.Settings()
    settings = dataclasses.replace(
        settings, connections=args.connections, workers=args.workers, keep_dirs=args.keep_dirs, prewarm=args.prewarm
    )
    workload = workloads.WORKLOADS[args.workload]
    harness.stop_servers_on_sigterm()
    before = report.machine()
    runs = []
    for stack in stacks.get(args.stacks):
        attempt = functools.partial(measure, stack, workload, args.models, settings)
        runs.append(harness.with_retries(f"{stack.name} / {args.models} x {workload.name}", attempt, args.retries))
    print(render(runs))
    if not args.no_json:
        print(f"\nJSON: {report.write_json('mme', runs, settings, before)}")
    return 0 if all(r.error is None for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

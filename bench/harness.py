"""Measure one stack serving one workload: startup, idle memory, a wrk run per connection count (after a warm-up at
that count) with the server tree's CPU per request, memory after the load, and optionally a sustained run.

The stack runs alone while it is measured; the caller runs stacks one after the other in the same invocation.
Or, paired (``measure_paired``): every stack is up at once and each level loads all of them in the same seconds,
one ``wrk`` per stack, so a noisy neighbour slows them alike and the comparison survives a machine that one
sequential run cannot settle (the absolute figures are those of a shared machine, not of a stack alone).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol, TypeVar

import procs
import wrk
from server import Probe, Server, StartupError, free_port
from stacks import Options, Stack
from workloads import Workload


@dataclass(frozen=True)
class Settings:
    connections: tuple[int, ...] = (1, 16, 64)
    duration: float = 10.0
    warmup: float = 5.0
    idle_wait: float = 3.0
    prewarm: float = 0.0  # seconds of load at the highest connection count before the sweep, see README
    soak: float = 0.0  # seconds of sustained load at the highest connection count; 0 = none
    workers: int = 2
    batch_size: int | None = None
    max_batch_delay_ms: int | None = None
    keep_dirs: bool = False

    @classmethod
    def quick(cls) -> Settings:
        return cls(duration=3.0, warmup=2.0)


class Started(NamedTuple):
    server: Server
    startup_s: float


@dataclass(frozen=True)
class Level:
    """One measured wrk run at a connection count."""

    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_us_per_request: float
    cpu_percent: float  # server tree, 100 = one core busy
    wrk_percent: float  # the load generator
    others_percent: float  # the rest of the machine: other users' work makes the figures noisy

    @classmethod
    def of(cls, connections: int, result: wrk.Result, cpu: CpuSample) -> Level:
        cpu_seconds = cpu.server
        return cls(
            connections=connections,
            rps=result.rps,
            p50_ms=result.p50_ms,
            p99_ms=result.p99_ms,
            requests=result.requests,
            errors=result.errors,
            cpu_us_per_request=cpu_seconds / max(result.requests, 1) * 1e6,
            cpu_percent=cpu_seconds / result.seconds * 100,
            wrk_percent=cpu.wrk / result.seconds * 100,
            others_percent=max(0.0, cpu.machine - cpu.server - cpu.wrk) / result.seconds * 100,
        )


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used during one measured run, split by who used them."""

    server: float
    wrk: float
    machine: float


@dataclass(frozen=True)
class Soak:
    seconds: float
    level: Level
    rss_before: int
    rss_after: int

    @property
    def growth_percent(self) -> float:
        return (self.rss_after - self.rss_before) / self.rss_before * 100


@dataclass
class Run:
    stack: str
    workload: str
    startup_s: float | None = None
    idle: procs.Memory | None = None
    after_load: procs.Memory | None = None
    levels: list[Level] = field(default_factory=list)
    soak: Soak | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def level(self, connections: int) -> Level | None:
        return next((lv for lv in self.levels if lv.connections == connections), None)


def stop_servers_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so the ``started`` blocks stop their process trees before the harness exits."""

    def _exit(signo: int, frame: object) -> None:
        raise SystemExit(128 + signo)

    signal.signal(signal.SIGTERM, _exit)


class Outcome(Protocol):
    error: str | None
    startup_s: float | None
    notes: list[str]


OutcomeT = TypeVar("OutcomeT", bound=Outcome)


def with_retries(label: str, attempt: Callable[[], OutcomeT], retries: int) -> OutcomeT:
    """Others share this machine and a stray signal can end a server mid-run: try again before reporting a failure.
    A stack that never started is not retried."""
    failures: list[str] = []
    while True:
        print(f"-- {label} ...", file=sys.stderr, flush=True)
        outcome = attempt()
        print(f"   {outcome.error or 'done'}", file=sys.stderr, flush=True)
        if outcome.error is None or len(failures) >= retries or outcome.startup_s is None:
            outcome.notes += [f"retried after: {reason}" for reason in failures]
            return outcome
        failures.append(outcome.error.splitlines()[0])


def measure(stack: Stack, workload: Workload, settings: Settings) -> Run:
    run = Run(stack.name, workload.name)
    reason = stack.preflight()
    if reason:
        run.error = f"cannot start {stack.name}: {reason}"
        return run
    with work_dir(f"{stack.name}-{workload.name}", settings.keep_dirs, run.notes) as workdir:
        options = _options(stack, workload, settings, workdir)
        workload.materialize(options.base_dir / "model")
        probe = _probe(workload)
        try:
            with started(stack, options, workdir, probe, run.notes) as (server, startup):
                run.startup_s = startup
                _load(server, workload, settings, workdir, run)
        except (StartupError, RuntimeError, ValueError) as exc:
            run.error = str(exc)
            raise KeepDir from exc
    return run


def measure_paired(chosen: Sequence[Stack], workload: Workload, settings: Settings) -> list[Run]:
    """Every stack in ``chosen`` serving ``workload`` at once; each level loads them all in the same seconds."""
    runs = [Run(stack.name, workload.name) for stack in chosen]
    for run, stack in zip(runs, chosen):
        reason = stack.preflight()
        if reason:
            run.error = f"cannot start {stack.name}: {reason}"
    if any(run.error for run in runs) or settings.soak > 0:
        for run in runs:
            run.error = run.error or ("--soak is not measured paired" if settings.soak > 0 else "a stack cannot start")
        return runs
    with contextlib.ExitStack() as held:
        servers, scripts = [], []
        try:
            for run, stack in zip(runs, chosen):
                workdir = held.enter_context(work_dir(f"{stack.name}-{workload.name}", settings.keep_dirs, run.notes))
                options = _options(stack, workload, settings, workdir)
                workload.materialize(options.base_dir / "model")
                server, run.startup_s = held.enter_context(started(stack, options, workdir, _probe(workload),
                                                                   run.notes))
                servers.append(server)
                scripts.append(wrk.write_script(workdir, workload.body, workload.content_type, workload.accept))
            time.sleep(settings.idle_wait)
            for run, server in zip(runs, servers):
                run.idle = procs.memory(server.pids())
            for connections in ((max(settings.connections),) if settings.prewarm > 0 else ()):
                _load_all(servers, scripts, wrk.Load(connections, settings.prewarm))
            for connections in settings.connections:
                for run, level in zip(runs, levels_together(servers, scripts, connections, settings)):
                    run.levels.append(level)
            for run, server in zip(runs, servers):
                run.after_load = procs.memory(server.pids())
        except (StartupError, RuntimeError, ValueError) as exc:
            for run in runs:
                run.error = run.error or str(exc)
    return runs


def _load_all(servers: Sequence[Server], scripts: Sequence[Path], load: wrk.Load) -> list[wrk.Result]:
    """One wrk per server, all at once; their results in the servers' order."""
    if len(servers) == 1:
        return [wrk.run(f"http://127.0.0.1:{servers[0].port}", scripts[0], load)]
    with ThreadPoolExecutor(len(servers)) as pool:
        futures = [pool.submit(wrk.run, f"http://127.0.0.1:{server.port}", script, load)
                   for server, script in zip(servers, scripts)]
        return [future.result() for future in futures]


def levels_together(servers: Sequence[Server], scripts: Sequence[Path], connections: int,
                    settings: Settings) -> list[Level]:
    """Warm up at ``connections``, then load every server in the same seconds (one wrk each) while sampling the
    trees' CPU just before and after. With several servers ``wrk %`` is every load generator together, and
    ``others %`` what the machine did beyond all the servers and them."""
    if settings.warmup > 0:
        _load_all(servers, scripts, wrk.Load(connections, settings.warmup))
    before = [procs.cpu_ticks(server.pids()) for server in servers]
    machine_before, wrk_before = procs.machine_busy_ticks(), procs.children_cpu_seconds()
    results = _load_all(servers, scripts, wrk.Load(connections, settings.duration))
    machine = (procs.machine_busy_ticks() - machine_before) / procs.CLOCK_TICKS
    wrk_cpu = procs.children_cpu_seconds() - wrk_before
    used = [procs.cpu_seconds_between(b, procs.cpu_ticks(server.pids())) for b, server in zip(before, servers)]
    for server in servers:
        if server.exited():
            raise RuntimeError(f"{server.name} exited during the run at {connections} connections")
    rest = machine - sum(used)  # what Level.of subtracts the server's own CPU from
    return [Level.of(connections, result, CpuSample(cpu, wrk_cpu, rest + cpu)) for result, cpu in zip(results, used)]


def _probe(workload: Workload) -> Probe:
    """The request whose first 200 marks a stack serving ``workload`` ready."""
    return Probe(body=workload.body, headers={"Content-Type": workload.content_type, "Accept": workload.accept})


class KeepDir(Exception):
    """Raised inside ``work_dir`` to keep the directory (the run failed: its logs are the evidence)."""


@contextlib.contextmanager
def work_dir(label: str, keep: bool, notes: list[str]) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
    try:
        yield path
    except KeepDir:
        keep = True
    if keep:
        notes.append(f"work dir kept: {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def started(stack: Stack, options: Options, workdir: Path, probe: Probe, notes: list[str]) -> Iterator[Started]:
    """Start the stack, yield it with its startup time once ``probe`` got a 200, and stop its whole tree after."""
    run_id = uuid.uuid4().hex
    server = Server(stack.name, stack.launch(workdir, options, run_id), options.port, run_id)
    try:
        server.start()
        startup = server.wait_ready(probe)
        try:
            yield Started(server, startup)
        except RuntimeError as exc:
            alive = "alive" if server.pids() else "gone"
            raise RuntimeError(f"{exc} (server tree {alive})\n  log tail:\n{server.log_tail()}") from exc
    finally:
        leftovers = server.stop()
        stack.cleanup()
        if leftovers:
            notes.append(f"{len(leftovers)} process(es) outlived the root at SIGTERM; the harness ended them")
        batches = _batch_summary(server.log_path)
        if batches:
            notes.append(batches)


_BATCH_LINE = re.compile(r"served (\d+) requests in (\d+) batches \(mean batch size ([\d.]+)\)")


def _batch_summary(log_path: Path) -> str | None:
    """Our server logs the mean batch size it achieved when it stops (warm-up and all levels included)."""
    try:
        found = _BATCH_LINE.findall(log_path.read_text(errors="replace"))
    except OSError:
        return None
    if not found:
        return None
    requests, batches, mean = found[-1]
    return f"mean batch size achieved {mean} ({requests} requests in {batches} batches, whole run)"


def _options(stack: Stack, workload: Workload, settings: Settings, workdir: Path) -> Options:
    return Options(
        base_dir=workdir / "ml",
        port=free_port(),
        workers=settings.workers,
        batch_size=settings.batch_size if stack.batching else None,
        max_batch_delay_ms=settings.max_batch_delay_ms if stack.batching else None,
        needs=workload.needs,
    )


def _load(server: Server, workload: Workload, settings: Settings, workdir: Path, run: Run) -> None:
    script = wrk.write_script(workdir, workload.body, workload.content_type, workload.accept)
    url = f"http://127.0.0.1:{server.port}"
    time.sleep(settings.idle_wait)
    run.idle = procs.memory(server.pids())
    prewarm(url, script, settings)
    for connections in settings.connections:
        run.levels.append(measured_level(server, script, connections, settings))
    run.after_load = procs.memory(server.pids())
    if settings.soak > 0:
        run.soak = _soak(server, script, settings)


def prewarm(url: str, script: Path, settings: Settings) -> None:
    """Load before the sweep, so a JIT (MMS's JVM) is compiled before the first measured level."""
    if settings.prewarm > 0:
        wrk.run(url, script, wrk.Load(max(settings.connections), settings.prewarm))


def measured_level(server: Server, script: Path, connections: int, settings: Settings) -> Level:
    """Warm up at ``connections``, then run wrk while sampling the tree's CPU just before and after."""
    return levels_together([server], [script], connections, settings)[0]


def _soak(server: Server, script: Path, settings: Settings) -> Soak:
    connections = max(settings.connections)
    rss_before = procs.memory(server.pids()).rss
    soak_settings = Settings(duration=settings.soak, warmup=0)
    level = measured_level(server, script, connections, soak_settings)
    return Soak(settings.soak, level, rss_before, procs.memory(server.pids()).rss)

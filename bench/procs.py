"""The server's process tree, read from /proc: which processes belong to it, their CPU time and memory.

A stack under test is spawned in a new session and with a unique ``BENCH_RUN_ID`` in its environment. A process
belongs to the stack when it is in that session or carries that token. MMS needs both rules: its launcher
daemonizes the JVM and the JVM forks the Python workers, so when the launcher dies they are orphans that only the
inherited session (or, if something calls setsid, the inherited environment) still ties to the run.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable
from dataclasses import dataclass

from sagemaker_inference.conformance.procfs import command_line as command_line  # stacks.py uses it from here
from sagemaker_inference.conformance.procfs import has_env_token, stat_fields

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RUN_ID_VAR = "BENCH_RUN_ID"


@dataclass(frozen=True)
class Memory:
    """Summed over a set of processes, in bytes."""

    rss: int
    pss: int
    processes: int






def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def live_pids() -> list[int]:
    return [pid for pid in _all_pids() if is_alive(pid)]


def tree_pids(session_id: int, run_id: str) -> list[int]:
    """Live (non-zombie) processes of the stack: same session as its root, or carrying its run id."""
    token = f"{RUN_ID_VAR}={run_id}".encode()
    own = os.getpid()
    found = []
    for pid in _all_pids():
        fields = stat_fields(pid)
        if fields is None or pid == own or fields[0] == "Z":
            continue
        if int(fields[3]) == session_id or has_env_token(pid, token):
            found.append(pid)
    return found


def cpu_ticks(pids: Iterable[int]) -> dict[int, int]:
    """utime + stime of each process, in clock ticks; processes that vanished are left out."""
    ticks = {}
    for pid in pids:
        fields = stat_fields(pid)
        if fields is not None:
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def cpu_seconds_between(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU the tree used between two samples. A process born in between counts from zero; one that died in between
    is lost (its time goes to its parent's cutime), which the harness avoids by sampling a steady tree."""
    used = sum(t - before.get(pid, 0) for pid, t in after.items())
    return used / CLOCK_TICKS


def machine_busy_ticks() -> int:
    """CPU time of the whole machine that was not idle or iowait, in clock ticks, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal


def children_cpu_seconds() -> float:
    """CPU of this process's waited-for children (wrk), for telling our load generator from other users."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def memory(pids: Iterable[int]) -> Memory:
    rss = pss = count = 0
    for pid in pids:
        values = _rollup(pid)
        if values:
            rss += values.get("Rss", 0)
            pss += values.get("Pss", 0)
            count += 1
    return Memory(rss=rss * 1024, pss=pss * 1024, processes=count)


def _rollup(pid: int) -> dict[str, int]:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            lines = f.readlines()
    except OSError:
        return {}
    values = {}
    for line in lines[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0])
    return values




def is_alive(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"

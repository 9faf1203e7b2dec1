"""Reading a process from ``/proc`` (Linux): the kit's process-tree checks and ``bench/procs.py`` both use these."""

from __future__ import annotations


def stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (index 0 is field 3, the state); None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw[raw.rindex(b")") + 2:].decode().split()


def has_env_token(pid: int, token: bytes) -> bool:
    """Whether ``NAME=value`` ``token`` is in the process's environment (how a run marks its processes)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return token in f.read().split(b"\0")
    except OSError:
        return False


def command_line(pid: int) -> str:
    """The process's arguments joined by spaces ("" if it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""

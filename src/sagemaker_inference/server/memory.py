"""Whether a model fits: the memory the server may still commit, from its budget and from what the
container really has free.

A model's estimate (``model_store.ModelSource.footprint``: workers x (an idle worker + the model's
size or ``memory_mb`` hint)) is *committed* from the moment its load is accepted until it is
unloaded, including while it unloads. What may be committed is the smallest of: the configured
budget less everything committed, and the measured headroom (the cgroup's limit less its working
set, the host's ``MemAvailable``) less what loads in progress have reserved but not spent yet.

Blocking but cheap (a few small ``/proc`` and ``/sys`` reads): called on the event loop.
"""

from __future__ import annotations

import os

MIB = 1024 * 1024


def available_memory(budget: int | None, committed: int, loading: int) -> int | None:
    """Bytes a new model may use, or None when nothing limits it (no budget, nothing measurable).

    ``committed``: estimates of every model loaded or loading, charged against the configured
    ``budget``; ``loading``: estimates of models still loading, which the measured figures do not
    show yet.
    """
    candidates = []
    if budget is not None:
        candidates.append(budget - committed)
    measured = _measured_available()
    if measured is not None:
        candidates.append(measured - loading)
    return max(0, min(candidates)) if candidates else None


def _measured_available() -> int | None:
    values = [v for v in (_cgroup_headroom(), _meminfo_available()) if v is not None]
    return min(values) if values else None


def _cgroup_headroom() -> int | None:
    """Limit minus working set (usage without reclaimable inactive file cache), cgroup v2 then v1."""
    v2 = _cgroup_v2_dir()
    for directory, limit_file, usage_file, inactive_key in (
            (v2, "memory.max", "memory.current", "inactive_file"),
            ("/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")):
        limit = _read_int(os.path.join(directory, limit_file))
        if limit is None or limit >= 1 << 60:  # "max" or v1's "unlimited" (a page-rounded LONG_MAX)
            continue
        usage = _read_int(os.path.join(directory, usage_file)) or 0
        inactive = _read_stat(os.path.join(directory, "memory.stat"), inactive_key)
        return limit - max(0, usage - inactive)
    return None


def _cgroup_v2_dir() -> str:
    """This process's cgroup v2 directory: the root in a container (cgroup namespace), else from /proc."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                if line.startswith("0::"):
                    return os.path.join("/sys/fs/cgroup", line[3:].strip().lstrip("/"))
    except OSError:
        pass
    return "/sys/fs/cgroup"


def _meminfo_available() -> int | None:
    kib = _read_stat("/proc/meminfo", "MemAvailable:")
    return kib * 1024 if kib else None


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _read_stat(path: str, key: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == key:
                    return int(fields[1])
    except (OSError, ValueError):
        pass
    return 0


_MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})


def in_memory(path: str) -> bool:
    """Whether ``path`` lives on a file system backed by memory (tmpfs, ramfs): an archive unpacked
    there costs its size in memory, once, whatever the model's ``memory_mb`` says per worker."""
    real = os.path.realpath(path)
    best, fstype = "", ""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if "-" not in fields:
                    continue
                mount_point = fields[4].replace("\\040", " ")
                within = real == mount_point or real.startswith(mount_point.rstrip("/") + "/")
                if within and len(mount_point) >= len(best):
                    best, fstype = mount_point, fields[fields.index("-") + 1]
    except OSError:
        return False
    return fstype in _MEMORY_FILESYSTEMS

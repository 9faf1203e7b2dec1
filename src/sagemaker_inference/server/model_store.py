"""Where multi-model URLs may point, what a model directory holds, and which handler may run.

Theory. ``POST /models`` is the door the ShellTorch attacks (CVE-2023-43654) walked through: MMS
and TorchServe accept any path or remote URL. Here a URL is only ever a path inside the model root,
and it is resolved one component at a time with ``lstat``/``readlink``: a symlink whose target
leaves the root is refused before anything outside is touched (``os.path.realpath`` would walk
the target first and check afterwards). Archives are unpacked by ``archives.py``; a handler may
only run code from inside the model directory (``confine_handler``); ``memory.py`` decides
whether a model fits.

A model's size is what its files take on disk, each inode counted once (hard links), symlinks
followed while they stay inside the model directory (weights are often symlinked); a ``memory_mb``
file in the model says what one worker needs instead.

Everything here is blocking (file system); the management endpoints call it in a thread.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import shutil
import stat
from collections.abc import Collection

from sagemaker_inference.server.registry import LoadError

MIB = 1024 * 1024
# A worker before its model: measured at 20 MiB RSS (Python 3.11) for a handler that imports
# nothing, 30 MiB once the default handlers have decoded a request (numpy). Every worker costs at
# least this, whatever the model's size; heavier imports (torch: ~300 MiB) belong in memory_mb.
WORKER_BASE_BYTES = 30 * MIB
MAX_NAME_LENGTH = 256
MAX_SYMLINK_HOPS = 40
ARCHIVE_NAME = "model.tar.gz"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
HINT_FILE = "memory_mb"
_NAME = re.compile(r"[A-Za-z0-9._-]+")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class InvalidModelURL(LoadError):
    """The url names something the server will not read: outside the root, remote, or relative."""


class ModelNotInStore(LoadError):
    """The url is acceptable but nothing is there."""


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """A resolved url: a directory to serve in place, or an archive to unpack first."""

    path: str
    is_archive: bool
    size: int  # bytes on disk (a directory's files, or the archive file until it is unpacked)
    hint: int | None  # bytes the model says it needs per worker, from its ``memory_mb`` file
    fd: int | None = None  # an archive: the file the walk resolved, open for reading (the unpacker closes it)

    @property
    def per_worker(self) -> int:
        """Bytes one worker needs: an idle worker process, plus the model's hint or its size."""
        return WORKER_BASE_BYTES + (self.hint if self.hint is not None else self.size)

    def footprint(self, workers: int) -> int:
        return max(1, workers) * self.per_worker


# -- names -------------------------------------------------------------------------------------


def validate_name(name: str) -> None:
    """Model names become log labels and temp dir prefixes: 1-256 of ``[A-Za-z0-9._-]``, not ``.``/``..``."""
    if not (0 < len(name) <= MAX_NAME_LENGTH and _NAME.fullmatch(name) and name not in (".", "..")):
        raise LoadError(400, "BadRequestException",
                        f"Invalid model name: {name[:MAX_NAME_LENGTH]!r}. Use 1-{MAX_NAME_LENGTH} letters, digits, "
                        "'.', '_' or '-'.")


def default_name(url: str) -> str:
    """MMS's default: the url's last segment, archive suffix removed."""
    last = url.rstrip("/").rpartition("/")[2]
    for suffix in ARCHIVE_SUFFIXES:
        if last.endswith(suffix) and len(last) > len(suffix):
            return last[: -len(suffix)]
    return last


# -- urls --------------------------------------------------------------------------------------


def resolve(url: str, root: str) -> ModelSource:
    """Resolve ``url`` inside ``root`` without reading outside it; measure what is there.

    The walk holds what it resolved open, so the type check, the listing and the archive handed to
    the unpacker are the object the walk checked, even if a path component is swapped for a
    symlink meanwhile (check-then-use). An archive comes back as an open file (``fd``).
    """
    relative = _relative_to_root(url, root)
    real_root = os.path.realpath(root)
    path, fd = _open_walk(real_root, relative, url)
    try:
        if path == real_root:  # serving the whole root would expose every other model to this one
            raise InvalidModelURL(400, "BadRequestException", f"Model url must be below the model root: {url}")
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            if not _is_archive_only(fd):
                return ModelSource(path, False, _directory_size(path), _read_hint(fd))
            inner, inner_fd = _open_walk(path, ARCHIVE_NAME, url, start=fd)
            os.close(fd)
            path, fd = inner, inner_fd
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) and path.endswith(ARCHIVE_SUFFIXES)):
            raise InvalidModelURL(400, "InvalidModelException",
                                  f"Model url is not a directory or tar archive: {url}")
        # Not read here: archives.Extraction streams it once, in a child process, and measures it.
        return ModelSource(path, True, st.st_size, None, fd=_reopen(fd, os.O_RDONLY))
    finally:
        os.close(fd)


def _relative_to_root(url: str, root: str) -> str:
    """The url as a path relative to the root, refused when it could only mean somewhere else."""
    if "\x00" in url or any(ord(c) < 32 for c in url):
        raise InvalidModelURL(400, "BadRequestException", "Invalid character in url.")
    if _SCHEME.match(url):
        raise InvalidModelURL(400, "BadRequestException",
                              f"Only paths inside the model root are allowed in url: {url}")
    if ".." in url.split("/"):
        raise InvalidModelURL(404, "ModelNotFoundException", f"Relative path is not allowed in url: {url}")
    if not os.path.isabs(url):
        return url
    path = os.path.normpath(url)
    for base in {os.path.normpath(os.path.abspath(root)), os.path.realpath(root)}:
        if path == base or path.startswith(base.rstrip("/") + "/"):
            return os.path.relpath(path, base)
    raise InvalidModelURL(400, "BadRequestException", f"Model url is outside the model root: {url}")


_O_PATH = getattr(os, "O_PATH", 0)  # Linux: a handle that opens nothing (no FIFO or device side effects)


def _walk(root: str, relative: str, url: str) -> str:
    """``_open_walk``, for callers that only need the path."""
    path, fd = _open_walk(root, relative, url)
    os.close(fd)
    return path


def _open_walk(root: str, relative: str, url: str, start: int | None = None) -> tuple[str, int]:
    """Follow ``relative`` from the real directory ``root`` one component at a time; return the
    path reached and an ``O_PATH`` descriptor of it (the caller closes it).

    Each component is opened ``O_NOFOLLOW`` relative to the descriptor of the directory before it,
    so what is checked is what is used. Every symlink is read, never followed blindly: an absolute
    target must lie under ``root`` and a relative one may not climb above it, so the walk never
    touches a path outside the root. ``start``: a descriptor of ``root`` to begin from.
    """
    stack = [(root, os.dup(start) if start is not None else os.open(root, _O_PATH | os.O_DIRECTORY))]
    pending, hops = _parts(relative), 0
    try:
        while pending:
            part = pending.pop()
            if part == "..":
                if len(stack) == 1:
                    raise _escape(url)
                os.close(stack.pop()[1])
                continue
            directory, directory_fd = stack[-1]
            fd = _open_component(part, directory_fd, url)
            mode = os.fstat(fd).st_mode
            if not stat.S_ISLNK(mode):
                if pending and not stat.S_ISDIR(mode):
                    os.close(fd)
                    raise _not_found(url)
                stack.append((os.path.join(directory, part), fd))
                continue
            os.close(fd)
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise InvalidModelURL(400, "BadRequestException", f"Too many symbolic links in url: {url}")
            target = os.readlink(part, dir_fd=directory_fd)
            if os.path.isabs(target):
                target = os.path.normpath(target)
                if target != root and not target.startswith(root.rstrip("/") + "/"):
                    raise _escape(url)
                while len(stack) > 1:
                    os.close(stack.pop()[1])
                target = os.path.relpath(target, root)
            pending.extend(_parts(target))
        path, fd = stack[-1]
        return path, os.dup(fd)
    finally:
        for _, fd in stack:
            os.close(fd)


def _open_component(part: str, directory_fd: int, url: str) -> int:
    try:
        return os.open(part, _O_PATH | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not _O_PATH:  # without O_PATH a symlink cannot be opened itself
            return os.open(".", os.O_RDONLY, dir_fd=directory_fd)  # pragma: no cover - not Linux
        raise _not_found(url) from None


def _reopen(fd: int, flags: int) -> int:
    """A real descriptor (readable, listable) of what an ``O_PATH`` descriptor designates."""
    if stat.S_ISDIR(os.fstat(fd).st_mode):
        return os.open(".", flags | os.O_DIRECTORY, dir_fd=fd)
    return os.open(f"/proc/self/fd/{fd}", flags)  # the magic link reopens that very inode


def _not_found(url: str) -> ModelNotInStore:
    return ModelNotInStore(404, "ModelNotFoundException", f"Model not found in model store: {url}")


def _parts(relative: str) -> list[str]:
    """Path components in pop order (a stack), without empty and ``.`` parts."""
    return [p for p in reversed(relative.split("/")) if p not in ("", ".")]


def _escape(url: str) -> InvalidModelURL:
    return InvalidModelURL(400, "BadRequestException", f"Model url is outside the model root: {url}")


def confine_handler(handler: str, model_dir: str, allowed_modules: Collection[str]) -> None:
    """Refuse a ``POST /models`` handler that would run code from outside the model directory.

    A file handler (``path/svc.py:fn``, ``path/svc:fn``) must name a file inside ``model_dir``,
    reached without a symlink leaving it; a module handler must be a module inside the directory
    (or its ``code/``, which come first on the worker's ``sys.path``) unless the operator allowed
    it (``allowed_modules``, ``*`` for any): otherwise any installed module could be imported and
    its function called with the worker's context.
    """
    module_part = handler.partition(":")[0]
    if module_part.endswith(".py") or "/" in module_part:
        stem = module_part[:-3] if module_part.endswith(".py") else module_part
        candidates = [stem + ".py", stem + "/__init__.py"]
    else:
        if module_part in allowed_modules or "*" in allowed_modules:
            return
        stem = module_part.replace(".", "/")
        candidates = [f"{base}{stem}{suffix}" for base in ("", "code/") for suffix in (".py", "/__init__.py")]
    real = os.path.realpath(model_dir)
    for candidate in candidates:
        try:
            path = _walk(real, candidate, handler)
        except InvalidModelURL:
            raise InvalidModelURL(400, "BadRequestException",
                                  f"Invalid handler: {handler} leads outside the model directory.") from None
        except LoadError:
            continue
        if stat.S_ISREG(os.stat(path).st_mode):
            return
    raise LoadError(400, "BadRequestException",
                    f"Invalid handler: {handler} is not a file or module inside the model directory "
                    "(installed modules need SAGEMAKER_MME_HANDLER_MODULES).")


def _is_archive_only(directory_fd: int) -> bool:
    """SageMaker layout: a directory holding only ``model.tar.gz`` (hidden files aside) is that archive."""
    listing = _reopen(directory_fd, os.O_RDONLY)
    try:
        names = os.listdir(listing)
    finally:
        os.close(listing)
    return [name for name in names if not name.startswith(".")] == [ARCHIVE_NAME]


def _directory_size(directory: str) -> int:
    """Bytes of the regular files below ``directory``, each inode once (a hard-linked file is loaded
    once). A symlink is followed when its target stays inside ``directory`` (resolved as urls are,
    never touching anything outside): symlinked weights count; a link leading out counts 0."""
    real = os.path.realpath(directory)
    files: set[tuple[int, int]] = set()
    directories: set[tuple[int, int]] = set()
    total, pending = 0, [real]
    while pending:
        current = pending.pop()
        try:
            st = os.stat(current)
            if (st.st_dev, st.st_ino) in directories:
                continue  # reached again through a symlink
            directories.add((st.st_dev, st.st_ino))
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                path = _walk(real, os.path.relpath(entry.path, real), entry.path) if entry.is_symlink() else entry.path
                st = os.stat(path) if path != entry.path else entry.stat(follow_symlinks=False)
            except (OSError, LoadError):
                continue
            if stat.S_ISDIR(st.st_mode):
                pending.append(path)
            elif stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in files:
                files.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _read_hint(directory: int | str) -> int | None:
    """``<model>/memory_mb``: whole MiB one worker needs. Not followed if it is a symlink."""
    try:
        # O_NONBLOCK: a FIFO planted under this name must not hang the loader thread.
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
        if isinstance(directory, int):
            fd = os.open(HINT_FILE, flags, dir_fd=directory)
        else:
            fd = os.open(os.path.join(directory, HINT_FILE), flags)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        return _parse_hint(f.read(64))


def _parse_hint(raw: bytes) -> int | None:
    try:
        value = float(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise LoadError(400, "InvalidModelException", f"{HINT_FILE} must hold a number of MiB.") from None
    if not 0 <= value < 2**40:  # also refuses nan and inf (1e400 parses as inf)
        raise LoadError(400, "InvalidModelException", f"{HINT_FILE} must hold a number of MiB.")
    return int(value * MIB)


# -- unpacked archives (unpacking itself: archives.py) ----------------------------------------


def measure(directory: str) -> ModelSource:
    """An unpacked archive, measured as a directory model."""
    return ModelSource(directory, False, _directory_size(directory), _read_hint(directory))


def remove(directory: str | None) -> None:
    """Delete an unpacked model; a missing directory is fine."""
    if directory:
        shutil.rmtree(directory, ignore_errors=True)

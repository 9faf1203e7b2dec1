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
import os
import re
import shutil
import stat
from collections.abc import Collection

from sagemaker_inference.server.registry import LoadError

MIB = 1024 * 1024
# An idle worker: the interpreter, the toolkit and the worker loop, measured at 28-31 MiB RSS on
# Python 3.11 before the model's own imports (numpy alone adds ~15 MiB, torch ~300 MiB: say so in
# a memory_mb file). Every worker costs at least this, whatever the model's size.
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
    """Resolve ``url`` inside ``root`` without reading outside it; measure what is there."""
    relative = _relative_to_root(url, root)
    real_root = os.path.realpath(root)
    path = _walk(real_root, relative, url)
    if path == real_root:  # serving the whole root would expose every other model to this one
        raise InvalidModelURL(400, "BadRequestException", f"Model url must be below the model root: {url}")
    if stat.S_ISDIR(os.stat(path).st_mode):
        if not _is_archive_only(path):
            return ModelSource(path, False, _directory_size(path), _read_hint(path))
        path = _walk(path, ARCHIVE_NAME, url)
    st = os.stat(path)
    if not (stat.S_ISREG(st.st_mode) and path.endswith(ARCHIVE_SUFFIXES)):
        raise InvalidModelURL(400, "InvalidModelException", f"Model url is not a directory or tar archive: {url}")
    # Not read here: archives.Extraction streams it once, in a child process, and measures it.
    return ModelSource(path, True, st.st_size, None)


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


def _walk(root: str, relative: str, url: str) -> str:
    """Follow ``relative`` from the real directory ``root`` one component at a time.

    Every symlink is read, never followed blindly: an absolute target must lie under ``root`` and a
    relative one may not climb above it, so the walk never stats a path outside the root.
    """
    pending = _parts(relative)
    current, hops = root, 0
    while pending:
        part = pending.pop()
        if part == "..":
            if current == root:
                raise _escape(url)
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        try:
            mode = os.lstat(candidate).st_mode
        except OSError:
            raise ModelNotInStore(404, "ModelNotFoundException", f"Model not found in model store: {url}") from None
        if not stat.S_ISLNK(mode):
            if pending and not stat.S_ISDIR(mode):
                raise ModelNotInStore(404, "ModelNotFoundException", f"Model not found in model store: {url}")
            current = candidate
            continue
        hops += 1
        if hops > MAX_SYMLINK_HOPS:
            raise InvalidModelURL(400, "BadRequestException", f"Too many symbolic links in url: {url}")
        target = os.readlink(candidate)
        if os.path.isabs(target):
            target = os.path.normpath(target)
            if target != root and not target.startswith(root.rstrip("/") + "/"):
                raise _escape(url)
            current, target = root, os.path.relpath(target, root)
        pending.extend(_parts(target))
    return current


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


def _is_archive_only(directory: str) -> bool:
    """SageMaker layout: a directory holding only ``model.tar.gz`` (hidden files aside) is that archive."""
    return [name for name in os.listdir(directory) if not name.startswith(".")] == [ARCHIVE_NAME]


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


def _read_hint(directory: str) -> int | None:
    """``<model>/memory_mb``: whole MiB one worker needs. Not followed if it is a symlink."""
    try:
        # O_NONBLOCK: a FIFO planted under this name must not hang the loader thread.
        fd = os.open(os.path.join(directory, HINT_FILE), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
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

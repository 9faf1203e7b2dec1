"""Unpacking a model archive: in a child process, in one pass, every size bounded before it is spent.

Theory. An archive is attacker-shaped input: a 146 KB ``model.tar.gz`` can claim a 150 MB GNU
long name (tarfile reads such a header whole), 620 KB can hold 100,000 entries, a 2.5 KB sparse
member can write 150 MB, a gzip bomb anything. Parsing it in the frontend, the one process that
serves every model, let it take that memory and hold the GIL for seconds. So:

* the frontend opens the archive (``O_NOFOLLOW``, a regular file) and hands the open file to
  ``python -m sagemaker_inference.server.archives`` as its stdin: the child reads exactly the file
  that was checked, the frontend only waits on a pipe (no GIL held, no memory spent);
* the child streams the archive once (``tarfile`` ``r|*``): each header is checked as it arrives:
  GNU long-name and pax headers at most ``MAX_HEADER`` bytes *before* tarfile reads them, at most
  ``max_members`` entries, only regular files and directories (links, devices, FIFOs and sparse
  members are refused), names that stay inside the target; a file's declared size is charged
  against the byte budget (the configured cap, and the disk's free space at that moment, less a
  reserve) before a byte of it is written, and tarfile writes exactly the declared size;
* the child reports one JSON line; on any refusal the target directory is deleted and nothing
  else was written. ``RLIMIT_FSIZE`` backs the budget up in the kernel.

The child imports nothing but the standard library, so it starts in tens of milliseconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
from typing import IO, Any

MIB = 1024 * 1024
MAX_HEADER = 64 * 1024  # a GNU long name/link or pax header; PATH_MAX is 4096
MAX_MEMBERS = 20_000
DISK_RESERVE = 256 * MIB  # never fill the disk past this much (or 5 % of it, if smaller)
_COPY_CHUNK = 1024 * 1024
_HEADER_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                 tarfile.SOLARIS_XHDTYPE)


@dataclasses.dataclass(frozen=True)
class Limits:
    max_bytes: int | None = None  # configured cap on the unpacked size; None: free disk only
    max_members: int = MAX_MEMBERS


class Refused(Exception):
    """The archive is unsafe, corrupt or too large; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


def _refused(message: str, status: int = 400) -> Refused:
    return Refused(status, "InvalidModelException", message)


# -- the child: one streaming pass -------------------------------------------------------------


class _BoundedTarInfo(tarfile.TarInfo):
    """Refuses oversized extended headers and sparse members before tarfile reads them."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:  # type: ignore[override]
        if self.type in _HEADER_TYPES and self.size > MAX_HEADER:
            raise _refused(f"Model archive has a {self.size}-byte extended header; at most {MAX_HEADER} allowed.")
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise _refused(f"Model archive entry is a sparse file, refused: {self.name}")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


def unpack_stream(source: IO[bytes], target: str, limits: Limits) -> dict[str, int]:
    """Unpack the archive read from ``source`` into the existing directory ``target``."""
    written = members = 0
    try:
        with tarfile.open(fileobj=source, mode="r|*", tarinfo=_BoundedTarInfo) as archive:
            for member in archive:
                members += 1
                if members > limits.max_members:
                    raise _refused(f"Model archive has more than {limits.max_members} entries.")
                parts = _checked_parts(member)
                if member.isfile():
                    _charge(member, written, target, limits)
                    written += member.size
                _write(archive, member, parts, target)
    except Refused:
        raise
    except (tarfile.TarError, EOFError, ValueError) as exc:  # zlib/lzma/bz2 errors are wrapped or ValueError
        raise _refused(f"Invalid model archive: {exc}") from None
    except OSError as exc:
        raise _os_error(exc) from None
    return {"size": written, "members": members}


def _checked_parts(member: tarfile.TarInfo) -> list[str]:
    if member.issparse():  # pax-declared sparse members arrive as regular files
        raise _refused(f"Model archive entry is a sparse file, refused: {member.name}")
    if not (member.isfile() or member.isdir()):
        raise _refused(f"Model archive entry is a link or device, refused: {member.name}")
    name = member.name
    if name.startswith("/") or "\x00" in name or ".." in name.split("/"):
        raise _refused(f"Model archive entry escapes its directory: {name}")
    return [p for p in name.split("/") if p not in ("", ".")]


def _charge(member: tarfile.TarInfo, written: int, target: str, limits: Limits) -> None:
    """Refuse a file that would take the unpacked size past the cap or the disk past its reserve."""
    total = written + member.size
    if limits.max_bytes is not None and total > limits.max_bytes:
        raise Refused(413, "InvalidModelException",
                      f"Model archive unpacks to more than {limits.max_bytes // MIB} MiB "
                      "(SAGEMAKER_MME_MAX_UNPACKED_MB).")
    disk = os.statvfs(target)
    reserve = min(DISK_RESERVE, disk.f_blocks * disk.f_frsize // 20)
    if member.size > disk.f_bavail * disk.f_frsize - reserve:
        raise Refused(507, "InsufficientStorageException",
                      f"Not enough disk space to unpack the model archive: {member.name} needs "
                      f"{member.size // MIB} MiB, {max(0, disk.f_bavail * disk.f_frsize - reserve) // MIB} MiB free.")


def _write(archive: tarfile.TarFile, member: tarfile.TarInfo, parts: list[str], target: str) -> None:
    if not parts:
        return
    destination = os.path.join(target, *parts)
    try:
        if member.isdir():
            os.makedirs(destination, mode=0o755, exist_ok=True)
            return
        os.makedirs(os.path.dirname(destination), mode=0o755, exist_ok=True)
        # O_NOFOLLOW: nothing in ``target`` is a symlink (none are extracted); belt and braces.
        fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        raise _refused(f"Model archive has {member.name} both as a file and as a directory.") from None
    with os.fdopen(fd, "wb") as out:
        data = archive.extractfile(member)
        if data is not None:
            shutil.copyfileobj(data, out, _COPY_CHUNK)
    os.chmod(destination, 0o755 if member.mode & 0o111 else 0o644)  # special mode bits dropped


def _os_error(exc: OSError) -> Refused:
    import errno

    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return Refused(507, "InsufficientStorageException", f"Not enough disk space to unpack the model archive: "
                                                            f"{exc.strerror}")
    if exc.errno == errno.ENAMETOOLONG:
        return _refused("Model archive has an entry name too long for the file system.")
    return Refused(500, "InternalServerException", f"Failed to unpack model archive: {exc.strerror}")


def main(argv: list[str] | None = None) -> int:
    """``python -m sagemaker_inference.server.archives --target DIR``: archive on stdin, JSON on stdout."""
    parser = argparse.ArgumentParser(prog="sagemaker_inference.server.archives")
    parser.add_argument("--target", required=True)
    parser.add_argument("--max-bytes", type=int, default=None)
    parser.add_argument("--max-members", type=int, default=MAX_MEMBERS)
    args = parser.parse_args(argv)
    _limit_file_size(args.max_bytes)
    try:
        result: dict[str, Any] = {"ok": True,
                                  **unpack_stream(sys.stdin.buffer, args.target, Limits(args.max_bytes,
                                                                                       args.max_members))}
    except Refused as exc:
        result = {"ok": False, "status": exc.status, "type": exc.error_type, "message": exc.message}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


def _limit_file_size(max_bytes: int | None) -> None:
    """The kernel's check behind ours: no single file larger than the cap (EFBIG instead of SIGXFSZ)."""
    if max_bytes is None:
        return
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    soft = max_bytes + 1 if hard == resource.RLIM_INFINITY else min(hard, max_bytes + 1)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


# -- the frontend: start a child, wait for its line -------------------------------------------


class Extraction:
    """One archive being unpacked into a new private directory (mode 0700) by a child process.

    ``run`` blocks (call it in a thread); ``cancel`` may be called from any thread, e.g. by a
    shutdown while the child is still writing: it kills the child and deletes the directory.
    """

    def __init__(self, archive: str, name: str, limits: Limits, timeout: float, fd: int | None = None):
        """``fd``: the archive already open (``model_store.resolve`` hands over the file it checked);
        the extraction owns and closes it. Else ``archive`` is opened when ``run`` starts."""
        self.archive, self.limits, self.timeout, self.fd = archive, limits, timeout, fd
        try:
            # Model names reach 256 characters, file names 255 bytes.
            self.target = tempfile.mkdtemp(prefix=f"sagemaker-model-{name[:64]}-")
        except BaseException:
            self._close_fd()
            raise
        self._process: subprocess.Popen[bytes] | None = None
        self._cancelled = False
        self._lock = threading.Lock()

    def run(self) -> int:
        """Unpack; the unpacked size in bytes, or ``Refused`` (and nothing left on disk)."""
        try:
            return self._run()
        except BaseException:
            self.remove()
            raise

    def _close_fd(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _source(self) -> IO[bytes]:
        if self.fd is None:
            return _open_regular(self.archive)
        fd, self.fd = self.fd, None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise _refused("Model archive is not a regular file.")
        return os.fdopen(fd, "rb")

    def _run(self) -> int:
        with self._source() as source, self._lock:
            if self._cancelled:
                raise Refused(503, "ServiceUnavailableException", "Server is shutting down.")
            command = [sys.executable, "-m", "sagemaker_inference.server.archives", "--target", self.target,
                       "--max-members", str(self.limits.max_members)]
            if self.limits.max_bytes is not None:
                command += ["--max-bytes", str(self.limits.max_bytes)]
            self._process = subprocess.Popen(command, stdin=source, stdout=subprocess.PIPE, close_fds=True)
        try:
            out, _ = self._process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.communicate()
            raise Refused(500, "InternalServerException",
                          f"Unpacking the model archive took longer than {self.timeout:g} s.") from None
        return _result(out, self._cancelled)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            process = self._process
            if process is None:
                self._close_fd()
        if process is not None and process.poll() is None:
            process.kill()
            try:
                process.wait(1.0)
            except subprocess.TimeoutExpired:
                pass
        self.remove()

    def remove(self) -> None:
        shutil.rmtree(self.target, ignore_errors=True)


def _open_regular(path: str) -> IO[bytes]:
    """The archive, refused unless it is a regular file (O_NONBLOCK: a FIFO must not hang us)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise _refused(f"Cannot open model archive: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _refused("Model archive is not a regular file.")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _result(out: bytes, cancelled: bool) -> int:
    try:
        result = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        if cancelled:
            raise Refused(503, "ServiceUnavailableException", "Server is shutting down.") from None
        raise Refused(500, "InternalServerException", "The archive unpacker exited without an answer.") from None
    if not result.get("ok"):
        raise Refused(int(result["status"]), str(result["type"]), str(result["message"]))
    return int(result["size"])


if __name__ == "__main__":
    sys.exit(main())

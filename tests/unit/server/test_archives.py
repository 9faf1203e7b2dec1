"""archives: one streaming pass over hostile tar files, every size bounded before it is spent.

``unpack_stream`` runs in-process on real archives built in tmp_path (the rules); ``Extraction``
runs the real child process (the frontend's side: the fd hand-off, the JSON line, cancel).
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import threading
import time
from pathlib import Path

import pytest

from sagemaker_inference.server import archives

MIB = 1024 * 1024
DEFAULT_LIMITS = archives.Limits()


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.size = kind, linkname, 0o644, size
    return info


def make_tar(path: Path, *members: tuple[tarfile.TarInfo, bytes], mode: str = "w:gz", **kwargs) -> Path:
    with tarfile.open(path, mode, **kwargs) as tar:
        for info, data in members:
            if info.isfile():
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def unpack(path: Path, target: Path, limits: archives.Limits = DEFAULT_LIMITS) -> dict[str, int]:
    target.mkdir(exist_ok=True)
    with open(path, "rb") as source:
        return archives.unpack_stream(source, str(target), limits)


def refused(path: Path, target: Path, limits: archives.Limits = DEFAULT_LIMITS) -> archives.Refused:
    with pytest.raises(archives.Refused) as caught:
        unpack(path, target, limits)
    return caught.value


def test_good_archive_is_unpacked_with_safe_modes(tmp_path):
    run = member("run.sh")
    run.mode = 0o4777
    path = make_tar(tmp_path / "m.tar.gz", (member("code", tarfile.DIRTYPE), b""),
                    (member("code/inference.py"), b"x = 2\n"), (member("./weights.bin"), b"w" * 500),
                    (run, b"#!/bin/sh\n"))
    result = unpack(path, tmp_path / "out")
    assert result == {"size": 6 + 500 + 10, "members": 4}
    assert (tmp_path / "out" / "code" / "inference.py").read_text() == "x = 2\n"
    assert stat.S_IMODE(os.stat(tmp_path / "out" / "run.sh").st_mode) == 0o755


@pytest.mark.parametrize("bad, message", [
    (member("../../evil.txt"), "Model archive entry escapes its directory: ../../evil.txt"),
    (member("code/../../evil.txt"), "Model archive entry escapes its directory: code/../../evil.txt"),
    (member("/tmp/evil.txt"), "Model archive entry escapes its directory: /tmp/evil.txt"),
    (member("link", tarfile.SYMTYPE, "/etc/passwd"), "Model archive entry is a link or device, refused: link"),
    (member("hard", tarfile.LNKTYPE, "code/inference.py"), "Model archive entry is a link or device, refused: hard"),
    (member("dev", tarfile.CHRTYPE), "Model archive entry is a link or device, refused: dev"),
    (member("blk", tarfile.BLKTYPE), "Model archive entry is a link or device, refused: blk"),
    (member("fifo", tarfile.FIFOTYPE), "Model archive entry is a link or device, refused: fifo"),
])
def test_unsafe_members_are_refused_before_they_are_written(tmp_path, bad, message):
    path = make_tar(tmp_path / "bad.tar.gz", (member("code/inference.py"), b"x = 1\n"), (bad, b"evil"))
    error = refused(path, tmp_path / "out")
    assert (error.status, error.error_type, error.message) == (400, "InvalidModelException", message)
    assert not (tmp_path / "evil.txt").exists()


def test_corrupt_archive_is_400(tmp_path):
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert refused(tmp_path / "broken.tar.gz", tmp_path / "out").message.startswith("Invalid model archive")


def test_gnu_long_name_header_bomb_is_refused_before_it_is_read(tmp_path):
    # A 150 MB long name: tarfile would read the whole header into memory.
    path = make_tar(tmp_path / "longname.tar", (member("x" * (archives.MAX_HEADER + 1)), b""),
                    mode="w", format=tarfile.GNU_FORMAT)
    assert "extended header" in refused(path, tmp_path / "out").message


def test_pax_header_bomb_is_refused(tmp_path):
    info = member("a")
    info.pax_headers = {"comment": "c" * (archives.MAX_HEADER + 1)}
    path = make_tar(tmp_path / "pax.tar", (info, b""), mode="w", format=tarfile.PAX_FORMAT)
    assert "extended header" in refused(path, tmp_path / "out").message


def test_ordinary_long_names_still_work(tmp_path):
    name = "d/" * 100 + "f.txt"
    path = make_tar(tmp_path / "ok.tar", (member(name), b"1"), mode="w", format=tarfile.GNU_FORMAT)
    unpack(path, tmp_path / "out")
    assert (tmp_path / "out" / name).read_bytes() == b"1"


def test_member_count_is_capped(tmp_path):
    path = make_tar(tmp_path / "many.tar", *((member(f"f{i}"), b"") for i in range(11)), mode="w")
    error = refused(path, tmp_path / "out", archives.Limits(max_members=10))
    assert error.message == "Model archive has more than 10 entries."


def gnu_sparse_tar(path: Path, claimed: int) -> Path:
    """A GNU sparse member (type 'S') claiming ``claimed`` bytes: tarfile cannot write one, so forge it."""
    info = member("sparse.bin", tarfile.GNUTYPE_SPARSE)
    info.size = 0
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    header[483:495] = b"%011o\x00" % claimed  # realsize
    header[148:156] = b"        "
    header[148:155] = b"%06o\x00" % sum(header[:512])
    path.write_bytes(bytes(header) + b"\0" * 1024)
    return path


def test_sparse_members_are_refused(tmp_path):
    path = gnu_sparse_tar(tmp_path / "sparse.tar", 150_000_000)
    assert "sparse" in refused(path, tmp_path / "out").message
    assert list((tmp_path / "out").iterdir()) == []


def test_pax_sparse_members_are_refused(tmp_path):
    info = member("sparse.bin")
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "sparse.bin",
                        "GNU.sparse.realsize": "150000000"}
    path = make_tar(tmp_path / "paxsparse.tar", (info, b"0\n"), mode="w", format=tarfile.PAX_FORMAT)
    assert "sparse" in refused(path, tmp_path / "out").message


def test_unpacked_size_is_capped_before_writing(tmp_path):
    # A gzip bomb: 64 MiB of zeros in ~64 KB; the cap is 16 MiB, nothing of the big member is written.
    path = make_tar(tmp_path / "bomb.tar.gz", (member("small"), b"s"), (member("big"), b"\0" * (64 * MIB)))
    assert path.stat().st_size < 200_000
    error = refused(path, tmp_path / "out", archives.Limits(max_bytes=16 * MIB))
    assert (error.status, "16 MiB") == (413, "16 MiB")
    assert not (tmp_path / "out" / "big").exists()


def test_free_disk_is_checked_before_writing(tmp_path, monkeypatch):
    path = make_tar(tmp_path / "m.tar.gz", (member("weights"), b"\0" * (2 * MIB)))
    real = os.statvfs(tmp_path)

    class Full:  # what statvfs reports on a disk with 1 MiB left
        f_frsize, f_blocks, f_bavail = 4096, real.f_blocks, (archives.DISK_RESERVE + MIB) // 4096

    monkeypatch.setattr(archives.os, "statvfs", lambda p: Full)
    error = refused(path, tmp_path / "out")
    assert (error.status, error.error_type) == (507, "InsufficientStorageException")
    assert not (tmp_path / "out" / "weights").exists()


@pytest.mark.parametrize("first, second", [("a", "a/b"), ("a/b", "a/b/c")])
def test_one_path_as_file_and_directory_is_400(tmp_path, first, second):
    path = make_tar(tmp_path / "clash.tar", (member(first), b"1"), (member(second), b"2"), mode="w")
    error = refused(path, tmp_path / "out")
    assert (error.status, "both as a file and as a directory" in error.message) == (400, True)


def test_directory_then_file_of_the_same_name_is_400(tmp_path):
    path = make_tar(tmp_path / "clash.tar", (member("a", tarfile.DIRTYPE), b""), (member("a"), b"x"), mode="w")
    assert refused(path, tmp_path / "out").status == 400


# -- the child process -------------------------------------------------------------------------


def test_extraction_in_a_child_process(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    monkeypatch.setattr(archives.tempfile, "tempdir", None)
    path = make_tar(tmp_path / "m.tar.gz", (member("code/inference.py"), b"x = 2\n"))
    extraction = archives.Extraction(str(path), "n" * 256, archives.Limits(), timeout=60)
    assert extraction.run() == 6
    assert Path(extraction.target, "code", "inference.py").read_text() == "x = 2\n"
    assert stat.S_IMODE(os.stat(extraction.target).st_mode) == 0o700
    extraction.remove()
    bad = make_tar(tmp_path / "bad.tar.gz", (member("../evil"), b"x"))
    failed = archives.Extraction(str(bad), "bad", archives.Limits(), timeout=60)
    with pytest.raises(archives.Refused) as caught:
        failed.run()
    assert caught.value.status == 400 and "escapes" in caught.value.message
    assert list((tmp_path / "scratch").iterdir()) == []  # nothing left behind


def test_the_child_honours_the_cap_with_rlimit_too(tmp_path):
    path = make_tar(tmp_path / "big.tar.gz", (member("big"), b"\0" * (3 * MIB)))
    extraction = archives.Extraction(str(path), "big", archives.Limits(max_bytes=MIB), timeout=60)
    with pytest.raises(archives.Refused) as caught:
        extraction.run()
    assert caught.value.status == 413
    assert not os.path.exists(extraction.target)


def test_a_symlinked_or_special_archive_is_not_opened(tmp_path):
    path = make_tar(tmp_path / "m.tar.gz", (member("a"), b"x"))
    (tmp_path / "link.tar.gz").symlink_to(path)
    os.mkfifo(tmp_path / "fifo.tar")
    for name in ("link.tar.gz", "fifo.tar"):
        extraction = archives.Extraction(str(tmp_path / name), "x", archives.Limits(), timeout=60)
        with pytest.raises(archives.Refused):
            extraction.run()


def test_cancel_kills_the_child_and_deletes_what_it_wrote(tmp_path):
    # A FIFO-fed archive that never ends stands in for a huge one: the child blocks reading it.
    path = make_tar(tmp_path / "m.tar", (member("a"), b"x" * 1000), mode="w")
    extraction = archives.Extraction(str(path), "slow", archives.Limits(), timeout=60)
    data = path.read_bytes()[:1024]  # a header and part of the data, then silence

    read, write = os.pipe()
    os.write(write, data)
    opened = archives._open_regular

    def stalled(_path):
        return os.fdopen(read, "rb")

    archives._open_regular = stalled
    try:
        outcome: list[BaseException] = []
        thread = threading.Thread(target=lambda: _run_capturing(extraction, outcome))
        thread.start()
        deadline = time.monotonic() + 30
        while extraction._process is None and time.monotonic() < deadline:
            time.sleep(0.01)
        extraction.cancel()
        thread.join(30)
    finally:
        archives._open_regular = opened
        os.close(write)
    assert not thread.is_alive()
    assert isinstance(outcome[0], archives.Refused) and outcome[0].status == 503
    assert not os.path.exists(extraction.target)


def _run_capturing(extraction: archives.Extraction, outcome: list[BaseException]) -> None:
    try:
        extraction.run()
    except BaseException as exc:  # noqa: B036 - handed to the test thread
        outcome.append(exc)

"""Multi-model safety against the real server: urls outside the model root, symlink escapes and
tar-slip archives are refused, and nothing outside the root is read, fetched or created.

Proof of "nothing touched": the decoy model outside the root writes a marker file when imported;
a listening socket stands in for a remote model host and must see no connection; the directory
tree outside the root must be byte-for-byte what it was.
"""

from __future__ import annotations

import io
import socket
import tarfile
from pathlib import Path

import pytest

from tests.e2e.test_mme import add_model, error, invoke, names, register, start_mme

DECOY = """
open({marker!r}, "w").close()  # importing this module proves the server loaded a model outside its root

def model_fn(model_dir):
    return "decoy"
"""


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Every path below ``directory`` with its size and mtime, to show nothing changed."""
    return {str(p.relative_to(directory)): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in sorted(directory.rglob("*"))}


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path, Path]:
    """``models/`` (the root) next to ``outside/`` holding a decoy model, and ``scratch/`` as TMPDIR."""
    root, outside, scratch = tmp_path / "models", tmp_path / "outside", tmp_path / "scratch"
    add_model(outside, "decoy", DECOY.format(marker=str(tmp_path / "DECOY_LOADED")))
    add_model(root, "good")
    scratch.mkdir()
    return root, outside, scratch


def test_urls_outside_the_root_are_refused_and_nothing_is_read(layout, tmp_path):
    root, outside, scratch = layout
    (root / "abs-link").symlink_to(outside / "decoy")
    (root / "rel-link").symlink_to("../outside/decoy")
    (root / "good" / "up").symlink_to("../..")
    (root / "loop").symlink_to("loop")
    with socket.socket() as remote:  # stands in for an attacker's model host
        remote.bind(("127.0.0.1", 0))
        remote.listen(8)
        remote.setblocking(False)
        host, port = remote.getsockname()
        before = snapshot(outside)
        attempts = {
            str(outside / "decoy"): 400,
            "../outside/decoy": 404,
            "good/../../outside/decoy": 404,
            "abs-link": 400,
            "rel-link": 400,
            "good/up/outside/decoy": 400,
            "abs-link/code": 400,
            "loop": 400,
            f"file://{outside / 'decoy'}": 400,
            f"http://{host}:{port}/decoy.tar.gz": 400,
            f"https://{host}:{port}/decoy.tar.gz": 400,
            "/etc": 400,
            "/": 400,
        }
        with start_mme(root, env={"TMPDIR": str(scratch)}) as server:
            for i, (url, status) in enumerate(attempts.items()):
                assert error(register(server, f"attempt{i}", url))[0] == status, url
            assert names(server) == []
            # The refusals left the server fully working.
            assert register(server, "good", "good").status_code == 200
            assert invoke(server, "good", [1]).json()["model"] == "good"
        with pytest.raises(BlockingIOError):
            remote.accept()  # nobody connected: the server never fetches
    assert not (tmp_path / "DECOY_LOADED").exists()
    assert snapshot(outside) == before
    assert list(scratch.iterdir()) == []


def tar_with(path: Path, *entries: tuple[str, bytes, str]) -> Path:
    """A gzipped tar of (name, type, linkname) entries; regular files get a small body."""
    with tarfile.open(path, "w:gz") as tar:
        code = tarfile.TarInfo("code/inference.py")
        source = b"def model_fn(model_dir):\n    return 'x'\n"
        code.size = len(source)
        tar.addfile(code, io.BytesIO(source))
        for name, kind, link in entries:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, link
            body = b"escaped" if kind == tarfile.REGTYPE else b""
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body) if body else None)
    return path


SLIPS = {
    "parent": ("../../../../escaped.txt", tarfile.REGTYPE, ""),
    "nested-parent": ("code/../../../escaped.txt", tarfile.REGTYPE, ""),
    "absolute": ("/tmp/escaped.txt", tarfile.REGTYPE, ""),
    "symlink": ("code/link", tarfile.SYMTYPE, "../../../outside"),
    "hardlink": ("code/hard", tarfile.LNKTYPE, "/etc/passwd"),
    "device": ("code/null", tarfile.CHRTYPE, ""),
    "fifo": ("code/fifo", tarfile.FIFOTYPE, ""),
}


def test_tar_slip_archives_are_refused_and_nothing_is_created(layout, tmp_path):
    root, outside, scratch = layout
    for kind, entry in SLIPS.items():
        (root / kind / "model").mkdir(parents=True)
        tar_with(root / kind / "model" / "model.tar.gz", entry)
    # A symlink planted first, then a file written "through" it: the classic two-step slip.
    (root / "two-step" / "model").mkdir(parents=True)
    tar_with(root / "two-step" / "model" / "model.tar.gz", ("code/dir", tarfile.SYMTYPE, str(outside)),
             ("code/dir/escaped.txt", tarfile.REGTYPE, ""))
    before_outside, before_root = snapshot(outside), snapshot(root)
    with start_mme(root, env={"TMPDIR": str(scratch)}) as server:
        for kind in [*SLIPS, "two-step"]:
            status, error_type, message = error(register(server, kind, f"{kind}/model"))
            assert (status, error_type) == (400, "InvalidModelException"), (kind, message)
            assert message.startswith(("Model archive entry is a link or device", "Model archive entry escapes")), \
                message
        assert names(server) == []
    assert list(tmp_path.rglob("escaped*")) == []
    assert not Path("/tmp/escaped.txt").exists() or Path("/tmp/escaped.txt").read_bytes() != b"escaped"
    assert snapshot(outside) == before_outside
    assert snapshot(root) == before_root
    assert list(scratch.iterdir()) == []  # nothing was unpacked, not even partly

"""model_store: url resolution inside the model root, archive unpacking, names, memory figures.

Real files in tmp_path throughout. The "nothing outside was touched" tests record every path the
resolver hands to the OS (``os.lstat``, ``os.stat``, ``os.readlink``, ``os.listdir``, ``os.open``)
and check none is outside the root.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from sagemaker_inference.server import memory
from sagemaker_inference.server import model_store as ms
from sagemaker_inference.server.registry import LoadError

MIB = 1024 * 1024


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    (root / "m1" / "code").mkdir(parents=True)
    (root / "m1" / "code" / "inference.py").write_text("x = 1\n")
    (root / "m1" / "weights.bin").write_bytes(b"\0" * 1000)
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    (outside / "model" / "code").mkdir(parents=True)
    (outside / "model" / "code" / "inference.py").write_text("x = 1\n")
    return outside


def make_tar(path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, 0o644
    return info


def refused(status: int, call, *args) -> LoadError:
    with pytest.raises(LoadError) as caught:
        call(*args)
    assert caught.value.status == status
    return caught.value


# -- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["m", "model-1", "a.b_c", "x" * 256, "0f3a9c"])
def test_valid_names(name):
    ms.validate_name(name)


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "x" * 257, "a b", "é", "a\x00", "model;rm"])
def test_invalid_names_are_400(name):
    error = refused(400, ms.validate_name, name)
    assert error.error_type == "BadRequestException"
    assert error.message.startswith("Invalid model name: ")


@pytest.mark.parametrize("url, name", [("/opt/ml/models/abc/model", "model"), ("m1/", "m1"),
                                       ("x/resnet.tar.gz", "resnet"), ("a.tgz", "a"), ("b.tar", "b")])
def test_default_name_is_the_last_segment(url, name):
    assert ms.default_name(url) == name


# -- urls --------------------------------------------------------------------------------------


def test_relative_and_absolute_urls_inside_the_root(root):
    expected = os.path.realpath(root / "m1")
    assert ms.resolve("m1", str(root)).path == expected
    assert ms.resolve(str(root / "m1"), str(root)).path == expected
    assert ms.resolve("./m1/", str(root)).path == expected


def test_directory_size_counts_regular_files(root):
    source = ms.resolve("m1", str(root))
    assert not source.is_archive
    assert source.size == 1000 + len("x = 1\n")
    assert source.hint is None
    assert source.footprint(3) == 3 * (ms.WORKER_BASE_BYTES + source.size)


def test_directory_size_follows_symlinks_inside_and_counts_hard_links_once(root, outside):
    base = ms.resolve("m1", str(root)).size
    (root / "m1" / "shared").mkdir()
    (root / "m1" / "shared" / "big.bin").write_bytes(b"\0" * 5000)
    (root / "m1" / "weights-link.bin").symlink_to("shared/big.bin")  # counted once: same file
    os.link(root / "m1" / "shared" / "big.bin", root / "m1" / "hard.bin")  # the same inode again
    (root / "m2").mkdir()
    (root / "m2" / "w.bin").write_bytes(b"\0" * 700)
    (root / "m1" / "other").symlink_to("../m2")  # leaves the model directory: not counted
    (root / "m1" / "out.bin").symlink_to(outside / "model" / "code" / "inference.py")
    (root / "m1" / "loop").symlink_to(".")
    assert ms.resolve("m1", str(root)).size == base + 5000
    (root / "m1" / "shared" / "big.bin").unlink()
    (root / "m1" / "hard.bin").unlink()
    (root / "m1" / "real.bin").write_bytes(b"\0" * 300)
    (root / "m1" / "weights-link.bin").unlink()
    (root / "m1" / "weights-link.bin").symlink_to("real.bin")
    (root / "m1" / "dir-link").symlink_to("shared")
    (root / "m1" / "shared" / "inner.bin").write_bytes(b"\0" * 11)
    assert ms.resolve("m1", str(root)).size == base + 300 + 11


def test_memory_hint_file_wins_over_size(root):
    (root / "m1" / "memory_mb").write_text("2.5\n")
    source = ms.resolve("m1", str(root))
    assert source.hint == int(2.5 * MIB)
    assert source.footprint(2) == 2 * ms.WORKER_BASE_BYTES + 5 * MIB


@pytest.mark.parametrize("text", ["lots", "-1", "nan", ""])
def test_malformed_memory_hint_is_400(root, text):
    (root / "m1" / "memory_mb").write_text(text)
    assert refused(400, ms.resolve, "m1", str(root)).error_type == "InvalidModelException"


def test_symlinked_memory_hint_is_ignored(root, outside):
    (outside / "hint").write_text("999999")
    (root / "m1" / "memory_mb").symlink_to(outside / "hint")
    assert ms.resolve("m1", str(root)).hint is None


@pytest.mark.parametrize("url, status, message", [
    ("../outside/model", 404, "Relative path is not allowed in url: ../outside/model"),
    ("m1/../../outside/model", 404, "Relative path is not allowed in url: m1/../../outside/model"),
    ("file:///etc", 400, "Only paths inside the model root are allowed in url: file:///etc"),
    ("http://169.254.169.254/latest", 400, "Only paths inside the model root are allowed in url: "
                                           "http://169.254.169.254/latest"),
    ("s3://bucket/model.tar.gz", 400, "Only paths inside the model root are allowed in url: s3://bucket/model.tar.gz"),
    ("/etc", 400, "Model url is outside the model root: /etc"),
    ("missing", 404, "Model not found in model store: missing"),
    ("m1/weights.bin/x", 404, "Model not found in model store: m1/weights.bin/x"),
    ("m1/weights.bin", 400, "Model url is not a directory or tar archive: m1/weights.bin"),
    ("m1\nx", 400, "Invalid character in url."),
])
def test_refused_urls(root, url, status, message):
    assert refused(status, ms.resolve, url, str(root)).message == message


@pytest.mark.parametrize("url", ["", ".", "self", "ROOT", "ROOT/"])
def test_the_root_itself_is_not_a_model(root, url):
    (root / "self").symlink_to(".")
    url = url.replace("ROOT", str(root))
    assert refused(400, ms.resolve, url, str(root)).message == f"Model url must be below the model root: {url}"


def test_sibling_with_root_as_prefix_is_outside(root, tmp_path):
    (tmp_path / "models-evil" / "m").mkdir(parents=True)
    refused(400, ms.resolve, str(tmp_path / "models-evil" / "m"), str(root))


def test_symlinks_inside_the_root_are_followed(root):
    (root / "alias").symlink_to(root / "m1")
    (root / "rel").symlink_to("m1")
    (root / "deep").mkdir()
    (root / "deep" / "up").symlink_to("../m1")
    for url in ("alias", "rel", "deep/up", "deep/up/"):
        assert ms.resolve(url, str(root)).path == os.path.realpath(root / "m1")


@pytest.mark.parametrize("how", ["absolute", "relative", "chained", "nested"])
def test_symlink_escapes_are_refused(root, outside, how):
    if how == "absolute":
        (root / "esc").symlink_to(outside / "model")
    elif how == "relative":
        (root / "esc").symlink_to("../outside/model")
    elif how == "chained":
        (root / "hop").symlink_to("esc2")
        (root / "esc2").symlink_to("/")
        (root / "esc").symlink_to("hop")
    else:
        (root / "m1" / "up").symlink_to("../..")
        (root / "esc").symlink_to("m1/up/outside/model")
    assert refused(400, ms.resolve, "esc", str(root)).message == "Model url is outside the model root: esc"


def test_symlink_loop_is_refused(root):
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("a")
    assert refused(400, ms.resolve, "a", str(root)).message == "Too many symbolic links in url: a"


def test_resolution_never_touches_paths_outside_the_root(root, outside, monkeypatch):
    (root / "abs").symlink_to(outside / "model")
    (root / "rel").symlink_to("../outside/model")
    (root / "m1" / "up").symlink_to("../..")
    (root / "via").symlink_to("m1/up/outside/model")
    touched: list[str] = []
    readlink = os.readlink

    def where(path, dir_fd):
        """The absolute path an ``*at()`` call (or a call on a descriptor) designates."""
        if isinstance(path, int):
            return readlink(f"/proc/self/fd/{path}")
        path = os.fspath(path)
        return os.path.join(readlink(f"/proc/self/fd/{dir_fd}"), path) if dir_fd is not None else path

    for name in ("lstat", "stat", "readlink", "listdir", "open"):
        original = getattr(os, name)

        def spy(path, *args, _original=original, **kwargs):
            touched.append(os.path.normpath(where(path, kwargs.get("dir_fd"))))
            return _original(path, *args, **kwargs)

        monkeypatch.setattr(os, name, spy)
    for url in ("abs", "rel", "via", "abs/code", str(outside / "model"), "../outside/model"):
        with pytest.raises(LoadError):
            ms.resolve(url, str(root))
    monkeypatch.undo()
    real_root = os.path.realpath(root)
    assert touched, "the spy saw nothing"
    # Inside the root, or the root's own ancestors (realpath(root) walks those).
    assert all(p.startswith(real_root + os.sep) or real_root.startswith(p) for p in touched), touched
    assert not any(p.startswith(str(outside)) for p in touched)


def test_root_given_through_a_symlink(root, tmp_path):
    (tmp_path / "link-to-root").symlink_to(root)
    via = str(tmp_path / "link-to-root")
    assert ms.resolve(f"{via}/m1", via).path == os.path.realpath(root / "m1")
    assert ms.resolve(f"{root}/m1", via).path == os.path.realpath(root / "m1")


# -- archive urls (unpacking: test_archives.py) ----------------------------------------------


def good_archive(path: Path) -> Path:
    return make_tar(path, (member("code", tarfile.DIRTYPE), b""),
                    (member("code/inference.py"), b"x = 2\n"),
                    (member("./weights.bin"), b"w" * 500),
                    (member("memory_mb"), b"3"))


def test_archive_file_url_is_not_read_by_resolve(root, monkeypatch):
    good_archive(root / "m2.tar.gz")
    monkeypatch.setattr(tarfile, "open", None)  # the frontend never parses an archive itself
    source = ms.resolve("m2.tar.gz", str(root))
    assert source.is_archive and source.path == os.path.realpath(root / "m2.tar.gz")
    os.close(source.fd)


def test_the_archive_handed_over_is_the_file_the_walk_checked(root, outside):
    good_archive(root / "m2.tar.gz")
    source = ms.resolve("m2.tar.gz", str(root))
    # Swapped for a symlink to outside after resolution: the open file is still the checked one.
    (root / "m2.tar.gz").rename(root / "old.tar.gz")
    (outside / "evil.tar.gz").write_bytes(b"evil")
    (root / "m2.tar.gz").symlink_to(outside / "evil.tar.gz")
    with os.fdopen(source.fd, "rb") as f:
        assert f.read(2) == b"\x1f\x8b"  # gzip, not "evil"


def test_directory_holding_only_model_tar_gz_is_the_archive(root):
    (root / "sm" / "model").mkdir(parents=True)
    good_archive(root / "sm" / "model" / "model.tar.gz")
    (root / "sm" / "model" / ".hidden").write_text("")
    source = ms.resolve(str(root / "sm" / "model"), str(root))
    assert source.is_archive and source.path.endswith("model.tar.gz")
    os.close(source.fd)


def test_directory_with_more_than_the_archive_is_served_in_place(root):
    good_archive(root / "m1" / "model.tar.gz")
    assert not ms.resolve("m1", str(root)).is_archive


# -- memory ------------------------------------------------------------------------------------


def test_budget_minus_committed():
    free = memory.available_memory(100 * MIB, 30 * MIB, 0)
    assert free is not None and free <= 70 * MIB


def test_never_negative():
    assert memory.available_memory(10 * MIB, 30 * MIB, 0) == 0


def test_measured_memory_is_found_on_linux():
    # Without a budget the figure comes from cgroup / MemAvailable; on Linux one of them exists.
    assert memory.available_memory(None, 0, 0) is not None

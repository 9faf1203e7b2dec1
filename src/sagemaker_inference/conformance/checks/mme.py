"""Multi-model endpoints: the management API's lifecycle as the platform drives it, and path safety.

The platform registers with ``POST /models {"model_name", "url"}`` and invokes ``POST /models/{name}/invoke``.
Path safety from outside (any server): URLs naming places outside any model root (absolute system paths, ``..``,
``file://``, remote archives) must get 4xx and load nothing. From inside (``--serve``, the kit owns the model
root): a decoy model outside the root that writes a marker when imported, symlinks out of the root, and tar
archives with traversal, link and device entries must all be refused without a trace outside the root.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path

from sagemaker_inference.conformance import wire
from sagemaker_inference.conformance.probe import Probe
from sagemaker_inference.conformance.registry import Result, check

DECOY = """\
open({marker!r}, "w").close()  # importing this proves the server loaded a model from outside its root


def model_fn(model_dir):
    return "decoy"
"""


def register(probe: Probe, name: str, url: str, timeout: float = 60.0) -> wire.Response:
    body = json.dumps({"model_name": name, "url": url}).encode()
    return probe.send(wire.request("POST", "/models", body, {"Content-Type": "application/json"}), timeout)


def register_status(probe: Probe, name: str, url: str) -> int | str:
    """The status of a registration, or how it failed to answer (``timeout``, ``closed``...)."""
    try:
        return register(probe, name, url, timeout=30.0).status
    except wire.NoResponse as exc:
        return exc.why


def _refused(status: int | str) -> bool:
    return isinstance(status, int) and status // 100 == 4


def _delete(probe: Probe, name: str) -> int:
    return probe.send(wire.request("DELETE", f"/models/{name}"), 60.0).status


def _listed(probe: Probe) -> list[str]:
    try:
        models = json.loads(probe.get("/models").body).get("models", [])
    except ValueError:
        return []
    return [m.get("modelName", "") for m in models if isinstance(m, dict)]


@check("mme.list", "mme.unknown-model", needs=("multi",), budget=30,
       about="GET /models lists; describe, invoke and delete of an unknown model get 404")
def listing(probe: Probe) -> Iterator[Result]:
    response = probe.get("/models")
    yield Result("mme.list", response.status == 200, f"GET /models: {response.status} {response.body[:100]!r}")
    statuses = {
        "GET /models/conformance-missing": probe.get("/models/conformance-missing").status,
        "POST /models/conformance-missing/invoke": probe.send(wire.request(
            "POST", "/models/conformance-missing/invoke", b"[1]", {"Content-Type": "application/json"})).status,
        "DELETE /models/conformance-missing": _delete(probe, "conformance-missing"),
    }
    yield Result("mme.unknown-model", all(s == 404 for s in statuses.values()), f"{statuses}")


def lifecycle_url(probe: Probe) -> str | None:
    if probe.options.mme_model:
        return probe.options.mme_model
    if probe.served is not None:  # the platform's layout: /opt/ml/models/<id>/model
        target = probe.served.base_dir / "models" / "conformance-good" / "model"
        if not target.exists():
            shutil.copytree(probe.served.base_dir / "model", target, symlinks=True)
        return str(target)
    return None


@check("mme.lifecycle", needs=("multi",), budget=180,
       about="register, list, invoke, duplicate (409), unregister, invoke after (404), as the platform does")
def lifecycle(probe: Probe) -> Iterator[Result]:
    url = lifecycle_url(probe)
    if url is None:
        yield Result("mme.lifecycle", False, "no model to load: pass --mme-model URL (a model directory the "
                                             "server can load), or use --serve")
        return
    name = "conformance-lifecycle"
    steps: list[tuple[str, object, bool]] = []
    created = register(probe, name, url).status
    steps.append(("register", created, created == 200))
    steps.append(("listed", name in _listed(probe), name in _listed(probe)))
    content_type, body = probe.sample
    probe.target_model = name
    try:
        invoked = probe.invoke(body, content_type).status
    finally:
        probe.target_model = None
    steps.append(("invoke", invoked, invoked // 100 == 2))
    again = register(probe, name, url).status
    steps.append(("register again", again, again == 409))
    deleted = _delete(probe, name)
    steps.append(("unregister", deleted, deleted == 200))
    after = probe.send(wire.request("POST", f"/models/{name}/invoke", body, {"Content-Type": content_type})).status
    steps.append(("invoke after", after, after == 404))
    steps.append(("unlisted", name not in _listed(probe), name not in _listed(probe)))
    yield Result("mme.lifecycle", all(ok for _, _, ok in steps),
                 "; ".join(f"{step} {value}{'' if ok else ' (WRONG)'}" for step, value, ok in steps),
                 sum(1 for *_, ok in steps if ok), "steps")


@check("mme.path-safety-urls", needs=("multi",), budget=120,
       about="model URLs outside any model root (/etc, .., file://, http://) get 4xx and are never fetched")
def unsafe_urls(probe: Probe) -> Iterator[Result]:
    with socket.socket() as remote:  # stands in for an attacker's model host: nobody may connect to it
        remote.bind(("127.0.0.1", 0))
        remote.listen(8)
        remote.setblocking(False)
        port = remote.getsockname()[1]
        urls = ["/etc", "/", "/proc/self/cwd", "/tmp", "../../../../etc", "models/../../../etc", "file:///etc",
                f"http://127.0.0.1:{port}/model.tar.gz", f"https://127.0.0.1:{port}/model.tar.gz",
                "s3://conformance-bucket/model.tar.gz", " /etc", "/etc/passwd"]
        answers = {url: register_status(probe, f"conformance-url-{i}", url) for i, url in enumerate(urls)}
        try:
            remote.accept()
            fetched = True
        except BlockingIOError:
            fetched = False
    loaded = [n for n in _listed(probe) if n.startswith("conformance-url-")]
    for name in loaded:
        _delete(probe, name)
    bad = {url: status for url, status in answers.items() if not _refused(status)}
    yield Result("mme.path-safety-urls", not bad and not fetched and not loaded,
                 f"{len(urls) - len(bad)} of {len(urls)} refused with 4xx"
                 + (f"; NOT refused: {bad}" if bad else "") + ("; the server FETCHED the remote URL" if fetched else "")
                 + (f"; loaded: {loaded}" if loaded else ""), len(bad), "accepted",
                 extra={"answers": answers})


def _tar(path: Path, name: str, kind: bytes, link: str = "") -> None:
    with tarfile.open(path, "w:gz") as tar:
        source = b"def model_fn(model_dir):\n    return 'x'\n"
        code = tarfile.TarInfo("code/inference.py")
        code.size = len(source)
        tar.addfile(code, io.BytesIO(source))
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, link
        payload = b"escaped" if kind == tarfile.REGTYPE else b""
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload) if payload else None)


@check("mme.path-safety-files", needs=("multi", "process"), budget=240,
       about="decoys outside the root, symlinks out and tar archives with traversal/link/device entries are refused")
def unsafe_files(probe: Probe) -> Iterator[Result]:
    assert probe.served is not None
    root = probe.served.base_dir / "models"
    outside = probe.served.workdir / "outside"
    marker = probe.served.workdir / "DECOY_LOADED"
    decoy = outside / "decoy"
    (decoy / "code").mkdir(parents=True, exist_ok=True)
    (decoy / "code" / "inference.py").write_text(DECOY.format(marker=str(marker)))
    (root / "link-out").symlink_to(decoy)
    (root / "link-up").symlink_to("../../outside/decoy")
    attempts = {"absolute path outside": str(decoy), "symlink out (absolute)": str(root / "link-out"),
                "symlink out (relative)": str(root / "link-up"),
                "dot-dot": str(root / ".." / ".." / "outside" / "decoy")}
    slips = {"parent": ("../../../escaped-parent.txt", tarfile.REGTYPE, ""),
             "absolute": (str(probe.served.workdir / "escaped-absolute.txt"), tarfile.REGTYPE, ""),
             "symlink": ("code/link", tarfile.SYMTYPE, "../../../outside"),
             "hardlink": ("code/hard", tarfile.LNKTYPE, "/etc/passwd"),
             "device": ("code/null", tarfile.CHRTYPE, ""), "fifo": ("code/fifo", tarfile.FIFOTYPE, "")}
    for kind, (entry, typ, link) in slips.items():
        archive = root / f"slip-{kind}.tar.gz"
        _tar(archive, entry, typ, link)
        attempts[f"archive with a {kind} entry"] = str(archive)
    answers = {what: register_status(probe, f"conformance-file-{i}", url) for i, (what, url) in enumerate(
        attempts.items())}
    loaded = [n for n in _listed(probe) if n.startswith("conformance-file-")]
    for name in loaded:
        _delete(probe, name)
    created = sorted(str(p) for p in probe.served.workdir.rglob("escaped*") if root not in p.parents)
    bad = {what: status for what, status in answers.items() if not _refused(status)}
    ran = marker.exists()
    yield Result("mme.path-safety-files", not bad and not ran and not created and not loaded,
                 f"{len(attempts) - len(bad)} of {len(attempts)} refused with 4xx"
                 + (f"; NOT refused: {bad}" if bad else "")
                 + ("; the decoy outside the root RAN (its code was imported)" if ran else "")
                 + (f"; created outside the root: {created}" if created else "")
                 + (f"; loaded: {loaded}" if loaded else ""), len(bad), "accepted", extra={"answers": answers})

"""Issue 15's figures, before (a git revision) and after (this tree), in one run:

1. decode throughput of the default codecs for ordinary JSON (numbers, strings), NPY and NPZ bodies:
   the bounds added for hostile bodies must cost ordinary ones nothing (within 3 %);
2. frontend ``/ping`` latency (p50/p99) and an unrelated model's req/s on a multi-model server while a
   1 GB archive is registered (POST /models, synchronous), against the same figures with nothing loading.

    python bench/hostile.py [--before 878ee78] [--quick] [--archive-mb 1024] [--skip-archive]

``--before`` is the revision to compare with (default: the last commit before issue 15's changes); its
``src/`` is exported with ``git archive`` into a temp dir and served from there (PYTHONPATH). The archive
(pseudo-random, incompressible weights plus 2,000 small files, gzip level 1) is generated in a temp dir
and deleted at the end.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BEFORE = "878ee78"  # main just before issue 15's first commit

ECHO = """
def model_fn(model_dir):
    return None

def predict_fn(data, model):
    return data
"""


# -- 1. codecs ---------------------------------------------------------------------------------


def codec_bodies() -> dict[str, tuple[bytes, str]]:
    import numpy as np
    import scipy.sparse

    rng = np.random.default_rng(0)
    npy = io.BytesIO()
    np.save(npy, rng.random((32, 16)))
    npz = io.BytesIO()
    scipy.sparse.save_npz(npz, scipy.sparse.random(100, 100, density=0.05, format="csr", random_state=0))
    return {
        "json numbers 32x16": (json.dumps(rng.random((32, 16)).round(4).tolist()).encode(), "application/json"),
        "json strings 64": (json.dumps([f"sentence number {i}" for i in range(64)]).encode(), "application/json"),
        "json strings 2000": (json.dumps([f"sentence number {i}" * 2 for i in range(2000)]).encode(),
                              "application/json"),
        "npy 32x16 f8": (npy.getvalue(), "application/x-npy"),
        "npz csr 100x100": (npz.getvalue(), "application/x-npz"),
    }


def load_decoder(source: str, name: str):
    path = Path(tempfile.mkdtemp(prefix="bench-decoder-")) / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shutil.rmtree(path.parent)
    return module


def bench_codecs(before: str, quick: bool) -> None:
    old_source = subprocess.run(["git", "-C", str(REPO), "show", f"{before}:src/sagemaker_inference/decoder.py"],
                                check=True, capture_output=True, text=True).stdout
    old = load_decoder(old_source, "decoder_before")
    new = load_decoder((REPO / "src/sagemaker_inference/decoder.py").read_text(), "decoder_after")
    number, repeat = (300, 5) if quick else (1000, 9)
    print(f"decode, CPU µs per body (best of {repeat} x {number}, interleaved; before = {before})")
    print(f"{'body':22} {'bytes':>7} {'before':>9} {'after':>9} {'change':>8}")
    for label, (body, content_type) in codec_bodies().items():
        times = {}
        for _ in range(3 if quick else 5):  # interleaved, so that machine noise hits both alike
            for key, module in (("before", old), ("after", new)):
                call = lambda m=module, b=body, t=content_type: m.decode(b, t)  # noqa: E731
                # CPU time of this process: time spent descheduled on a busy machine is not counted.
                best = min(timeit.repeat(call, number=number, repeat=repeat, timer=time.process_time))
                times[key] = min(times.get(key, best), best)
        before_us, after_us = (times[k] / number * 1e6 for k in ("before", "after"))
        print(f"{label:22} {len(body):7d} {before_us:9.1f} {after_us:9.1f} {100 * (after_us / before_us - 1):+7.1f}%")


# -- 2. a large archive registered while others are served ------------------------------------


def make_archive(path: Path, megabytes: int) -> None:
    block = os.urandom(1 << 20)
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        code = ECHO.encode()
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(code)
        tar.addfile(info, io.BytesIO(code))
        for i in range(2000):
            info = tarfile.TarInfo(f"vocab/{i}.txt")
            info.size = 100
            tar.addfile(info, io.BytesIO(block[i:i + 100]))
        chunk = 64
        for i in range(max(1, megabytes // chunk)):
            info = tarfile.TarInfo(f"weights/part{i}.bin")
            info.size = chunk << 20
            tar.addfile(info, _Repeating(block, i, info.size))


class _Repeating(io.RawIOBase):
    """``size`` bytes of a random block, rotated per member: incompressible, cheap to produce."""

    def __init__(self, block: bytes, shift: int, size: int):
        self.data = block[shift * 4099 % len(block):] + block[:shift * 4099 % len(block)]
        self.left, self.offset = size, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        out = bytearray()
        while len(out) < n:
            piece = self.data[self.offset:self.offset + n - len(out)]
            out += piece
            self.offset = (self.offset + len(piece)) % len(self.data)
        self.left -= n
        return bytes(out)


class Server:
    """``python -m sagemaker_inference serve --multi-model`` from the given ``src`` directory."""

    def __init__(self, src: Path, root: Path, scratch: Path):
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "MMS_"))}
        env.update(PYTHONPATH=str(src), TMPDIR=str(scratch), SAGEMAKER_MULTI_MODEL="true", PYTHONUNBUFFERED="1",
                   SAGEMAKER_STARTUP_TIMEOUT="1200")
        self.log = open(scratch.parent / f"server-{self.port}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "sagemaker_inference", "serve", "--host", "127.0.0.1",
                                      "--port", str(self.port), "--workers", "1", "--model-root", str(root)],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _call(self.port, "GET", "/ping")[0] == 200:
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(port: int, method: str, path: str, body: bytes = b"", timeout: float = 5) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


class Traffic:
    """Two client threads on keep-alive connections: /ping, and the unrelated model's invoke."""

    def __init__(self, port: int):
        self.port, self.stop = port, threading.Event()
        self.ping: list[float] = []
        self.invokes: list[float] = []
        self.threads = [threading.Thread(target=self._loop, args=("GET", "/ping", b"", self.ping)),
                        threading.Thread(target=self._loop, args=("POST", "/models/echo/invoke", b"[1, 2]",
                                                                  self.invokes))]

    def _loop(self, method: str, path: str, body: bytes, out: list[float]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/json"} if body else {}
        while not self.stop.is_set():
            started = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                out.append(time.perf_counter() - started)
        conn.close()

    def window(self, seconds: float | None = None, during: threading.Thread | None = None) -> dict[str, float]:
        """Figures over ``seconds`` of traffic, or for as long as ``during`` runs."""
        self.ping.clear()
        self.invokes.clear()
        started = time.perf_counter()
        if during is not None:
            during.start()
            during.join()
        else:
            time.sleep(seconds or 0)
        elapsed = time.perf_counter() - started
        ping = sorted(self.ping)
        return {"seconds": elapsed, "ping_p50_ms": _pct(ping, 0.50) * 1e3, "ping_p99_ms": _pct(ping, 0.99) * 1e3,
                "ping_max_ms": (ping[-1] if ping else 0) * 1e3, "invoke_rps": len(self.invokes) / elapsed,
                "invoke_p99_ms": _pct(sorted(self.invokes), 0.99) * 1e3}


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def bench_archive(before: str, quick: bool, megabytes: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        work = Path(tmp)
        trees = {"before": work / "before", "after": REPO / "src"}
        (work / "before").mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", before, "src"], check=True,
                                 capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(work / "before", filter="data")
        trees["before"] = work / "before" / "src"
        root = work / "models"
        (root / "echo" / "code").mkdir(parents=True)
        (root / "echo" / "code" / "inference.py").write_text(ECHO)
        started = time.perf_counter()
        make_archive(root / "big.tar.gz", megabytes)
        size = (root / "big.tar.gz").stat().st_size
        print(f"\narchive: {size / 2**20:.0f} MiB gzip, {megabytes} MiB of weights + 2,000 small files "
              f"(generated in {time.perf_counter() - started:.1f} s)")
        idle = 2.0 if quick else 5.0
        print(f"{'':7} {'phase':16} {'s':>6} {'ping p50':>9} {'ping p99':>9} {'ping max':>9} {'echo req/s':>11} "
              f"{'echo p99':>9}  load")
        for label, src in trees.items():
            scratch = work / f"scratch-{label}"
            scratch.mkdir()
            server = Server(src, root, scratch)
            traffic = Traffic(server.port)
            try:
                assert _call(server.port, "POST", "/models", b'{"model_name": "echo", "url": "echo"}')[0] == 200
                for thread in traffic.threads:
                    thread.start()
                time.sleep(0.5)
                figures = {"idle": traffic.window(idle)}
                outcome: list[str] = []

                def register(outcome: list[str] = outcome, port: int = server.port) -> None:
                    began = time.perf_counter()
                    status, body = _call(port, "POST", "/models", b'{"model_name": "big", "url": "big.tar.gz"}',
                                         timeout=1200)
                    outcome.append(f"{status} in {time.perf_counter() - began:.1f} s")

                figures["registering 1 GB"] = traffic.window(during=threading.Thread(target=register))
                for phase, f in figures.items():
                    print(f"{label:7} {phase:16} {f['seconds']:6.1f} {f['ping_p50_ms']:9.2f} {f['ping_p99_ms']:9.2f} "
                          f"{f['ping_max_ms']:9.1f} {f['invoke_rps']:11.0f} {f['invoke_p99_ms']:9.2f}  "
                          f"{outcome[0] if phase != 'idle' else ''}")
                _call(server.port, "DELETE", "/models/big", timeout=120)
            finally:
                traffic.stop.set()
                for thread in traffic.threads:
                    thread.join(30)
                server.stop()
                shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default=BEFORE, help="git revision to compare with")
    parser.add_argument("--quick", action="store_true", help="shorter runs (< 2 min in all)")
    parser.add_argument("--archive-mb", type=int, default=1024)
    parser.add_argument("--skip-archive", action="store_true")
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; python {sys.version.split()[0]}")
    bench_codecs(args.before, args.quick)
    if not args.skip_archive:
        bench_archive(args.before, args.quick, args.archive_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())

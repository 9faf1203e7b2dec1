"""Streaming benchmark: response streams, bidirectional sessions, idle-session memory.

    python bench/streaming.py [--quick] [--workers 2] [--litserve /work/venvs/litserve/bin/python]

* **stream**: a 100-chunk response (the generator yields at once, so what is measured is the server's
  cost per chunk), at 1 and 64 concurrent streams: time to first byte p50/p99, time per chunk after the
  first at c=1, chunks/s; beside the **same handler answering the 100 chunks as one body**, and beside
  **LitServe** (``stream=True``, its own venv, 2 workers) serving the same generator, in the same run.
* **bidi**: WebSocket sessions at 1, 16 and 64 at once, each sending a message and waiting for its echo:
  round trip p50/p99 and messages/s.
* **idle sessions**: the server tree's RSS before and after opening 64 idle sessions, per session.

The load generator is one Python asyncio process on the same machine (raw sockets for HTTP, the
``websockets`` client for sessions), the same for every stack; at 64 connections it may be what limits
the figures, so compare stacks in one run, never across runs. Quick mode: 3 s per level (< 2 min in all).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).parent))
import procs

CHUNKS = 100
OURS_MODEL = """
import json

def model_fn(model_dir):
    return None

def _tokens(n):
    for i in range(n):
        yield b"token %04d " % i

def transform_fn(model, data, content_type, accept):
    request = json.loads(data)
    if request.get("stream"):
        return _tokens(request["n"]), "text/plain"
    return b"".join(_tokens(request["n"])), "text/plain"

def bidirectional_stream_fn(messages, model):
    for message in messages:
        yield message
"""
LITSERVE_SERVER = """
import sys
import litserve as ls

class Stream(ls.LitAPI):
    def setup(self, device):
        pass

    def decode_request(self, request):
        return request["n"]

    def predict(self, n):
        for i in range(n):
            yield "token %04d " % i

    def encode_response(self, output):
        for item in output:
            yield item

if __name__ == "__main__":
    server = ls.LitServer(Stream(stream=True), accelerator="cpu", workers_per_device=int(sys.argv[2]))
    server.run(port=int(sys.argv[1]), generate_client_file=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stack:
    """A server process (in its own session) and how to reach it."""

    def __init__(self, name: str, argv: list[str], port: int, path: str, ready_path: str, env: dict[str, str]):
        self.name, self.port, self.path = name, port, path
        log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        self.log = Path(log.name)
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self._wait_ready(ready_path)

    def _wait_ready(self, path: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                    if sock.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready in {timeout} s")

    def pids(self) -> list[int]:
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            try:
                for tid in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{tid}/children") as f:
                        todo += [int(c) for c in f.read().split()]
            except OSError:
                pass
        return found

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)


def start_ours(workers: int, workdir: Path) -> Stack:
    model = workdir / "ours" / "code"
    model.mkdir(parents=True)
    (model / "inference.py").write_text(textwrap.dedent(OURS_MODEL))
    port = free_port()
    argv = [sys.executable, "-m", "sagemaker_inference", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--model-dir", str(model.parent)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "MMS_"))}
    env["SAGEMAKER_MAX_BIDIRECTIONAL_SESSIONS_PER_WORKER"] = "256"
    return Stack("ours", argv, port, "/invocations", "/ping", env)


def start_litserve(python: str, workers: int, workdir: Path) -> Stack:
    script = workdir / "litserve_stream.py"
    script.write_text(textwrap.dedent(LITSERVE_SERVER))
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return Stack("litserve", [python, str(script), str(port), str(workers)], port, "/predict", "/health", env)


# -- HTTP client (raw asyncio streams: the cheapest client we can write) ------------------------------


async def one_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str,
                      body: bytes) -> tuple[float, float, int]:
    """(time to the first body byte, total time, chunks) of one request on a keep-alive connection."""
    started = time.perf_counter()
    writer.write(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                 % (path.encode(), len(body), body))
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected answer: {head[:200]!r}")
    lower = head.lower()
    first = 0.0
    chunks = 0
    if b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
            if not first:
                first = time.perf_counter() - started
            await reader.readexactly(size + 2)
            if not size:
                break
            chunks += 1
    else:
        length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        first = time.perf_counter() - started
        chunks = CHUNKS  # the same 100 pieces, in one body
    return first, time.perf_counter() - started, chunks


async def http_level(stack: Stack, body: bytes, connections: int, duration: float) -> dict[str, float]:
    firsts: list[float] = []
    totals: list[float] = []
    counts = [0]
    stop = time.perf_counter() + duration

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.port)
        try:
            while time.perf_counter() < stop:
                first, total, chunks = await one_request(reader, writer, stack.path, body)
                firsts.append(first)
                totals.append(total)
                counts[0] += chunks
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    return {"requests": len(totals), "req_per_s": len(totals) / elapsed,
            "ttfb_p50_ms": pct(firsts, 50) * 1e3, "ttfb_p99_ms": pct(firsts, 99) * 1e3,
            "total_p50_ms": pct(totals, 50) * 1e3, "chunks_per_s": counts[0] / elapsed,
            "per_chunk_us": (statistics.median(totals) - statistics.median(firsts)) / (CHUNKS - 1) * 1e6}


# -- WebSocket client ---------------------------------------------------------------------------------


async def bidi_level(stack: Stack, sessions: int, duration: float) -> dict[str, float]:
    from websockets.asyncio.client import connect

    rtts: list[float] = []
    stop = time.perf_counter() + duration
    url = f"ws://127.0.0.1:{stack.port}/invocations-bidirectional-stream"

    async def session() -> None:
        async with connect(url, max_size=None) as ws:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                await ws.send("ping message of about fifty bytes, as a token is.")
                await ws.recv()
                rtts.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(session() for _ in range(sessions)))
    elapsed = time.perf_counter() - started
    return {"messages": len(rtts), "rtt_p50_ms": pct(rtts, 50) * 1e3, "rtt_p99_ms": pct(rtts, 99) * 1e3,
            "messages_per_s": len(rtts) / elapsed}


async def idle_session_memory(stack: Stack, sessions: int = 64) -> float:
    from websockets.asyncio.client import connect

    url = f"ws://127.0.0.1:{stack.port}/invocations-bidirectional-stream"
    await asyncio.sleep(1.0)
    before = procs.memory(stack.pids()).rss
    opened = []
    for _ in range(sessions):
        ws = await connect(url)
        await ws.send("hello")
        await ws.recv()
        opened.append(ws)
    await asyncio.sleep(1.0)
    after = procs.memory(stack.pids()).rss
    for ws in opened:
        await ws.close()
    return (after - before) / sessions


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def run(coro: Callable[[], Awaitable[dict[str, float]]]) -> dict[str, float]:
    return asyncio.run(coro())  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s per level instead of 10 s")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--litserve", default="/work/venvs/litserve/bin/python",
                        help="Python of a venv with litserve installed ('' to skip)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    duration = 3.0 if args.quick else 10.0
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}, "
          f"{os.cpu_count()} CPUs, {args.workers} workers, {duration:g} s per level", flush=True)
    results: dict[str, dict[str, float]] = {}
    stream_body = json.dumps({"n": CHUNKS, "stream": True}).encode()
    whole_body = json.dumps({"n": CHUNKS}).encode()
    with tempfile.TemporaryDirectory(prefix="bench-streaming-") as tmp:
        ours = start_ours(args.workers, Path(tmp))
        try:
            for c in (1, 64):
                results[f"ours stream c={c}"] = run(lambda c=c: http_level(ours, stream_body, c, duration))
                results[f"ours whole c={c}"] = run(lambda c=c: http_level(ours, whole_body, c, duration))
            for s in (1, 16, 64):
                results[f"ours bidi {s} sessions"] = run(lambda s=s: bidi_level(ours, s, duration))
            memory = asyncio.run(idle_session_memory(ours))
            results["ours idle session"] = {"rss_per_session_kb": memory / 1024}
        finally:
            ours.stop()
        if args.litserve and Path(args.litserve).exists():
            try:
                lit = start_litserve(args.litserve, args.workers, Path(tmp))
            except RuntimeError as exc:
                print(f"LitServe skipped: {exc}")
            else:
                try:
                    for c in (1, 64):
                        results[f"litserve stream c={c}"] = run(lambda c=c: http_level(lit, stream_body, c, duration))
                finally:
                    lit.stop()
        else:
            print("LitServe skipped: no --litserve Python")
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def print_table(results: dict[str, dict[str, float]]) -> None:
    http = [k for k in results if "stream c=" in k or "whole c=" in k]
    print(f"\n{'100-chunk response':<22} {'req/s':>8} {'TTFB p50':>9} {'TTFB p99':>9} {'total p50':>10} "
          f"{'µs/chunk':>9} {'chunks/s':>10}")
    for key in http:
        r = results[key]
        per_chunk = f"{r['per_chunk_us']:.1f}" if "stream" in key else "-"
        print(f"{key:<22} {r['req_per_s']:>8.0f} {r['ttfb_p50_ms']:>7.2f}ms {r['ttfb_p99_ms']:>7.2f}ms "
              f"{r['total_p50_ms']:>8.2f}ms {per_chunk:>9} {r['chunks_per_s']:>10.0f}")
    print("('whole' answers the same 100 chunks as one body: its TTFB is the whole answer, its chunks/s counts"
          " 100 per response)")
    print(f"\n{'bidirectional':<22} {'messages':>9} {'RTT p50':>9} {'RTT p99':>9} {'msg/s':>9}")
    for key in [k for k in results if "bidi" in k]:
        r = results[key]
        print(f"{key:<22} {r['messages']:>9.0f} {r['rtt_p50_ms']:>7.2f}ms {r['rtt_p99_ms']:>7.2f}ms "
              f"{r['messages_per_s']:>9.0f}")
    if "ours idle session" in results:
        print(f"\nidle bidirectional session: {results['ours idle session']['rss_per_session_kb']:.0f} kB RSS each "
              "(server tree, 64 sessions)")


if __name__ == "__main__":
    sys.exit(main())

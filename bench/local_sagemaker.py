"""The local SageMaker's cost: the emulator's overhead per request, and transform throughput.

1. Per request, sequential (latency is what the emulator adds): the same JSON body to the bundled example model
   - urllib3 straight to the server's ``/invocations`` (botocore's HTTP stack, without botocore),
   - urllib3 to the emulator's ``/endpoints/bench/invocations`` (the emulator's own overhead),
   - boto3 ``invoke_endpoint`` through the emulator (what a user sees: botocore's client work added).
2. ``sagemaker-inference transform`` over N CSV lines, SingleRecord vs MultiRecord, against the same server:
   records/s, input MB/s, and the transform process's peak RSS (flat input memory: it streams).

    python bench/local_sagemaker.py            # 2,000 requests per path, 100,000 CSV lines
    python bench/local_sagemaker.py --quick    # 300 requests, 20,000 lines (< 2 min)
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.local.runtimeproc import Process, emulator, runtime_client

BODY = b"[[1.0, 2.0, 3.0, 4.0]]"


def server(workers: int) -> Process:
    return Process([sys.executable, "-m", "sagemaker_inference", "serve", "--example", "--host", "127.0.0.1",
                    "--port", "{port}", "--workers", str(workers)]).wait_ready(60)


def timed(call, count: int) -> list[float]:
    for _ in range(min(50, count)):  # warm connections and caches
        call()
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def per_request(server_url: str, emulator_url: str, count: int) -> list[tuple[str, list[float]]]:
    import urllib3

    pool = urllib3.PoolManager(maxsize=1)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def direct() -> None:
        assert pool.request("POST", server_url + "/invocations", body=BODY, headers=headers).status == 200

    def via_emulator() -> None:
        response = pool.request("POST", emulator_url + "/endpoints/bench/invocations", body=BODY, headers=headers)
        assert response.status == 200

    client = runtime_client(emulator_url)

    def boto3_via_emulator() -> None:
        client.invoke_endpoint(EndpointName="bench", Body=BODY, ContentType="application/json",
                               Accept="application/json")["Body"].read()

    return [("urllib3 -> server /invocations", timed(direct, count)),
            ("urllib3 -> emulator -> server", timed(via_emulator, count)),
            ("boto3 -> emulator -> server", timed(boto3_via_emulator, count))]


def write_csv(path: Path, lines: int) -> int:
    rng = random.Random(0)
    with open(path, "w") as f:
        for _ in range(lines):
            f.write(f"{rng.random():.6f},{rng.random():.6f},{rng.random():.6f},{rng.random():.6f}\n")
    return path.stat().st_size


def transform_run(url: str, source: Path, output: Path, strategy: str, concurrency: int) -> tuple[float, int]:
    """Seconds and the peak RSS (bytes) of one transform process."""
    argv = [sys.executable, "-m", "sagemaker_inference", "transform", "--endpoint-url", url, "--input", str(source),
            "--output", str(output), "--content-type", "text/csv", "--accept", "text/csv", "--split-type", "Line",
            "--assemble-with", "Line", "--batch-strategy", strategy, "--max-concurrent-transforms", str(concurrency),
            "--max-payload", "1", "--progress", "lines"]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"transform failed:\n{stderr}")
    return seconds, usage.ru_maxrss * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--requests", type=int)
    parser.add_argument("--lines", type=int)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4, help="MaxConcurrentTransforms")
    args = parser.parse_args()
    count = args.requests or (300 if args.quick else 2000)
    lines = args.lines or (20_000 if args.quick else 100_000)
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    with server(args.workers) as backend, emulator("--endpoint", f"bench={backend.url}") as front:
        print(f"\n1. per request, sequential, {count} requests each (example model, {args.workers} workers)")
        print(f"{'path':34} {'mean ms':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
        results = per_request(backend.url, front.url, count)
        for name, samples in results:
            ordered = sorted(samples)
            mean = statistics.fmean(samples)
            print(f"{name:34} {mean * 1e3:8.3f} {ordered[len(ordered) // 2] * 1e3:8.3f} "
                  f"{ordered[int(len(ordered) * 0.99)] * 1e3:8.3f} {1 / mean:8.0f}")
        base = statistics.median(results[0][1])
        print(f"emulator overhead (p50): {(statistics.median(results[1][1]) - base) * 1e3:.3f} ms; "
              f"boto3 + emulator (p50): {(statistics.median(results[2][1]) - base) * 1e3:.3f} ms")

        with tempfile.TemporaryDirectory(prefix="bench-transform-") as tmp:
            source = Path(tmp) / "data.csv"
            size = write_csv(source, lines)
            print(f"\n2. transform, {lines} CSV lines ({size / 1e6:.1f} MB), MaxConcurrentTransforms "
                  f"{args.concurrency}, MaxPayloadInMB 1")
            print(f"{'strategy':14} {'seconds':>8} {'records/s':>10} {'MB/s':>7} {'peak RSS MB':>12}")
            for strategy in ("SingleRecord", "MultiRecord"):
                seconds, rss = transform_run(backend.url, source, Path(tmp) / strategy, strategy, args.concurrency)
                print(f"{strategy:14} {seconds:8.2f} {lines / seconds:10.0f} {size / seconds / 1e6:7.2f} "
                      f"{rss / 1e6:12.1f}")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

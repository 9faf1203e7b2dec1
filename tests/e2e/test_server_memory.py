"""The frontend's memory under uploads it cannot serve at once (issue 16, item 5): 150 clients each
sending 5 MB to a slow model. With a 256 MB budget for request bodies the frontend stays under
400 MB and answers only 200 or 503 (``Retry-After``). RSS is read from /proc as a bound check."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.rawhttp import RawConnection

CLIENTS = 150
BODY = 5 * 1024 * 1024
BUDGET_MB = 256
RSS_LIMIT = 400 * 1024 * 1024

SLOW_SERVICE = """
import time

def handle(data, context):
    if data is None:
        return None
    time.sleep(0.2)
    return [str(len(item["body"])) for item in data]
"""

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _upload(port: int, body: bytes) -> str:
    head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    with RawConnection(port, timeout=120) as conn:
        try:
            conn.send(head + body)
        except OSError as exc:  # only if the server reset us before we could send it all
            return f"send failed: {exc!r}"
        response = conn.read_response()
    if response.status == 200:
        assert response.body == str(len(body)).encode()
    elif response.status == 503:
        assert response.headers.get("retry-after") == "1"
    return str(response.status)


@pytest.mark.slow
def test_150_uploads_of_5_mb_keep_the_frontend_within_its_budget(serve, model_dir):
    directory = model_dir("", **{"code/slow_service.py": SLOW_SERVICE})
    server = serve("--model-dir", str(directory), "--handler", "slow_service", workers=2,
                   env={"SAGEMAKER_MAX_BUFFERED_PAYLOAD_MB": str(BUDGET_MB)})
    body = b"z" * BODY
    peak = _rss(server.proc.pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, _rss(server.proc.pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            outcomes = list(pool.map(lambda _: _upload(server.port, body), range(CLIENTS), timeout=600))
    finally:
        done.set()
        sampler.join()
    ok, busy = outcomes.count("200"), outcomes.count("503")
    print(f"frontend peak RSS {peak / 2**20:.0f} MB; {ok} x 200, {busy} x 503")
    assert set(outcomes) <= {"200", "503"}, sorted(set(outcomes))
    assert "200" in outcomes
    assert peak < RSS_LIMIT, f"frontend peaked at {peak / 2**20:.0f} MB"
    assert server.client.get("/ping").status_code == 200

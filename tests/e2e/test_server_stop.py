"""Stopping under load (issue 16): SIGTERM loses no request the kernel accepted, and a second
signal cuts the drain short. Raw sockets, a connection per request, as a load balancer's health
checks and retries produce them."""

from __future__ import annotations

import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.e2e.rawhttp import RawConnection, request
from tests.e2e.test_server_faults import CONTROLLED_MODEL, DEADLINE, started_pid, wait_for
from tests.e2e.test_server_wire import INSPECT_SERVICE

CLIENTS = 8


def _client(port: int, outcomes: list[str]) -> None:
    """Requests on fresh connections until the server refuses to connect (it stopped listening)."""
    while True:
        try:
            conn = RawConnection(port, timeout=30)
        except OSError:
            outcomes.append("refused")
            return
        with conn:
            try:
                conn.send(request("POST", "/invocations", b"x"))
                outcomes.append(str(conn.read_response().status))
            except (OSError, ConnectionError) as exc:  # accepted, then reset or closed unanswered
                outcomes.append(f"lost: {exc!r}")


def test_sigterm_under_load_loses_no_request(serve, model_dir):
    directory = model_dir("", **{"code/inspect_service.py": INSPECT_SERVICE})
    server = serve("--model-dir", str(directory), "--handler", "inspect_service", workers=2)
    outcomes: list[list[str]] = [[] for _ in range(CLIENTS)]
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(_client, server.port, out) for out in outcomes]
        wait_for(lambda: sum(len(out) for out in outcomes) >= 200, what="load running")
        server.proc.send_signal(signal.SIGTERM)
        for future in futures:
            future.result(timeout=DEADLINE)
    assert server.wait_exit(DEADLINE) == 0
    seen = [o for out in outcomes for o in out]
    assert [o for o in seen if o not in ("200", "503", "refused")] == []
    assert seen.count("refused") == CLIENTS  # every client ran until the server stopped listening


def test_second_sigterm_cuts_the_drain_short(serve, model_dir):
    directory = model_dir(CONTROLLED_MODEL)
    server = serve("--model-dir", str(directory))
    with ThreadPoolExecutor(1) as pool:
        long = pool.submit(httpx.post, f"{server.url}/invocations", json={"id": "long", "sleep": 120}, timeout=60)
        started_pid(directory, "long")
        server.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "draining" in server.log, what="the drain to start")
        time.sleep(0.2)  # still draining: the long request runs for two minutes
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait_exit(DEADLINE) == 0
        response = long.result(timeout=DEADLINE)
    assert response.status_code == 503
    assert "stopping now" in server.log


def test_connection_accepted_but_silent_at_sigterm_is_still_served(serve, model_dir):
    directory = model_dir("", **{"code/inspect_service.py": INSPECT_SERVICE})
    server = serve("--model-dir", str(directory), "--handler", "inspect_service")
    with RawConnection(server.port) as early:
        server.client.get("/ping")  # the server has accepted `early` by now
        server.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "draining" in server.log, what="the drain to start")
        early.send(request("POST", "/invocations", b"x"))
        response = early.read_response()
        assert response.status in (200, 503)
        assert response.headers["connection"] == "close"
    assert server.wait_exit(DEADLINE) == 0
    try:
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    assert refused

"""Background traffic for checks that measure something under load (``/ping`` latency, SIGTERM, kill -9, soak).

Each client is a thread sending the probe's sample to ``/invocations`` and recording what came back. A request
is *lost* when its connection was accepted and the request sent but neither a response nor a clean refusal
arrived (closed or reset without an answer); a refused connection (nothing listening any more) is not lost.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from sagemaker_inference.conformance import wire
from sagemaker_inference.conformance.probe import Probe


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    lost: int = 0
    hung: int = 0
    refused: int = 0
    lost_examples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    def count(self, klass: str) -> int:
        return sum(n for status, n in self.statuses.items() if f"{status // 100}xx" == klass)

    def summary(self) -> str:
        codes = ", ".join(f"{n}x{status}" for status, n in sorted(self.statuses.items()))
        return f"answered {self.answered} ({codes or 'none'}), lost {self.lost}, hung {self.hung}"


class Traffic:
    """``clients`` threads hammering ``/invocations`` until ``stop()``; one connection per request or keep-alive."""

    def __init__(self, probe: Probe, clients: int, per_request: bool = False, stop_on_refusal: bool = False):
        self.probe, self.per_request, self.stop_on_refusal = probe, per_request, stop_on_refusal
        self.tally = Tally()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 30.0) -> Tally:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return self.tally

    def _client(self) -> None:
        content_type, body = self.probe.sample
        data = self.probe.invocation(body, content_type, keep_alive=not self.per_request)
        conn: wire.Connection | None = None
        while not self._stop.is_set():
            if conn is None:
                try:
                    conn = self.probe.connect()
                except OSError:
                    with self.tally.lock:
                        self.tally.refused += 1
                    if self.stop_on_refusal:
                        return
                    time.sleep(0.05)
                    continue
            conn = self._one(conn, data)

    def _one(self, conn: wire.Connection, data: bytes) -> wire.Connection | None:
        sent = conn.send(data)
        try:
            response = conn.read_response()
        except wire.NoResponse as exc:
            with self.tally.lock:
                if exc.why == "timeout":
                    self.tally.hung += 1
                else:
                    self.tally.lost += 1
                    if len(self.tally.lost_examples) < 5:
                        self.tally.lost_examples.append(f"{exc.why}{'' if sent else ' (send failed)'}")
            conn.close()
            return None
        with self.tally.lock:
            self.tally.statuses[response.status] += 1
        if self.per_request or response.closes():
            conn.close()
            return None
        return conn

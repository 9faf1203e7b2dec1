"""Microseconds per request spent in the frontend's HTTP layer alone, in process: bytes of one
keep-alive ``POST /invocations`` into ``HTTPConnection.data_received`` (httptools parsing, the
budget, the exchange FIFO), a precomputed response back through ``Exchange.respond`` and
``flush`` into a transport that discards it. No event loop, no worker, no routing: the cost this
layer adds to every request, which a change to it must not grow.

With ``BENCH_BEFORE_PYTHON`` (a venv holding an earlier tree) the same measurement runs there too,
interleaved, and both are printed side by side. CPU time, best of several rounds (the machine
may be busy).

    python bench/http_layer.py [--rounds 6] [--number 50000]
"""

from __future__ import annotations

import argparse
import os
import time

import trees

REQUEST = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n"
           b"[1, 2, 3, 4]\n")
RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok"


class _Transport:
    def write(self, data: bytes) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...
    def get_extra_info(self, name: str) -> None: ...
    def can_write_eof(self) -> bool: return True
    def write_eof(self) -> None: ...


def _connection() -> object:
    from sagemaker_inference.server.http import protocol

    def handle(exchange: protocol.Exchange) -> None:
        exchange.respond(RESPONSE)

    if hasattr(protocol, "ServerState"):
        connection = protocol.HTTPConnection(protocol.ServerState(handle, max_body=6553500, budget=1 << 30))
    else:  # trees before the HTTP layer was given a ServerState (issue 16) took the app itself
        class Config:
            max_request_size = 6553500

        class App:
            config, connections, draining, access_log = Config(), set(), False, False

            def handle(self, exchange: protocol.Exchange) -> None:
                handle(exchange)

        connection = protocol.HTTPConnection(App())  # type: ignore[arg-type]
    connection.connection_made(_Transport())  # type: ignore[arg-type]
    return connection


def measure(number: int, repeat: int) -> float:
    """Best CPU microseconds per request over ``repeat`` runs of ``number`` requests."""
    connection = _connection()
    feed = connection.data_received  # type: ignore[attr-defined]
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for _ in range(number):
            feed(REQUEST)
        best = min(best, (time.process_time() - started) / number)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6, help="interleaved runs per tree")
    parser.add_argument("--number", type=int, default=50_000, help="requests per timing")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PYTHON",
                        help="another tree to measure: the Python of a venv holding it")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(f"{measure(args.number, 10):.3f}")
        return
    best = trees.best_of(trees.chosen(args.tree), args.rounds,
                         [os.path.abspath(__file__), "--child", "--number", str(args.number)])
    trees.report(best, f"best of {args.rounds} x 10 runs of {args.number} requests")


if __name__ == "__main__":
    main()

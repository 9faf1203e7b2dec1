"""Microseconds of frontend CPU per inference request, in process: the whole path a plain
``POST /invocations`` takes through the frontend, with the sockets and the worker taken away.

Per round, ``--connections`` keep-alive connections each receive one request (bytes into
``HTTPConnection.data_received``: parsing, routing, the endpoint, metrics, the model queue);
the event loop runs the pump (batches framed into each worker's outbox and "written"); then
each worker "answers" every batch it holds, one pre-rendered reply frame per
``Worker.data_received`` call (decoding, matching the batch, rendering the HTTP response and
writing it to the connection's transport). Transports discard what they are given. What is
left out is what the machine adds (syscalls, wake-ups) and the worker's own work, so a change
to the frontend's request path shows here as a few tenths of a microsecond, free of the noise
of a whole-server run (``compare.py``), which remains the figure that counts.

With ``BENCH_BEFORE_PYTHON`` (a venv holding an earlier tree), or ``--tree NAME=PYTHON`` for
any number of them, the same measurement runs there too, interleaved, and all are printed side
by side. CPU time, best of several rounds.

    python bench/frontend_path.py [--rounds 6] [--requests 60000] [--connections 64] [--tree NAME=PYTHON]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import tempfile
import time

import trees

BODY = b'{"instances": [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]], "name": "echo-benchmark-body"}'
REQUEST = (b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n"
           b"Accept: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY))


class _Transport:
    """Stands in for a socket transport: takes writes and drops them."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def is_closing(self) -> bool: return False
    def can_write_eof(self) -> bool: return True
    def write_eof(self) -> None: ...
    def get_extra_info(self, name: str, default: object = None) -> object: return default


def _reply_frame() -> tuple[bytes, bytes]:
    """The reply a worker sends for one echo request, split around its batch id."""
    from sagemaker_inference.server.workers import protocol as p

    frame = p.encode_reply(0, [p.Response(200, b"OK", [(b"content-type", b"application/json")], BODY)])
    head = struct.calcsize("!IB")
    return frame[:head], frame[head + 8:]  # the batch id is the first 8 bytes after the frame head


async def _measure(requests: int, connections: int, rounds: int) -> list[float]:
    from sagemaker_inference.server import supervisor
    from sagemaker_inference.server.config import ServerConfig
    from sagemaker_inference.server.registry import Model, ModelState
    from sagemaker_inference.server.workers.pool import WorkerGroup
    from sagemaker_inference.server.workers.worker import Worker, WorkerState

    model_dir = tempfile.mkdtemp()
    environ = {k: v for k, v in os.environ.items() if k.startswith("SAGEMAKER_")}  # SAGEMAKER_METRICS=false ...
    config = ServerConfig.from_env({**environ, "SAGEMAKER_BASE_DIR": model_dir}, model_dir=model_dir, workers=2)
    server = supervisor.Server(config)
    app, registry = server.app, server.registry
    spec = registry.spec("model", model_dir)
    group = WorkerGroup(spec, children=server.children)
    group._loop = asyncio.get_running_loop()
    if getattr(config, "metrics", False):
        from sagemaker_inference.server.observability.counters import ModelCounters

        group.counters = ModelCounters("model")
    model = Model("model", model_dir, group, True)
    model.state = ModelState.READY
    registry.models["model"] = model
    workers = group.workers = [Worker(group, i) for i in range(spec.workers)]
    for worker in workers:
        worker.connection_made(_Transport())  # type: ignore[arg-type]
        worker.state = WorkerState.READY
    factory = getattr(getattr(app, "http", None), "connection", None)
    if factory is None:  # the tree before the HTTP layer had its own state
        from sagemaker_inference.server.http.protocol import HTTPConnection

        def factory() -> object:
            return HTTPConnection(app)  # type: ignore[call-arg]
    clients = []
    for _ in range(connections):
        connection = factory()
        connection.connection_made(_Transport())
        clients.append(connection)
    frame_head, reply_rest = _reply_frame()

    def answer(worker: Worker) -> None:
        # One read per reply: the worker writes each batch's reply before it starts the next.
        for batch_id in [b.batch_id for b in worker.inflight]:
            worker.data_received(frame_head + struct.pack("!Q", batch_id) + reply_rest)

    async def one_round(count: int) -> None:
        for _ in range(count // connections):
            for connection in clients:
                connection.data_received(REQUEST)
            await asyncio.sleep(0)  # the pump runs: batches go to the workers
            for worker in workers:
                answer(worker)
            await asyncio.sleep(0)

    warm_up = connections * 50
    await one_round(warm_up)
    results = []
    for _ in range(rounds):
        start = time.process_time()
        await one_round(requests)
        results.append((time.process_time() - start) / (requests // connections * connections) * 1e6)
    answered = sum(c.transport.writes for c in clients)
    sent = warm_up + rounds * (requests // connections * connections)
    if answered != sent:
        raise SystemExit(f"{answered} responses were written for {sent} requests: the harness no longer matches "
                         "the server")
    return results


def _child(args: argparse.Namespace) -> None:
    import logging

    logging.disable(logging.WARNING)
    results = asyncio.run(_measure(args.requests, args.connections, args.rounds))
    print(min(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds per tree (best is kept)")
    parser.add_argument("--requests", type=int, default=60_000, help="requests per measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PYTHON",
                        help="another tree to measure: the Python of a venv holding it")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    best = trees.best_of(trees.chosen(args.tree), args.rounds,
                         [os.path.abspath(__file__), "--child", "--rounds", "3", "--requests", str(args.requests),
                          "--connections", str(args.connections)])
    trees.report(best, f"best of {args.rounds} x 3 runs of {args.requests} requests, {args.connections} connections")


if __name__ == "__main__":
    main()

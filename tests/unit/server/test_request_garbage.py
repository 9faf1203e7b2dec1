"""A served request, and a closed connection, leave no reference cycle behind: what they
allocated is freed by reference counting at once, not by the garbage collector later.

A cycle per request (an ``Exchange`` and its ``Inference`` pointing at each other did) makes
every request's objects wait for a collection: the frontend's heap churns and each
collection walks them all (it cost ~15 % of the frontend's CPU on the echo benchmark). The
frontend is driven in process: real ``App``, endpoints and ``WorkerGroup``, HTTP bytes in,
a worker whose socket is replaced by a list of frames, reply frames fed back.
"""

from __future__ import annotations

import asyncio
import gc
import struct
from pathlib import Path

from sagemaker_inference.server import supervisor
from sagemaker_inference.server.config import ServerConfig
from sagemaker_inference.server.http.protocol import Exchange
from sagemaker_inference.server.registry import Model, ModelState
from sagemaker_inference.server.workers import protocol as p
from sagemaker_inference.server.workers.pool import WorkerGroup
from sagemaker_inference.server.workers.worker import Inference, Worker, WorkerState

REQUEST = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def can_write_eof(self) -> bool: return True
    def write_eof(self) -> None: ...
    def get_extra_info(self, name: str, default: object = None) -> object: return default


async def serve_requests(model_dir: Path, count: int) -> list[bytes]:
    config = ServerConfig.from_env({"SAGEMAKER_BASE_DIR": str(model_dir)}, model_dir=str(model_dir), workers=1)
    server = supervisor.Server(config)
    group = WorkerGroup(server.registry.spec("model", str(model_dir)), children=server.children)
    group._loop = asyncio.get_running_loop()
    model = server.registry.models["model"] = Model("model", str(model_dir), group, True)
    model.state = ModelState.READY
    worker = Worker(group, 0)
    group.workers = [worker]
    worker.connection_made(Transport())  # type: ignore[arg-type]
    worker.state = WorkerState.READY
    client = server.app.http.connection()
    client.connection_made(Transport())  # type: ignore[arg-type]
    reply = p.encode_reply(0, [p.Response(200, b"OK", [(b"content-type", b"application/json")], b"{}")])
    for _ in range(count):
        client.data_received(REQUEST)
        await asyncio.sleep(0)  # the pump sends the batch
        (batch,) = worker.inflight
        worker.data_received(reply[:5] + struct.pack("!Q", batch.batch_id) + reply[13:])
    return client.transport.written


def test_a_served_request_is_freed_without_the_collector(tmp_path: Path) -> None:
    gc.collect()
    gc.disable()
    try:
        written = asyncio.run(serve_requests(tmp_path, 50))
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        leaked = [o for o in gc.garbage if isinstance(o, (Exchange, Inference))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert len(written) == 50 and all(w.startswith(b"HTTP/1.1 200 OK\r\n") for w in written)
    assert not leaked, f"{len(leaked)} request objects were freed only by the garbage collector"


def test_a_closed_connection_is_freed_without_the_collector() -> None:
    """The assembler and its httptools parser point at each other until the connection ends."""
    from sagemaker_inference.server.http.parser import RequestAssembler
    from sagemaker_inference.server.http.protocol import ServerState

    state = ServerState(lambda exchange: exchange.respond(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
                        max_body=100, budget=1 << 20)
    gc.collect()
    gc.disable()
    try:
        for data in (b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n", b"not http\r\n\r\n"):  # served, refused
            connection = state.connection()
            connection.connection_made(Transport())  # type: ignore[arg-type]
            connection.data_received(data)
            connection.connection_lost(None)
        del connection
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        leaked = [o for o in gc.garbage if isinstance(o, RequestAssembler)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not leaked, f"{len(leaked)} assemblers were freed only by the garbage collector"

"""The emulator's serving side: our sans-IO ``RequestAssembler`` (server/http/parser.py) plus a small asyncio
streams adapter that answers one request at a time per connection and can stream a chunked body.

Why not the server's own ``HTTPConnection``: it is built around the worker pipeline (fixed bodies, replies in
pipeline order); the emulator needs ``await`` per request and a chunked response written as a container's
chunks arrive. The parser, with its limits and error events, is what both share.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Sequence
from typing import Callable

from sagemaker_inference.server.http.parser import ContinueRequested, HTTPRequest, ParseError, RequestAssembler
from sagemaker_inference.server.http.response import phrase

logger = logging.getLogger("sagemaker_inference.local.runtime")

# Bodies over the API's 6 MB limit are read (so the client gets a ValidationError, not a reset) up to this bound.
READ_BOUND = 64 * 1024 * 1024
Headers = Sequence[tuple[str, str]]


class Responder:
    """Writes one response: ``send`` for a whole body, or ``start`` + ``write`` ... + ``end`` for a chunked one."""

    def __init__(self, writer: asyncio.StreamWriter, keep_alive: bool):
        self._writer = writer
        self.keep_alive = keep_alive
        self.started = False

    def _head(self, status: int, headers: Headers, framing: str) -> bytes:
        lines = [f"HTTP/1.1 {status} {phrase(status).decode()}", *(f"{k}: {v}" for k, v in headers), framing]
        if not self.keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def send(self, status: int, headers: Headers, body: bytes) -> None:
        self.started = True
        self._writer.write(self._head(status, headers, f"Content-Length: {len(body)}") + body)
        await self._writer.drain()

    async def start(self, status: int, headers: Headers) -> None:
        self.started = True
        self._writer.write(self._head(status, headers, "Transfer-Encoding: chunked"))
        await self._writer.drain()

    async def write(self, data: bytes) -> None:
        if data:
            self._writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await self._writer.drain()  # back-pressure: a slow client slows the relay, memory stays bounded

    async def end(self) -> None:
        self._writer.write(b"0\r\n\r\n")
        await self._writer.drain()


Handler = Callable[[HTTPRequest, Responder], Awaitable[None]]


async def _read_requests(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handle: Handler) -> None:
    assembler = RequestAssembler(max_body=READ_BOUND)
    while True:
        data = await reader.read(65536)
        if not data:
            return
        for event in assembler.feed(data):
            if isinstance(event, ContinueRequested):
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            elif isinstance(event, ParseError):  # answered in the API's error shape, so botocore can read it
                body = json.dumps({"Message": event.message}).encode()
                code = "ValidationError" if event.status < 500 else "InternalFailure"
                responder = Responder(writer, keep_alive=False)
                await responder.send(event.status, [("Content-Type", "application/json"),
                                                    ("x-amzn-ErrorType", code)], body)
                return
            else:
                responder = Responder(writer, event.keep_alive)
                await handle(event, responder)
                if not responder.keep_alive:
                    return


async def connection(handle: Handler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One client connection, until it closes, sends garbage, or asks to close."""
    try:
        await _read_requests(reader, writer, handle)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    except Exception:  # a bug in a handler must not take the emulator down
        logger.exception("error while serving a connection")
    finally:
        writer.close()

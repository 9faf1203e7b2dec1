"""A tiny container for relay tests: ``python chunked_container.py PORT``. Stdlib only, loopback only.

``POST /invocations`` chooses its answer from the body:
- ``chunks:N``: N chunks ``part-i\\n``, each written and flushed on its own, then a proper end;
- ``gated``: chunk ``first``, then waits (30 s at most) until ``GET /release``, then ``second`` and the end;
- ``broken``: one chunk, then the connection closes without the terminating zero-length chunk;
- ``fail``: 500 with the body ``boom``;
- ``slow``: sleeps 30 s (for timeouts) then answers;
- anything else: 200 with JSON of the method, path and headers it got.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RELEASE = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/release":
            RELEASE.set()
        self._send(200, b"{}", "application/json")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if body.startswith(b"chunks:"):
            self._chunked([b"part-%d\n" % i for i in range(int(body[7:]))])
        elif body == b"gated":
            self._start_chunked()
            self._chunk(b"first")
            RELEASE.wait(30)
            self._chunk(b"second")
            self._end()
        elif body == b"broken":
            self._start_chunked()
            self._chunk(b"partial answer")
            self.close_connection = True
            self.connection.shutdown(2)
        elif body == b"fail":
            self._send(500, b"boom", "text/plain")
        elif body == b"slow":
            time.sleep(30)
            self._send(200, b"late", "text/plain")
        else:
            seen = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                    "body": body.decode("latin-1")}
            self._send(200, json.dumps(seen).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _start_chunked(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunked(self, chunks: list[bytes]) -> None:
        self._start_chunked()
        for chunk in chunks:
            self._chunk(chunk)
        self._end()


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()

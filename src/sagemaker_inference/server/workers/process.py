"""The worker process: load the model once, then answer batches in a plain blocking loop.

Run as ``python -m sagemaker_inference.server.workers.process --fd 3``: the frontend passes one
end of a socketpair as fd 3 and sends ``Load`` first. No event loop: a worker does one thing at a
time, and the cheapest way to wait for work is a blocking ``recv``. Every frame that one ``recv``
returns is answered before the next read; replies are written together, but never held longer
than ``FLUSH_AFTER`` (0.2 ms): measured on 2 cores, holding them longer (2 ms) leaves the
frontend idle while the worker computes and then the worker idle while the frontend catches up,
costing a third of the throughput; writing each reply alone costs a syscall per request.

Exit: end-of-file on the socket (the frontend closed it) or any fatal error. SIGINT and SIGTERM
are ignored (by a no-op handler, so that programs the handler starts get the default back): when
a whole process group is signalled (Ctrl-C, ``timeout``, ``kill -- -pgid``), the frontend drains
first and then closes our socket; it uses SIGKILL when it must.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import time
import traceback
from typing import Any, cast

from sagemaker_inference.server.logs import configure as configure_logging
from sagemaker_inference.server.workers import protocol as p
from sagemaker_inference.server.workers.stats import StatsRecorder

FLUSH_AFTER = 0.0002  # see the module docstring: replies wait at most this long for company
RECV_SIZE = 256 * 1024

logger = logging.getLogger("sagemaker_inference.server.worker")

# What this worker is doing, for log lines that do not say (JSON logs): set once in main/serve.
_model_name = ""
_runner: BatchRunner | None = None
_metrics_out: Any = None  # where MMS-style [METRICS] lines go; None: sys.stdout as it is now


def _log_context() -> tuple[str | None, str | None]:
    """(request ids of the batch being handled, comma-joined, or None; the model's name)."""
    runner = _runner
    if runner is not None and runner.in_batch:
        ids = runner.context.request_ids
        return (",".join(ids.values()) if ids else None), _model_name or None
    return None, _model_name or None

def _version() -> str:
    try:
        from importlib.metadata import version

        return version("sagemaker-inference")
    except Exception:
        return "unknown"


def _prepare_environment(model_dir: str) -> None:
    """What MMS does for a worker: code dir and model dir importable, cwd = model dir."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MXNET_USE_OPERATOR_TUNING", "0")
    for path in (model_dir, os.path.join(model_dir, "code")):
        if path not in sys.path:
            sys.path.insert(0, path)
    if os.path.isdir(model_dir):
        os.chdir(model_dir)


def _manifest(model_dir: str) -> dict[str, Any] | None:
    path = os.path.join(model_dir, "MAR-INF", "MANIFEST.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _body_bytes(item: Any) -> bytes:
    """MMS's rules for a handler's result item."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, (bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, str):
        return item.encode("utf-8")
    return json.dumps(item, indent=2).encode("utf-8")


def _content_type(flat: list[str]) -> str:
    """The request's MIME type without parameters, as MMS puts it under ``"body"``."""
    for i in range(0, len(flat) - 1, 2):
        if len(flat[i]) == 12 and flat[i].lower() == "content-type":
            return flat[i + 1].partition(";")[0].strip()
    return ""


def _header_value(value: Any) -> bytes:
    text = value if isinstance(value, str) else str(value)
    return text.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace")


class BatchRunner:
    """Turns ``Batch`` messages into ``handle(data, context)`` calls and back."""

    def __init__(self, handle: Any, context: Any, tracer: Any = None):
        self.handle, self.context = handle, context
        self.tracer = tracer  # observability.tracing.WorkerTracer when OpenTelemetry is configured
        self.stats = StatsRecorder()
        self.in_batch = False

    def run_batch(self, batch: p.Batch) -> bytes:
        """The encoded ``Reply`` or ``BatchFailed``; log lines written meanwhile name the batch's ids."""
        self.in_batch = True
        try:
            return self._run_batch(batch)
        finally:
            self.in_batch = False

    def _run_batch(self, batch: p.Batch) -> bytes:
        requests = cast("list[p.ReceivedRequest]", batch.requests)  # decoded frames carry ReceivedRequests
        request_ids: dict[int, str] = {}
        headers_list: list[dict[str, Any]] = []
        data: list[dict[str, Any]] = []
        for idx, request in enumerate(requests):
            request_ids[idx] = request.request_id.decode()
            item: dict[str, Any] = {}
            if request.param_blob:
                flat = request.param_items()
                item.update(zip(flat[0::2], flat[1::2]))
            item["body"] = request.body
            flat = request.header_items()
            headers: dict[str, Any] = {"body": {"content-type": _content_type(flat)}}
            headers.update(zip(flat[0::2], flat[1::2]))
            data.append(item)
            headers_list.append(headers)
        context = self.context
        context._begin_batch(request_ids, headers_list)
        started = time.perf_counter()
        try:
            if self.tracer is None:
                result = self.handle(data, context)
            else:
                with self.tracer.span(headers_list, list(request_ids.values())):
                    result = self.handle(data, context)
        except MemoryError:
            logger.exception("handler ran out of memory")
            return p.encode(p.BatchFailed(batch.batch_id, 507, "Out of resources"))
        except Exception as exc:
            code = getattr(exc, "error_code", None)
            if isinstance(code, int) and 100 <= code <= 599:
                logger.warning("handler raised %s: %s", type(exc).__name__, exc)
                message = getattr(exc, "message", None) or str(exc) or "Prediction failed"
                return p.encode(p.BatchFailed(batch.batch_id, code, str(message)))
            logger.error("handler raised an exception:\n%s", traceback.format_exc())
            return p.encode(p.BatchFailed(batch.batch_id, 503, "Prediction failed"))
        finally:
            self.stats.observe(time.perf_counter() - started)
            if context._metrics is not None:  # recorded even when handle failed
                self.stats.record(context._metrics.store)
        if not isinstance(result, list):
            return p.encode(p.BatchFailed(batch.batch_id, 503, "Invalid model predict output"))
        if len(result) != len(requests):
            return p.encode(p.BatchFailed(batch.batch_id, 503, "number of batch response mismatched"))
        try:
            responses = [self._response(idx, item) for idx, item in enumerate(result)]
        except (TypeError, ValueError):
            logger.error("handler returned an item we cannot send:\n%s", traceback.format_exc())
            return p.encode(p.BatchFailed(batch.batch_id, 503, "Unsupported model output data type."))
        lines = context._metric_lines()
        if lines:
            out = _metrics_out or sys.stdout
            out.write("".join(f"[METRICS]{line}\n" for line in lines))
            out.flush()
        return p.encode_reply(batch.batch_id, responses)

    def _response(self, idx: int, item: Any) -> p.RenderedResponse:
        processor = self.context.request_processor[idx]
        reason = processor._reason_phrase
        return p.RenderedResponse(int(processor._status_code), _header_value(reason) if reason else b"",
                                  _header_lines(processor._response_header), _body_bytes(item))


_lines_cache: dict[tuple[Any, ...], bytes] = {}


def _header_lines(headers: dict[str, Any]) -> bytes:
    """``name: value\r\n`` lines; the same few header sets recur on every request, so cache them."""
    try:
        key = tuple(headers.items())
        lines = _lines_cache.get(key)
    except TypeError:  # an unhashable value: render without the cache
        key, lines = (), None
    if lines is None:
        lines = b"".join([b"%s: %s\r\n" % (_header_value(k), _header_value(v))
                          for k, v in headers.items() if v is not None])
        if key and len(_lines_cache) < 256:
            _lines_cache[key] = lines
    return lines


def _recv_exactly_one(sock: socket.socket, reader: p.FrameReader) -> p.Message:
    while True:
        data = sock.recv(RECV_SIZE)
        if not data:
            raise EOFError("frontend closed the connection before loading")
        messages = reader.feed(data)
        if messages:
            return messages[0]


def serve(sock: socket.socket) -> int:
    reader = p.FrameReader()
    load = _recv_exactly_one(sock, reader)
    if not isinstance(load, p.Load):
        raise p.ProtocolError(f"expected Load, got {load!r}")
    global _runner
    runner = _runner = _load(sock, load)
    if runner is None:
        return 1
    pending: list[bytes] = []
    first_pending = 0.0
    while True:
        data = sock.recv(RECV_SIZE)
        if not data:
            break
        for message in reader.feed(data):
            if not isinstance(message, p.Batch):
                if isinstance(message, p.StatsRequest):
                    pending.append(p.encode(runner.stats.take()))
                continue
            if pending and time.monotonic() - first_pending > FLUSH_AFTER:
                sock.sendall(b"".join(pending))
                pending.clear()
            if not pending:
                first_pending = time.monotonic()
            pending.append(runner.run_batch(message))
        if pending:
            sock.sendall(pending[0] if len(pending) == 1 else b"".join(pending))
            pending.clear()
    return 0


def _load(sock: socket.socket, load: p.Load) -> BatchRunner | None:
    from sagemaker_inference.context import Context
    from sagemaker_inference.server.workers.handler import load_handler

    _prepare_environment(load.model_dir)
    gpu = load.gpu_id if load.gpu_id >= 0 else None
    context = Context(load.model_name, load.model_dir, _manifest(load.model_dir), load.batch_size, gpu, _version())
    try:
        handle = load_handler(load.handler, context)
    except MemoryError:
        sock.sendall(p.encode(p.Loaded(507, "System out of memory", os.getpid())))
        return None
    except BaseException as exc:
        logger.error("model %r failed to load:\n%s", load.model_name, traceback.format_exc())
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500] if str(exc) else type(exc).__name__
        sock.sendall(p.encode(p.Loaded(500, message, os.getpid())))
        return None
    parameters = _execution_parameters(handle)
    sock.sendall(p.encode(p.Loaded(200, f"loaded model {load.model_name}. [PID]:{os.getpid()}", os.getpid(),
                                   parameters)))
    return BatchRunner(handle, context, _tracer(load.model_name))


def _tracer(model_name: str) -> Any:
    """A ``WorkerTracer`` when OpenTelemetry is set up in this process or configured through the
    ``OTEL_*`` variables the worker inherits; None (and nothing imported) otherwise."""
    from sagemaker_inference.server.config import tracing_configured
    from sagemaker_inference.server.observability import tracing

    if not tracing.tracing_enabled(tracing_configured(os.environ)):
        return None
    return tracing.WorkerTracer(model_name)


def _execution_parameters(handle: Any) -> str:
    """The user's override of ``/execution-parameters``, as JSON text ("" when there is none).

    Looked up on the handler service object (``execution_parameters()``), then in the user module
    (``execution_parameters_fn()`` in ``SAGEMAKER_PROGRAM``, default ``inference.py``), if loaded.
    A failing hook is logged and ignored: it must not stop the model from serving.
    """
    hook = getattr(getattr(handle, "__self__", None), "execution_parameters", None)
    if hook is None:
        from sagemaker_inference.environment import Environment

        module = sys.modules.get(Environment().module_name)
        hook = getattr(module, "execution_parameters_fn", None)
    if hook is None:
        return ""
    try:
        result = hook()
        return json.dumps(dict(result)) if result else ""
    except Exception:
        logger.error("execution parameters hook failed; using the server's values:\n%s", traceback.format_exc())
        return ""


def _preload(handler: str, model_dir: str) -> None:
    """Import the handler module, and the toolkit's user module if the handler is built on the
    toolkit, before ``Load`` arrives: this overlaps the slow part of a worker's start-up (numpy,
    torch ...) with the server's. Any failure is left for the real load to report."""
    import importlib
    import importlib.util

    from sagemaker_inference.server.workers.handler import parse_handler

    _prepare_environment(model_dir)
    try:
        importlib.import_module(parse_handler(handler).module)
        if "sagemaker_inference.transformer" in sys.modules:
            from sagemaker_inference.environment import Environment

            name = Environment().module_name
            if importlib.util.find_spec(name) is not None:
                importlib.import_module(name)
    except Exception:
        pass


def _wrap_output() -> None:
    """JSON logs: the user's prints become JSON lines too (after logging took the real stderr)."""
    global _metrics_out
    from sagemaker_inference.server.observability.jsonlog import LineWriter

    stdout, stderr = sys.stdout, sys.stderr
    _metrics_out = LineWriter(stdout, "sagemaker_inference.metrics", context=_log_context)
    sys.stdout = LineWriter(stdout, "user.stdout", context=_log_context)
    sys.stderr = LineWriter(stderr, "user.stderr", context=_log_context)


def _ignore_signal(signum: int, frame: object) -> None:
    """SIGINT/SIGTERM in a worker: the frontend decides when it ends (see the module docstring)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="sagemaker-inference worker (started by the server)")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--model-name", default="model")
    parser.add_argument("--log-level", type=int, default=logging.INFO)
    parser.add_argument("--preload", default="", help="handler to import while waiting for Load")
    parser.add_argument("--model-dir", default="")
    parser.add_argument("--log-format", default="text", choices=("text", "json"))
    args = parser.parse_args(argv)
    # Ignored, but by a handler rather than SIG_IGN: exec resets handlers to the default and keeps
    # SIG_IGN, so processes the user's code starts would otherwise ignore SIGTERM and SIGINT too.
    signal.signal(signal.SIGINT, _ignore_signal)
    signal.signal(signal.SIGTERM, _ignore_signal)
    os.set_inheritable(args.fd, False)  # programs the user's code runs must not hold our socket open
    global _model_name
    _model_name = args.model_name
    configure_logging(args.log_level, args.log_format, _log_context)
    if args.log_format == "json":
        _wrap_output()
    if args.preload:
        _preload(args.preload, args.model_dir)
    sock = socket.socket(fileno=args.fd)
    try:
        return serve(sock)
    except (EOFError, ConnectionError):
        return 0
    finally:
        sock.close()
        if _runner is not None and _runner.tracer is not None:
            from sagemaker_inference.server.observability.tracing import shutdown

            shutdown()


if __name__ == "__main__":
    sys.exit(main())

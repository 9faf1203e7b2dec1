"""The worker process: load the model once, then answer batches in a plain blocking loop.

Run as ``python -m sagemaker_inference.server.workers.process --fd 3``: the frontend passes one
end of a socketpair as fd 3 and sends ``Load`` first.

Theory. Plain batches run on the main thread, strictly in the order they arrive, and each
batch's reply is written *before the next batch starts*. That is what the frontend's failure
rules rest on (``pool.py``): the oldest unanswered batch of a worker is the one running, so when
a worker dies or hangs, exactly that batch fails and the ones behind it, which never started,
run elsewhere. (Holding finished replies to write them together would break it: a completed
request would be reported failed, and the crashing one would run twice.)

Two ways to read, one at a time:

* **plain** (every worker starts so): the main thread reads with a blocking ``recv`` and runs
  each batch in the frames it got. No event loop, no thread hop: the cheapest hot path there is.
* **concurrent**, from the moment the first stream or session starts (``channels.py``), for the
  rest of the worker's life: a reader thread owns the socket, so credit and session messages
  reach their channels at once, even while a long batch runs; batches (and anything that must
  stay in order with them) go to the main thread through a queue.

Streams and sessions run in threads of their own (``channels.py``), never on the main loop, so
they do not hold the worker: plain batches keep flowing beside them.

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
import queue
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any, cast

import sagemaker_inference
from sagemaker_inference.server.logs import configure as configure_logging
from sagemaker_inference.server.workers import protocol as p
from sagemaker_inference.server.workers.channels import Channels, Outbox, is_stream, short_reason
from sagemaker_inference.server.workers.stats import StatsRecorder

RECV_SIZE = 256 * 1024

# Response headers the server owns: the framing is ours, so a handler's values are dropped.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
                              "trailer", "x-request-id", "proxy-connection"})
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

logger = logging.getLogger("sagemaker_inference.server.worker")

# What this worker is doing, for log lines that do not say (JSON logs): set once in main/serve.
_model_name = ""
_runner: BatchRunner | None = None
_metrics_out: Any = None  # where MMS-style [METRICS] lines go; None: sys.stdout as it is now


def _log_context() -> tuple[str | None, str | None]:
    """(request ids of the batch being handled, comma-joined, or None; the model's name)."""
    runner = _runner
    if runner is not None and runner.in_batch and threading.current_thread() is threading.main_thread():
        ids = runner.context.request_ids
        return (",".join(ids.values()) if ids else None), _model_name or None
    return None, _model_name or None


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
    """Turns ``Batch`` messages into ``handle(data, context)`` calls and back; runs the model's
    session hooks (``bidirectional_stream``, ``close_session``) when they are asked for."""

    def __init__(self, handle: Any, context: Any, tracer: Any = None, channels: Channels | None = None,
                 hooks: SessionHooks | None = None):
        self.handle, self.context = handle, context
        self.tracer = tracer  # observability.tracing.WorkerTracer when OpenTelemetry is configured
        self.stats = StatsRecorder()
        self.in_batch = False
        self.channels = channels
        self.hooks = hooks or SessionHooks(None, None)

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
            responses = [self._response(idx, item, requests[idx]) for idx, item in enumerate(result)]
        except (TypeError, ValueError):
            if self.channels is not None:
                self.channels.discard_pending()
            logger.error("handler returned an item we cannot send:\n%s", traceback.format_exc())
            return p.encode(p.BatchFailed(batch.batch_id, 503, "Unsupported model output data type."))
        lines = context._metric_lines()
        if lines:
            out = _metrics_out or sys.stdout
            out.write("".join(f"[METRICS]{line}\n" for line in lines))
            out.flush()
        return p.encode_reply(batch.batch_id, responses)

    def _response(self, idx: int, item: Any, request: p.ReceivedRequest) -> p.RenderedResponse:
        processor = self.context.request_processor[idx]
        status = processor._status_code
        if type(status) is not int or not 200 <= status <= 599:
            return _invalid_status(status, request)
        reason = processor._reason_phrase
        reason_bytes = _header_value(reason) if reason else b""
        lines = _header_lines(processor._response_header)
        if type(item) is not bytes and is_stream(item):
            channel = self.channels.new_stream(item, request.request_id.decode()) if self.channels is not None else 0
            if not channel:
                return _error(503, "ServiceUnavailableException", "The worker runs too many streams.")
            return p.RenderedResponse(status, reason_bytes, lines, b"", channel)
        body = _body_bytes(item)
        if status == 204 or status == 304:
            body = b""  # no body, whatever the handler returned (RFC 9110 §15.3.5, §15.4.5)
        return p.RenderedResponse(status, reason_bytes, lines, body)

    # -- sessions -------------------------------------------------------------------------------

    def open_session(self, message: p.ChannelOpen) -> None:
        assert self.channels is not None
        hook = self.hooks.bidirectional_stream
        if hook is None:
            self.channels.outbox.send(p.encode(p.ChannelEnd(message.channel, p.CLOSE_ERROR,
                                                            "the model has no bidirectional_stream_fn")))
            return
        context = self._session_context(cast(p.ReceivedRequest, message.request))
        self.channels.open_session(message, lambda messages: hook(messages, context))

    def _session_context(self, request: p.ReceivedRequest) -> Any:
        """A ``Context`` of its own for one session (the shared one changes with every batch):
        the upgrade request's headers as request 0, its query as ``context.query_params``."""
        base = self.context
        context = type(base)(base.model_name, base.system_properties.get("model_dir"), base.manifest,
                             base.system_properties.get("batch_size"), base.system_properties.get("gpu_id"),
                             base.system_properties.get("server_version"))
        flat = request.header_items()
        context._begin_batch({0: request.request_id.decode()}, [dict(zip(flat[0::2], flat[1::2]))])
        params = request.param_items()
        context.query_params = dict(zip(params[0::2], params[1::2]))
        return context

    def close_session(self, message: p.CloseSession) -> bytes:
        hook = self.hooks.close_session
        if hook is not None:
            try:
                hook(message.session_id, self.context)
            except Exception as exc:
                logger.error("close_session_fn failed for session %s", message.session_id, exc_info=True)
                return p.encode(p.SessionClosed(message.call_id, 500, short_reason(exc)))
        return p.encode(p.SessionClosed(message.call_id))


class SessionHooks:
    """The model's optional hooks beyond ``handle``: ``bidirectional_stream(messages, context)``
    and ``close_session(session_id, context)``, found on the handler service object (or, for a
    function-form handler, in its module); the default service maps them to the user module's
    ``bidirectional_stream_fn`` and ``close_session_fn``."""

    __slots__ = ("bidirectional_stream", "close_session")

    def __init__(self, bidirectional_stream: Any, close_session: Any):
        self.bidirectional_stream, self.close_session = bidirectional_stream, close_session

    @classmethod
    def of(cls, handle: Any) -> SessionHooks:
        owner = getattr(handle, "__self__", None)
        if owner is None:
            owner = sys.modules.get(getattr(handle, "__module__", "") or "")
        hooks = [getattr(owner, name, None) for name in ("bidirectional_stream", "close_session")]
        return cls(*[hook if callable(hook) else None for hook in hooks])

    @property
    def capabilities(self) -> int:
        return (p.CAN_BIDI if self.bidirectional_stream else 0) | (p.CAN_CLOSE_SESSION if self.close_session else 0)


def _error(status: int, error_type: str, message: str) -> p.RenderedResponse:
    body = json.dumps({"code": status, "type": error_type, "message": message}, indent=2).encode() + b"\n"
    return p.RenderedResponse(status, b"", b"content-type: application/json\r\n", body)


def _invalid_status(status: Any, request: p.ReceivedRequest) -> p.RenderedResponse:
    logger.error("request %s: the handler set status %r; a response status must be an integer in 200..599",
                 request.request_id.decode(), status)
    return _error(500, "InternalServerException", f"The handler set an invalid response status {status!r}.")


_lines_cache: dict[tuple[Any, ...], bytes] = {}


def _header_lines(headers: dict[str, Any]) -> bytes:
    """``name: value\r\n`` lines; the same few header sets recur on every request, so cache them.

    Framing headers (``_FRAMING_HEADERS``) are the server's and names that are not HTTP tokens
    would corrupt the response: both are dropped (with a warning, once per header set)."""
    try:
        key = tuple(headers.items())
        lines = _lines_cache.get(key)
    except TypeError:  # an unhashable value: render without the cache
        key, lines = (), None
    if lines is None:
        kept = []
        for name, value in headers.items():
            if value is None:
                continue
            text = str(name)
            if not text or text.lower() in _FRAMING_HEADERS or not _TOKEN.issuperset(text):
                logger.warning("response header %r set by the handler dropped: %s", text,
                               "the server sets it" if text.lower() in _FRAMING_HEADERS else "not a valid name")
                continue
            kept.append(b"%s: %s\r\n" % (text.encode("ascii"), _header_value(value)))
        lines = b"".join(kept)
        if key and len(_lines_cache) < 256:
            _lines_cache[key] = lines
    return lines


class Receiver:
    """``recv`` into one buffer kept for the worker's life, returning a copy of what arrived.

    ``sock.recv(RECV_SIZE)`` allocates a fresh ``RECV_SIZE`` block per call, which glibc serves
    with ``mmap``, shrinks with ``mremap`` and frees with ``munmap``: three syscalls per read on
    top of the read itself, the price of every request at low concurrency. Copying the bytes
    that arrived out of a reused buffer costs a ``memcpy``.
    """

    __slots__ = ("_sock", "_buffer", "_view")

    def __init__(self, sock: socket.socket, size: int = RECV_SIZE):
        self._sock = sock
        self._buffer = bytearray(size)
        self._view = memoryview(self._buffer)

    def recv(self) -> bytes:
        """What the frontend sent next (b"" at its end of the connection)."""
        count = self._sock.recv_into(self._buffer)
        return self._view[:count].tobytes()


def _recv_exactly_one(receiver: Receiver, reader: p.FrameReader) -> p.Message:
    while True:
        data = receiver.recv()
        if not data:
            raise EOFError("frontend closed the connection before loading")
        messages = reader.feed(data)
        if messages:
            return messages[0]


def serve(sock: socket.socket) -> int:
    reader = p.FrameReader()
    receiver = Receiver(sock)
    load = _recv_exactly_one(receiver, reader)
    if not isinstance(load, p.Load):
        raise p.ProtocolError(f"expected Load, got {load!r}")
    global _runner
    outbox = Outbox(sock)
    runner = _runner = _load(outbox, load)
    if runner is None:
        return 1
    channels = runner.channels
    assert channels is not None
    while True:
        data = receiver.recv()
        if not data:
            return 0
        for message in reader.feed(data):
            _run_in_order(runner, outbox, message)
        if channels.used:
            return _serve_concurrently(receiver, reader, runner, outbox)


def _run_in_order(runner: BatchRunner, outbox: Outbox, message: p.Message) -> None:
    """One message on the main thread. A batch's reply is sent before anything else runs."""
    if type(message) is p.Batch:
        outbox.send(runner.run_batch(message))
        channels = runner.channels
        if channels is not None and channels._pending:
            channels.start_pending()
    elif isinstance(message, p.StatsRequest):
        outbox.send(p.encode(runner.stats.take()))
    elif isinstance(message, p.CloseSession):
        outbox.send(runner.close_session(message))
    elif isinstance(message, p.ChannelOpen):
        runner.open_session(message)
    elif runner.channels is not None:
        runner.channels.on_message(message)


_ORDERED = (p.Batch, p.CloseSession, p.StatsRequest)  # run on the main thread, in order with batches


def _serve_concurrently(receiver: Receiver, reader: p.FrameReader, runner: BatchRunner, outbox: Outbox) -> int:
    """The concurrent mode of the module docstring: a reader thread, batches on this thread."""
    work: queue.SimpleQueue[p.Message | None] = queue.SimpleQueue()
    failed: list[BaseException] = []

    def read() -> None:
        try:
            while True:
                data = receiver.recv()
                if not data:
                    return
                for message in reader.feed(data):
                    if isinstance(message, _ORDERED):
                        work.put(message)
                    else:
                        _run_in_order(runner, outbox, message)
        except (OSError, p.ProtocolError) as exc:
            failed.append(exc)
        finally:
            work.put(None)

    threading.Thread(target=read, name="reader", daemon=True).start()
    while True:
        message = work.get()
        if message is None:
            break
        _run_in_order(runner, outbox, message)
    if failed and not isinstance(failed[0], (ConnectionError, EOFError)):
        logger.error("worker connection failed: %s", failed[0])
        return 1
    return 0


def _load(outbox: Outbox, load: p.Load) -> BatchRunner | None:
    from sagemaker_inference.context import Context
    from sagemaker_inference.server.workers.handler import load_handler

    _prepare_environment(load.model_dir)
    gpu = load.gpu_id if load.gpu_id >= 0 else None
    context = Context(load.model_name, load.model_dir, _manifest(load.model_dir), load.batch_size, gpu,
                      sagemaker_inference.__version__)
    try:
        handle = load_handler(load.handler, context)
        parameters = _execution_parameters(handle)
    except MemoryError:
        outbox.send(p.encode(p.Loaded(507, "System out of memory", os.getpid())))
        return None
    except BaseException as exc:
        # The frontend logs the traceback once for the model, not once per worker.
        trace = traceback.format_exc()
        outbox.send(p.encode(p.Loaded(500, f"{_summary(exc)}\n{trace[-MAX_TRACEBACK:]}", os.getpid())))
        return None
    hooks = SessionHooks.of(handle)
    loaded = f"loaded model {load.model_name}. [PID]:{os.getpid()}"
    described = _user_module_summary()
    outbox.send(p.encode(p.Loaded(200, f"{loaded}\n{described}" if described else loaded, os.getpid(),
                                  parameters, hooks.capabilities)))
    return BatchRunner(handle, context, _tracer(load.model_name), Channels(outbox), hooks)


def _tracer(model_name: str) -> Any:
    """A ``WorkerTracer`` when OpenTelemetry is set up in this process or configured through the
    ``OTEL_*`` variables the worker inherits; None (and nothing imported) otherwise."""
    from sagemaker_inference.server.config import tracing_configured
    from sagemaker_inference.server.observability import tracing

    if not tracing.tracing_enabled(tracing_configured(os.environ)):
        return None
    return tracing.WorkerTracer(model_name)


MAX_TRACEBACK = 16 * 1024  # the end of a load failure's traceback, where its cause is
HANDLER_FUNCTIONS = ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn", "predict_batch_fn",
                     "pre_model_fn", "model_warmup_fn", "execution_parameters_fn")


def _summary(exc: BaseException) -> str:
    """``Type: first non-empty line of the message`` (upstream's messages start with a newline)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:500]}" if lines else type(exc).__name__


def _user_module_summary() -> str:
    """Which user module the toolkit loaded and which handler functions it defines ("" if none)."""
    from sagemaker_inference.environment import _user_module_name

    module = sys.modules.get(_user_module_name())
    if module is None:
        return ""
    defined = [name for name in HANDLER_FUNCTIONS if callable(getattr(module, name, None))]
    return f"user module {getattr(module, '__file__', None) or module.__name__} defines " + (
        ", ".join(defined) if defined else "no handler functions")


def _execution_parameters(handle: Any) -> str:
    """The user's override of ``/execution-parameters``, as JSON text ("" when there is none).

    Looked up on the handler service object (``execution_parameters()``), then in the user module
    (``execution_parameters_fn()`` in ``SAGEMAKER_PROGRAM``, default ``inference.py``), if loaded.
    A failing hook is logged and ignored: it must not stop the model from serving.
    """
    hook = getattr(getattr(handle, "__self__", None), "execution_parameters", None)
    if hook is None:
        from sagemaker_inference.environment import _user_module_name

        module = sys.modules.get(_user_module_name())
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
            from sagemaker_inference.environment import _user_module_name

            name = _user_module_name()
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

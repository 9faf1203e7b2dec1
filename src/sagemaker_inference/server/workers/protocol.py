"""Messages between the frontend and a worker process, and their framing. Sans-IO.

Theory: the costs of a hand-off are syscalls and wake-ups, not bytes. So a message is a fixed
binary header plus raw bodies (never pickle or JSON: the payload passes through untouched), many
messages may travel in one write, and ``FrameReader.feed`` returns every complete message in a
chunk. Each frame is ``!IB`` (length of what follows the length field, message kind) + payload.

Header and query name/value pairs travel as one NUL-joined blob (``name\0value\0name\0value``):
one ``join`` to encode, one ``split`` to decode. HTTP forbids NUL in header names and values, and
the frontend refuses such requests, so the separator is unambiguous. Encoding or decoding a
request is a handful of C calls. ``batch_id`` matches a ``Reply``/``BatchFailed``
to its ``Batch``; ids are unique per worker connection.

Observability travels on the same connection, pulled, never pushed: the frontend sends
``StatsRequest`` now and then (and on a scrape); the worker answers with ``WorkerStats`` in
order, after whatever it is running. Between requests the worker only adds to a few plain
numbers, so a busy worker pays nothing per request for being observed, an idle one nothing at all.
Channels (streams and sessions). A response whose body is an iterator travels as a ``Response``
with a non-zero ``channel`` (its head) followed by ``ChannelData`` frames and one ``ChannelEnd``.
A bidirectional session is a channel the frontend opens with ``ChannelOpen``; then both sides send
``ChannelData`` and either side ends it with ``ChannelEnd`` (a WebSocket close code and reason).
Flow control is credit: the receiver of ``ChannelData`` grants ``ChannelCredit`` as it consumes
messages, and a sender never has more unconsumed messages out than it was granted (the initial
grant is ``STREAM_WINDOW``/``SESSION_WINDOW`` for each direction, implicitly). Worker-allocated
channel ids (response streams) have the top bit set, frontend-allocated ones (sessions) do not,
so the two never collide. ``CloseSession``/``SessionClosed`` run a sticky session's close hook.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, Union

Pairs = Sequence[tuple[bytes, bytes]]

_FRAME = struct.Struct("!IB")
_BATCH_HEAD = struct.Struct("!QI")
_REQUEST_HEAD = struct.Struct("!BIII")  # id length, header blob length, query blob length, body length
_RESPONSE_HEAD = struct.Struct("!HHIIQ")  # status, reason length, header lines length, body length, channel
_CHANNEL_DATA_HEAD = struct.Struct("!QB")  # channel, binary flag
_CHANNEL_CREDIT = struct.Struct("!QI")
_CHANNEL_END_HEAD = struct.Struct("!QH")  # channel, close code
_CALL_HEAD = struct.Struct("!Q")
_SESSION_CLOSED_HEAD = struct.Struct("!QH")
_FAILED_HEAD = struct.Struct("!QH")
_U32 = struct.Struct("!I")
_I32 = struct.Struct("!i")

KIND_LOAD, KIND_LOADED, KIND_BATCH, KIND_REPLY, KIND_FAILED = 1, 2, 3, 4, 5
KIND_STATS_REQUEST, KIND_STATS = 16, 17

# Upper bounds (seconds) of the duration histograms, the worker's time in ``handle`` among them:
# bucket ``i`` of ``WorkerStats.handle_buckets`` counts calls that took at most
# ``DURATION_BUCKETS[i]`` and more than the bound before it; the last bucket counts the rest.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0)
_STATS_HEAD = struct.Struct("!QdIdH")  # rss bytes, cpu seconds, handle calls, handle seconds, bucket count
_STATS_METRIC = struct.Struct("!Bd")  # counter flag, value
_U16 = struct.Struct("!H")
KIND_CHANNEL_OPEN, KIND_CHANNEL_DATA, KIND_CHANNEL_CREDIT, KIND_CHANNEL_END = 6, 7, 8, 9
KIND_CLOSE_SESSION, KIND_SESSION_CLOSED = 10, 11

# Capabilities a worker reports in ``Loaded.capabilities`` (bit flags).
CAN_BIDI, CAN_CLOSE_SESSION = 1, 2
# How many messages a channel's sender may have out unconsumed before it waits for credit.
STREAM_WINDOW = 16
SESSION_WINDOW = 16
WORKER_CHANNEL_BIT = 1 << 63
# WebSocket close codes used on channels (RFC 6455 §7.4.1).
CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_ERROR = 1000, 1001, 1011

_lengths_cache: dict[int, struct.Struct] = {}


def _lengths(count: int) -> struct.Struct:
    """``!{count}I``; cached because the same small counts recur on every request."""
    packer = _lengths_cache.get(count)
    if packer is None:
        packer = _lengths_cache[count] = struct.Struct(f"!{count}I")
    return packer


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid frame: the connection cannot be trusted any more."""


class Load:
    """Frontend -> worker, first message: which model to load and how."""

    __slots__ = ("model_name", "model_dir", "handler", "batch_size", "gpu_id")
    kind = KIND_LOAD

    def __init__(self, model_name: str, model_dir: str, handler: str, batch_size: int = 1, gpu_id: int = -1):
        self.model_name, self.model_dir, self.handler = model_name, model_dir, handler
        self.batch_size, self.gpu_id = batch_size, gpu_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Load) and all(getattr(self, f) == getattr(other, f) for f in self.__slots__)

    def __repr__(self) -> str:
        return f"Load({self.model_name!r}, {self.model_dir!r}, {self.handler!r}, {self.batch_size}, {self.gpu_id})"


class Loaded:
    """Worker -> frontend, answer to ``Load``: ``status`` 200 when ready, else why it failed.

    ``parameters``: JSON text from the user's execution-parameters hook ("" if none). It follows
    the message after a NUL, which a message never contains.
    """

    __slots__ = ("status", "message", "pid", "parameters", "capabilities")
    kind = KIND_LOADED

    def __init__(self, status: int, message: str, pid: int, parameters: str = "", capabilities: int = 0):
        self.status, self.message, self.pid = status, message.replace("\0", " "), pid
        self.parameters, self.capabilities = parameters, capabilities

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Loaded) and (
            self.status, self.message, self.pid, self.parameters, self.capabilities) == (
            other.status, other.message, other.pid, other.parameters, other.capabilities)

    def __repr__(self) -> str:
        return f"Loaded({self.status}, {self.message!r}, {self.pid})"


class Request:
    """One HTTP request as the handler will see it: id, headers as sent, query params, raw body.

    The sending side builds it from byte pairs. Anything with these four attributes encodes the
    same way (the frontend encodes its pending-inference objects directly).
    """

    __slots__ = ("request_id", "headers", "params", "body")

    def __init__(self, request_id: bytes, headers: Pairs, params: Pairs, body: bytes):
        self.request_id, self.headers, self.params, self.body = request_id, headers, params, body

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (Request, ReceivedRequest)) and (
            self.request_id, list(self.headers), list(self.params), self.body) == (
            other.request_id, list(other.headers), list(other.params), other.body)

    def __repr__(self) -> str:
        return f"Request({self.request_id!r}, {len(self.headers)} headers, {len(self.body)} bytes)"


class ReceivedRequest:
    """A decoded ``Request``: headers and params stay NUL-joined blobs until asked for, because
    the worker wants them as ``str`` dicts, which one ``decode`` and one ``split`` per blob give."""

    __slots__ = ("request_id", "header_blob", "param_blob", "body")

    def __init__(self, request_id: bytes, header_blob: bytes, param_blob: bytes, body: bytes):
        self.request_id, self.header_blob, self.param_blob, self.body = request_id, header_blob, param_blob, body

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return _unblob(self.header_blob)

    @property
    def params(self) -> list[tuple[bytes, bytes]]:
        return _unblob(self.param_blob)

    def header_items(self) -> list[str]:
        """Names and values alternating, as text (UTF-8, undecodable bytes replaced, as MMS)."""
        return self.header_blob.decode("utf-8", "replace").split("\0") if self.header_blob else []

    def param_items(self) -> list[str]:
        return self.param_blob.decode("utf-8", "replace").split("\0") if self.param_blob else []

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (Request, ReceivedRequest)) and (
            self.request_id, self.headers, self.params, self.body) == (
            other.request_id, list(other.headers), list(other.params), other.body)

    def __repr__(self) -> str:
        return f"ReceivedRequest({self.request_id!r}, {len(self.body)} bytes)"


class Batch:
    """Frontend -> worker: 1..batch_size requests for one ``handle(data, context)`` call."""

    __slots__ = ("batch_id", "requests")
    kind = KIND_BATCH

    def __init__(self, batch_id: int, requests: Sequence[Request | ReceivedRequest]):
        self.batch_id, self.requests = batch_id, requests

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Batch) and self.batch_id == other.batch_id and list(self.requests) == list(
            other.requests)

    def __repr__(self) -> str:
        return f"Batch({self.batch_id}, {len(self.requests)} requests)"


class Response:
    """One answer: status, reason phrase, headers (content type included), body.

    Headers travel already rendered as HTTP header lines (``name: value\r\n``...): the worker
    renders them, so the frontend, the one process every request goes through, only splices them
    into its response. Names and values must not contain CR or LF (the worker sanitises them).
    ``channel`` non-zero: this is the head of a streamed body that follows as ``ChannelData``.
    """

    __slots__ = ("status", "reason", "headers", "body", "channel")

    def __init__(self, status: int, reason: bytes, headers: Pairs, body: bytes, channel: int = 0):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body
        self.channel = channel

    @property
    def header_lines(self) -> bytes:
        return b"".join([b"%s: %s\r\n" % pair for pair in self.headers])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (Response, RenderedResponse)) and (
            self.status, self.reason, list(self.headers), self.body, self.channel) == (
            other.status, other.reason, list(other.headers), other.body, other.channel)

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.reason!r}, {len(self.body)} bytes)"


class RenderedResponse:
    """A ``Response`` whose headers are already HTTP header lines: what the worker builds (it
    caches the lines of recurring header sets) and what the frontend decodes and splices."""

    __slots__ = ("status", "reason", "header_lines", "body", "channel")

    def __init__(self, status: int, reason: bytes, header_lines: bytes, body: bytes, channel: int = 0):
        self.status, self.reason, self.header_lines, self.body = status, reason, header_lines, body
        self.channel = channel

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        pairs = []
        for line in self.header_lines.split(b"\r\n"):
            if line:
                name, _, value = line.partition(b": ")
                pairs.append((name, value))
        return pairs

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (Response, RenderedResponse)) and (
            self.status, self.reason, self.headers, self.body, self.channel) == (
            other.status, other.reason, list(other.headers), other.body, other.channel)

    def __repr__(self) -> str:
        return f"RenderedResponse({self.status}, {self.reason!r}, {len(self.body)} bytes)"


class Reply:
    """Worker -> frontend: one ``Response`` per request of batch ``batch_id``, in order."""

    __slots__ = ("batch_id", "responses")
    kind = KIND_REPLY

    def __init__(self, batch_id: int, responses: Sequence[Response | RenderedResponse]):
        self.batch_id, self.responses = batch_id, responses

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reply) and self.batch_id == other.batch_id and list(self.responses) == list(
            other.responses)

    def __repr__(self) -> str:
        return f"Reply({self.batch_id}, {len(self.responses)} responses)"


class BatchFailed:
    """Worker -> frontend: the whole batch failed (handler raised, bad return value)."""

    __slots__ = ("batch_id", "status", "message")
    kind = KIND_FAILED

    def __init__(self, batch_id: int, status: int, message: str):
        self.batch_id, self.status, self.message = batch_id, status, message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BatchFailed) and (self.batch_id, self.status, self.message) == (
            other.batch_id, other.status, other.message)

    def __repr__(self) -> str:
        return f"BatchFailed({self.batch_id}, {self.status}, {self.message!r})"


class StatsRequest:
    """Frontend -> worker: send a ``WorkerStats`` when you get to this message."""

    __slots__ = ()
    kind = KIND_STATS_REQUEST

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StatsRequest)

    def __repr__(self) -> str:
        return "StatsRequest()"


class HandlerMetric:
    """One metric a handler recorded through the MMS ``Context.metrics`` store, summed over the
    batches since the last ``WorkerStats`` (``counter``) or the last value recorded (otherwise)."""

    __slots__ = ("name", "unit", "value", "counter")

    def __init__(self, name: str, unit: str, value: float, counter: bool = False):
        self.name, self.unit, self.value, self.counter = name, unit, value, counter

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HandlerMetric) and (self.name, self.unit, self.value, self.counter) == (
            other.name, other.unit, other.value, other.counter)

    def __repr__(self) -> str:
        return f"HandlerMetric({self.name!r}, {self.unit!r}, {self.value!r}, counter={self.counter})"


class WorkerStats:
    """Worker -> frontend, answer to ``StatsRequest``: what the frontend cannot see for itself.

    ``rss_bytes`` and ``cpu_seconds`` are the worker process's resident memory now and its CPU
    time so far. The rest counts what happened since the previous ``WorkerStats`` (deltas, so the
    frontend adds them up and a worker that dies loses at most what it had not reported):
    ``handle_calls`` calls of ``handle`` taking ``handle_seconds`` in all, ``handle_buckets`` their
    histogram over ``DURATION_BUCKETS`` (one more bucket than bounds), ``metrics`` the handler's own.
    """

    __slots__ = ("rss_bytes", "cpu_seconds", "handle_calls", "handle_seconds", "handle_buckets", "metrics")
    kind = KIND_STATS

    def __init__(self, rss_bytes: int, cpu_seconds: float, handle_calls: int = 0, handle_seconds: float = 0.0,
                 handle_buckets: Sequence[int] = (), metrics: Sequence[HandlerMetric] = ()):
        self.rss_bytes, self.cpu_seconds = rss_bytes, cpu_seconds
        self.handle_calls, self.handle_seconds = handle_calls, handle_seconds
        self.handle_buckets = list(handle_buckets) or [0] * (len(DURATION_BUCKETS) + 1)
        self.metrics = list(metrics)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WorkerStats) and all(getattr(self, f) == getattr(other, f) for f in self.__slots__)

    def __repr__(self) -> str:
        return (f"WorkerStats(rss={self.rss_bytes}, cpu={self.cpu_seconds:.3f}, calls={self.handle_calls}, "
                f"{len(self.metrics)} metrics)")


class ChannelOpen:
    """Frontend -> worker: start a bidirectional session ``channel`` for the request that upgraded."""

    __slots__ = ("channel", "request")
    kind = KIND_CHANNEL_OPEN

    def __init__(self, channel: int, request: Request | ReceivedRequest):
        self.channel, self.request = channel, request

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChannelOpen) and self.channel == other.channel and self.request == other.request

    def __repr__(self) -> str:
        return f"ChannelOpen({self.channel}, {self.request!r})"


class ChannelData:
    """Either way: one message of a channel (a chunk of a streamed body, a WebSocket message)."""

    __slots__ = ("channel", "binary", "data")
    kind = KIND_CHANNEL_DATA

    def __init__(self, channel: int, data: bytes, binary: bool = True):
        self.channel, self.data, self.binary = channel, data, binary

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChannelData) and (self.channel, self.data, self.binary) == (
            other.channel, other.data, other.binary)

    def __repr__(self) -> str:
        return f"ChannelData({self.channel}, {len(self.data)} bytes, binary={self.binary})"


class ChannelCredit:
    """Either way: the sender of this consumed ``credit`` more messages of ``channel``."""

    __slots__ = ("channel", "credit")
    kind = KIND_CHANNEL_CREDIT

    def __init__(self, channel: int, credit: int = 1):
        self.channel, self.credit = channel, credit

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChannelCredit) and (self.channel, self.credit) == (other.channel, other.credit)

    def __repr__(self) -> str:
        return f"ChannelCredit({self.channel}, {self.credit})"


class ChannelEnd:
    """Either way: ``channel`` is over. ``code`` is a WebSocket close code: 1000 a clean end, 1011 a
    failure of the handler (``reason`` says why); from the frontend, the client left or closed."""

    __slots__ = ("channel", "code", "reason")
    kind = KIND_CHANNEL_END

    def __init__(self, channel: int, code: int = CLOSE_NORMAL, reason: str = ""):
        self.channel, self.code, self.reason = channel, code, reason

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChannelEnd) and (self.channel, self.code, self.reason) == (
            other.channel, other.code, other.reason)

    def __repr__(self) -> str:
        return f"ChannelEnd({self.channel}, {self.code}, {self.reason!r})"


class CloseSession:
    """Frontend -> worker: run the model's close hook for sticky session ``session_id``."""

    __slots__ = ("call_id", "session_id")
    kind = KIND_CLOSE_SESSION

    def __init__(self, call_id: int, session_id: str):
        self.call_id, self.session_id = call_id, session_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CloseSession) and (self.call_id, self.session_id) == (
            other.call_id, other.session_id)

    def __repr__(self) -> str:
        return f"CloseSession({self.call_id}, {self.session_id!r})"


class SessionClosed:
    """Worker -> frontend, answer to ``CloseSession``: 200, or the hook's failure."""

    __slots__ = ("call_id", "status", "message")
    kind = KIND_SESSION_CLOSED

    def __init__(self, call_id: int, status: int = 200, message: str = ""):
        self.call_id, self.status, self.message = call_id, status, message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SessionClosed) and (self.call_id, self.status, self.message) == (
            other.call_id, other.status, other.message)

    def __repr__(self) -> str:
        return f"SessionClosed({self.call_id}, {self.status}, {self.message!r})"


Message = Union[Load, Loaded, Batch, Reply, BatchFailed, StatsRequest, WorkerStats, ChannelOpen, ChannelData,
                ChannelCredit, ChannelEnd, CloseSession, SessionClosed]


# -- encoding ------------------------------------------------------------------------------------


def _strings(*values: str) -> bytes:
    raw = [v.encode() for v in values]
    return b"".join([_lengths(len(raw)).pack(*map(len, raw)), *raw])


def _frame(kind: int, parts: list[bytes]) -> bytes:
    payload = b"".join(parts)
    return _FRAME.pack(len(payload) + 1, kind) + payload


def encode(message: Message) -> bytes:
    """The frame for one message, ready to write (several frames may be concatenated)."""
    if isinstance(message, Batch):
        return encode_batch(message.batch_id, message.requests)
    if isinstance(message, Reply):
        return encode_reply(message.batch_id, message.responses)
    if isinstance(message, BatchFailed):
        return _frame(KIND_FAILED, [_FAILED_HEAD.pack(message.batch_id, message.status), message.message.encode()])
    if isinstance(message, Load):
        return _frame(KIND_LOAD, [_I32.pack(message.batch_size), _I32.pack(message.gpu_id),
                                  _strings(message.model_name, message.model_dir, message.handler)])
    if isinstance(message, Loaded):
        text = message.message + ("\0" + message.parameters if message.parameters else "")
        return _frame(KIND_LOADED, [_I32.pack(message.status), _I32.pack(message.pid),
                                    _I32.pack(message.capabilities), text.encode()])
    if isinstance(message, WorkerStats):
        return _encode_stats(message)
    if isinstance(message, StatsRequest):
        return _frame(KIND_STATS_REQUEST, [])
    if isinstance(message, ChannelData):
        return encode_channel_data(message.channel, message.data, message.binary)
    if isinstance(message, ChannelCredit):
        return _frame(KIND_CHANNEL_CREDIT, [_CHANNEL_CREDIT.pack(message.channel, message.credit)])
    if isinstance(message, ChannelEnd):
        return _frame(KIND_CHANNEL_END, [_CHANNEL_END_HEAD.pack(message.channel, message.code),
                                         message.reason.encode()])
    if isinstance(message, ChannelOpen):
        return _frame(KIND_CHANNEL_OPEN, [_CALL_HEAD.pack(message.channel), *_request_parts(message.request)])
    if isinstance(message, CloseSession):
        return _frame(KIND_CLOSE_SESSION, [_CALL_HEAD.pack(message.call_id), message.session_id.encode()])
    if isinstance(message, SessionClosed):
        return _frame(KIND_SESSION_CLOSED, [_SESSION_CLOSED_HEAD.pack(message.call_id, message.status),
                                            message.message.encode()])
    raise TypeError(f"not a protocol message: {message!r}")


def _encode_stats(stats: WorkerStats) -> bytes:
    buckets = stats.handle_buckets
    parts = [_STATS_HEAD.pack(stats.rss_bytes, stats.cpu_seconds, stats.handle_calls, stats.handle_seconds,
                              len(buckets)), _lengths(len(buckets)).pack(*buckets), _U16.pack(len(stats.metrics))]
    for metric in stats.metrics:
        parts += (_STATS_METRIC.pack(metric.counter, metric.value), _strings(metric.name, metric.unit))
    return _frame(KIND_STATS, parts)


def _decode_stats(c: _Cursor) -> WorkerStats:
    rss, cpu, calls, seconds, count = c.unpack(_STATS_HEAD)
    buckets = c.unpack(_lengths(count)) if count else ()
    (metric_count,) = c.unpack(_U16)
    metrics = []
    for _ in range(metric_count):
        counter, value = c.unpack(_STATS_METRIC)
        name, unit = c.strings(2)
        metrics.append(HandlerMetric(name, unit, value, bool(counter)))
    return WorkerStats(rss, cpu, calls, seconds, buckets, metrics)


def _blob(pairs: Pairs) -> bytes:
    return b"\0".join([part for pair in pairs for part in pair]) if pairs else b""


def _unblob(blob: bytes) -> list[tuple[bytes, bytes]]:
    if not blob:
        return []
    flat = blob.split(b"\0")
    if len(flat) % 2:
        raise ProtocolError("odd number of fields in a name/value blob")
    return list(zip(flat[0::2], flat[1::2]))


def encode_batch(batch_id: int, requests: Sequence[Any]) -> bytes:
    """``requests``: anything with ``request_id``, ``headers``, ``params`` (byte pairs) and ``body``."""
    parts = [_BATCH_HEAD.pack(batch_id, len(requests))]
    for r in requests:
        headers, params = _blob(r.headers), _blob(r.params)
        parts += (_REQUEST_HEAD.pack(len(r.request_id), len(headers), len(params), len(r.body)),
                  r.request_id, headers, params, r.body)
    return _frame(KIND_BATCH, parts)


def _request_parts(r: Any) -> list[bytes]:
    headers = r.header_blob if isinstance(r, ReceivedRequest) else _blob(r.headers)
    params = r.param_blob if isinstance(r, ReceivedRequest) else _blob(r.params)
    return [_REQUEST_HEAD.pack(len(r.request_id), len(headers), len(params), len(r.body)),
            r.request_id, headers, params, r.body]


def encode_reply(batch_id: int, responses: Sequence[Response | RenderedResponse]) -> bytes:
    parts = [_BATCH_HEAD.pack(batch_id, len(responses))]
    for r in responses:
        lines = r.header_lines
        parts += (_RESPONSE_HEAD.pack(r.status, len(r.reason), len(lines), len(r.body), r.channel),
                  r.reason, lines, r.body)
    return _frame(KIND_REPLY, parts)


def encode_channel_data(channel: int, data: bytes, binary: bool = True) -> bytes:
    """The hot message of a stream: one chunk, framed without building a message object."""
    return b"".join((_FRAME.pack(len(data) + 10, KIND_CHANNEL_DATA), _CHANNEL_DATA_HEAD.pack(channel, binary),
                     data))


# -- decoding ------------------------------------------------------------------------------------


class _Cursor:
    """Reads fields from one frame of ``data`` (immutable bytes); every read is bounds-checked."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int, end: int):
        self.data, self.pos, self.end = data, pos, end

    def unpack(self, packer: struct.Struct) -> tuple[int, ...]:
        if self.pos + packer.size > self.end:
            raise ProtocolError("truncated message")
        values = packer.unpack_from(self.data, self.pos)
        self.pos += packer.size
        return values

    def take(self, size: int) -> bytes:
        start = self.pos
        self.pos = end = start + size
        if end > self.end:
            raise ProtocolError("truncated message")
        return self.data[start:end]

    def strings(self, count: int) -> list[str]:
        return [self.take(n).decode() for n in self.unpack(_lengths(count))]


# The two hot decoders below read straight from the frame (no _Cursor method calls) since they
# run for every request; a short or overlong frame shows up as a final position that is not the
# frame's end (checked by FrameReader) or as struct.error, which it turns into ProtocolError.


def _decode_batch(c: _Cursor) -> Batch:
    data, pos = c.data, c.pos
    batch_id, count = _BATCH_HEAD.unpack_from(data, pos)
    pos += 12
    requests = []
    for _ in range(count):
        id_len, headers_len, params_len, body_len = _REQUEST_HEAD.unpack_from(data, pos)
        pos += 13
        request_id = data[pos:pos + id_len]
        pos += id_len
        header_blob = data[pos:pos + headers_len]
        pos += headers_len
        param_blob = data[pos:pos + params_len] if params_len else b""
        pos += params_len
        requests.append(ReceivedRequest(request_id, header_blob, param_blob, data[pos:pos + body_len]))
        pos += body_len
    c.pos = pos
    return Batch(batch_id, requests)


def _decode_reply(c: _Cursor) -> Reply:
    data, pos = c.data, c.pos
    batch_id, count = _BATCH_HEAD.unpack_from(data, pos)
    pos += 12
    responses = []
    for _ in range(count):
        status, reason_len, headers_len, body_len, channel = _RESPONSE_HEAD.unpack_from(data, pos)
        pos += 20
        reason = data[pos:pos + reason_len]
        pos += reason_len
        header_lines = data[pos:pos + headers_len]
        pos += headers_len
        responses.append(RenderedResponse(status, reason, header_lines, data[pos:pos + body_len], channel))
        pos += body_len
    c.pos = pos
    return Reply(batch_id, responses)


def _decode_request(c: _Cursor) -> ReceivedRequest:
    id_len, headers_len, params_len, body_len = c.unpack(_REQUEST_HEAD)
    return ReceivedRequest(c.take(id_len), c.take(headers_len), c.take(params_len), c.take(body_len))


def _rest(c: _Cursor) -> bytes:
    return c.take(c.end - c.pos)


def _decode(kind: int, c: _Cursor) -> Message:
    if kind == KIND_BATCH:
        return _decode_batch(c)
    if kind == KIND_REPLY:
        return _decode_reply(c)
    if kind == KIND_CHANNEL_DATA:
        channel, binary = c.unpack(_CHANNEL_DATA_HEAD)
        return ChannelData(channel, _rest(c), bool(binary))
    if kind == KIND_CHANNEL_CREDIT:
        channel, credit = c.unpack(_CHANNEL_CREDIT)
        return ChannelCredit(channel, credit)
    if kind == KIND_CHANNEL_END:
        channel, code = c.unpack(_CHANNEL_END_HEAD)
        return ChannelEnd(channel, code, _rest(c).decode())
    if kind == KIND_CHANNEL_OPEN:
        (channel,) = c.unpack(_CALL_HEAD)
        return ChannelOpen(channel, _decode_request(c))
    if kind == KIND_CLOSE_SESSION:
        (call_id,) = c.unpack(_CALL_HEAD)
        return CloseSession(call_id, _rest(c).decode())
    if kind == KIND_SESSION_CLOSED:
        call_id, status = c.unpack(_SESSION_CLOSED_HEAD)
        return SessionClosed(call_id, status, _rest(c).decode())
    if kind == KIND_FAILED:
        batch_id, status = c.unpack(_FAILED_HEAD)
        return BatchFailed(batch_id, status, c.take(c.end - c.pos).decode())
    if kind == KIND_LOAD:
        (batch_size,), (gpu_id,) = c.unpack(_I32), c.unpack(_I32)
        name, model_dir, handler = c.strings(3)
        return Load(name, model_dir, handler, batch_size, gpu_id)
    if kind == KIND_LOADED:
        (status,), (pid,), (capabilities,) = c.unpack(_I32), c.unpack(_I32), c.unpack(_I32)
        text, _, parameters = c.take(c.end - c.pos).decode().partition("\0")
        return Loaded(status, text, pid, parameters, capabilities)
    if kind == KIND_STATS:
        return _decode_stats(c)
    if kind == KIND_STATS_REQUEST:
        return StatsRequest()
    raise ProtocolError(f"unknown message kind {kind}")


class FrameReader:
    """Accumulates bytes and yields complete messages: ``for msg in reader.feed(chunk): ...``.

    An incomplete frame is kept as a list of chunks and joined once, when its last byte has
    arrived, so a large body streamed in many reads is not copied over and over.
    """

    def __init__(self, max_frame: int = 1 << 31) -> None:
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._needed = 0
        self._max_frame = max_frame

    def feed(self, data: bytes) -> list[Message]:
        if self._chunks:
            self._chunks.append(data)
            self._buffered += len(data)
            if self._buffered < self._needed:
                return []
            data = b"".join(self._chunks)
            self._chunks, self._buffered, self._needed = [], 0, 0
        messages: list[Message] = []
        pos, size = 0, len(data)
        while size - pos >= 5:
            length, kind = _FRAME.unpack_from(data, pos)
            if length < 1 or length > self._max_frame:
                raise ProtocolError(f"bad frame length {length}")
            end = pos + 4 + length
            if end > size:
                self._needed = end - pos
                break
            cursor = _Cursor(data, pos + 5, end)
            try:
                messages.append(_decode(kind, cursor))
            except (struct.error, UnicodeDecodeError) as exc:
                raise ProtocolError(f"malformed message: {exc}") from None
            if cursor.pos != end:
                raise ProtocolError("trailing bytes in message")
            pos = end
        if pos < size:
            rest = data[pos:] if pos else data
            self._chunks, self._buffered = [rest], len(rest)
            self._needed = max(self._needed, 5)
        return messages

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame still waiting for the rest."""
        return self._buffered


def read_one(reader: FrameReader, data: bytes) -> Message | None:
    """Feed ``data`` and return the first complete message, if any (used at load time)."""
    messages = reader.feed(data)
    return messages[0] if messages else None

"""Streams and bidirectional sessions tell their model's counters once how they ended."""

from __future__ import annotations

from typing import Any

from sagemaker_inference.server.observability.counters import ModelCounters
from sagemaker_inference.server.workers import protocol as p
from sagemaker_inference.server.workers.streams import Session, Stream


class _Worker:
    label = "worker 0"

    def __init__(self) -> None:
        self.channels: dict[int, Any] = {}
        self.sessions = 0
        self.frames: list[bytes] = []

    def send_frame(self, frame: bytes) -> None:
        self.frames.append(frame)


class _Sink:
    cancelled = False

    def __init__(self) -> None:
        self.ends: list[int] = []

    def start_stream(self, head: Any, stream: Any) -> None:
        pass

    def stream_data(self, data: bytes) -> None:
        pass

    def end_stream(self, status: int = 0, error_type: str = "", message: str = "") -> None:
        self.ends.append(status)


class _Peer:
    def send_message(self, data: bytes, binary: bool) -> None:
        pass

    def close(self, code: int, reason: str = "") -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _stream(counters: ModelCounters, channel: int) -> Stream:
    worker = _Worker()
    stream = Stream(worker, channel, _Sink(), counters)
    worker.channels[channel] = stream
    return stream


def test_each_stream_is_counted_once_by_its_first_ending():
    counters = ModelCounters("m")
    done = _stream(counters, 1)
    done.on_data(b"a", True)
    done.on_data(b"b", True)
    done.on_end(p.CLOSE_NORMAL, "")
    done.cancel()  # after the end: not counted again
    _stream(counters, 2).on_end(p.CLOSE_ERROR, "boom")
    _stream(counters, 3).cancel()
    _stream(counters, 4).on_lost()
    slow = _stream(counters, 5)
    slow.last_activity -= 100
    slow.check_timeout(slow.last_activity + 100, 10.0)  # times out, then cancels itself
    assert counters.streams == {"completed": 1, "failed": 1, "client_gone": 1, "worker_died": 1, "timeout": 1}
    assert counters.stream_chunks == 2


def test_sessions_are_counted_when_opened_and_when_they_end():
    counters = ModelCounters("m")
    sessions = []
    for channel in (1, 2, 3, 4):
        worker = _Worker()
        worker.sessions = 1
        session = Session(worker, channel, _Peer(), counters)
        worker.channels[channel] = session
        sessions.append(session)
    sessions[0].client_closed(p.CLOSE_NORMAL)
    sessions[1].on_end(p.CLOSE_NORMAL, "")
    sessions[2].on_end(p.CLOSE_ERROR, "bad")
    sessions[3].on_lost()
    sessions[0].on_lost()  # already ended
    assert counters.sessions_opened == 4
    assert counters.sessions == {"closed_by_client": 1, "closed_by_model": 1, "failed": 1, "worker_died": 1}


def test_without_counters_nothing_is_counted():
    stream = Stream(_Worker(), 1, _Sink())
    stream.on_end(p.CLOSE_NORMAL, "")
    assert stream.counters is None

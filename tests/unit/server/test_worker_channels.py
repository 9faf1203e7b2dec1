"""Inside a worker: a channel's credit blocks the producer before ``next()``; ending it closes the
generator in the thread that drives it; a session's inbox is credited back as it is taken. The
real ``Channels`` over a real socketpair, the frontend played by the test."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from sagemaker_inference.server.workers import protocol as p
from sagemaker_inference.server.workers.channels import Channel, Channels, Outbox

DEADLINE = 10.0


class Frontend:
    def __init__(self, sock: socket.socket):
        self.sock, self.reader, self.messages = sock, p.FrameReader(), []

    def until(self, predicate, what: str):
        deadline = time.monotonic() + DEADLINE
        self.sock.settimeout(0.05)
        while time.monotonic() < deadline:
            if predicate(self.messages):
                return self.messages
            try:
                self.messages += self.reader.feed(self.sock.recv(65536))
            except socket.timeout:
                pass
        raise TimeoutError(what)


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield Channels(Outbox(a)), Frontend(b)
    a.close()
    b.close()


def data_of(messages):
    return [m.data for m in messages if isinstance(m, p.ChannelData)]


def test_take_credit_blocks_at_zero_until_granted():
    channel = Channel(1, credit=1)
    assert channel.take_credit()
    taken = threading.Event()
    thread = threading.Thread(target=lambda: channel.take_credit() and taken.set())
    thread.start()
    assert not taken.wait(0.1)
    channel.grant(1)
    assert taken.wait(DEADLINE)
    channel.end()
    assert channel.take_credit() is False  # ended: never blocks again
    thread.join(DEADLINE)


def test_stream_stops_at_the_window_and_resumes_on_credit(pair):
    channels, frontend = pair
    produced = []

    def body():
        for i in range(100):
            produced.append(i)
            yield b"%d" % i

    channel_id = channels.new_stream(body(), "req")
    assert channel_id & p.WORKER_CHANNEL_BIT
    channels.start_pending()
    frontend.until(lambda m: len(data_of(m)) == p.STREAM_WINDOW, "the window")
    assert len(produced) == p.STREAM_WINDOW  # next() is not called without credit
    channels.on_message(p.ChannelCredit(channel_id, 100))
    messages = frontend.until(lambda m: any(isinstance(x, p.ChannelEnd) for x in m), "the end")
    assert data_of(messages) == [b"%d" % i for i in range(100)]
    assert [x for x in messages if isinstance(x, p.ChannelEnd)] == [p.ChannelEnd(channel_id, 1000, "")]
    assert len(channels) == 0


def test_ending_a_stream_closes_its_generator(pair):
    channels, frontend = pair
    closed = threading.Event()

    def body():
        try:
            while True:
                yield b"x"
        finally:
            closed.set()

    channel_id = channels.new_stream(body(), "req")
    channels.start_pending()
    frontend.until(lambda m: len(data_of(m)) == p.STREAM_WINDOW, "the window")
    channels.on_message(p.ChannelEnd(channel_id, 1001, "client gone"))
    assert closed.wait(DEADLINE)


def test_a_failing_stream_ends_1011_with_a_reason(pair):
    channels, frontend = pair

    def body():
        yield "ok"
        raise KeyError("missing")

    channel_id = channels.new_stream(body(), "req")
    channels.start_pending()
    messages = frontend.until(lambda m: any(isinstance(x, p.ChannelEnd) for x in m), "the end")
    assert data_of(messages) == [b"ok"]
    end = messages[-1]
    assert end.channel == channel_id and end.code == 1011 and "KeyError" in end.reason


def test_session_messages_are_credited_back_as_taken(pair):
    channels, frontend = pair
    taken = []

    def start(messages):
        for message in messages:
            taken.append(message)
            yield message.upper() if isinstance(message, str) else message

    channels.open_session(p.ChannelOpen(5, p.Request(b"req", [], [], b"")), start)
    channels.on_message(p.ChannelData(5, "hé".encode(), binary=False))
    channels.on_message(p.ChannelData(5, b"\x00", binary=True))
    messages = frontend.until(lambda m: len(data_of(m)) == 2, "two answers")
    assert taken == ["hé", b"\x00"]
    assert [(m.data, m.binary) for m in messages if isinstance(m, p.ChannelData)] == [
        ("HÉ".encode(), False), (b"\x00", True)]
    assert [m for m in messages if isinstance(m, p.ChannelCredit)] == [p.ChannelCredit(5, 1)] * 2
    channels.on_message(p.ChannelEnd(5, 1000))  # the client closed: the messages iterator ends
    frontend.until(lambda m: len(channels) == 0, "the session to end")

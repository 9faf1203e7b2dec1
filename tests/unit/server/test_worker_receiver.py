"""The worker reads into one reused buffer: what a read returned must not change with the next."""

from __future__ import annotations

import socket

from sagemaker_inference.server.workers.process import Receiver


def test_each_read_is_its_own_bytes() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        receiver = Receiver(ours, size=8)
        theirs.sendall(b"first")
        first = receiver.recv()
        theirs.sendall(b"second-and-more")
        second = receiver.recv()
        assert (first, second) == (b"first", b"second-a")  # at most the buffer's size per read
        assert type(first) is bytes and receiver.recv() == b"nd-more"
        theirs.close()
        assert receiver.recv() == b""

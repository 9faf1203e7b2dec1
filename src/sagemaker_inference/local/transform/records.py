"""Input objects as streams of records, and records packed into requests.

Everything here reads lazily with bounded buffers: a record longer than the request limit is an error as soon
as that many bytes were read, never a bigger allocation; so memory stays flat on a multi-GB object.

- ``SplitType=None``: the whole object is one record (it must fit in MaxPayloadInMB).
- ``Line``: one record per line (``\\n`` or ``\\r\\n``); blank lines are not records.
- ``RecordIO``: MXNet RecordIO framing (magic ``0xced7230a``, little-endian length word whose top 3 bits flag
  multi-part records, data padded to 4 bytes). Records keep their framing in the request, as SageMaker sends them.
- ``CompressionType=Gzip``: decompressed while reading.
"""

from __future__ import annotations

import dataclasses
import gzip
import struct
from collections.abc import Iterator
from typing import IO, BinaryIO, Callable, cast

RECORDIO_MAGIC = 0xCED7230A
_LENGTH_MASK = (1 << 29) - 1


class RecordError(ValueError):
    """An input object cannot be split: a record over the limit, or broken framing."""


@dataclasses.dataclass
class Request:
    first: int  # number of its first record in the object, from 1
    records: list[bytes]  # as read (before the input filter): what a join joins with
    payload: bytes

    @property
    def label(self) -> str:
        last = self.first + len(self.records) - 1
        return f"record {self.first}" if last == self.first else f"records {self.first}-{last}"


class InputObject:
    """One input file, opened for reading (decompressing if asked); ``position`` is in the file's own bytes."""

    def __init__(self, path: str, gzipped: bool):
        self._raw: BinaryIO = open(path, "rb")  # closed by close()
        self.stream = cast(IO[bytes], gzip.GzipFile(fileobj=self._raw, mode="rb")) if gzipped else self._raw

    def position(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        self.stream.close()
        self._raw.close()


def whole(stream: IO[bytes], limit: int) -> Iterator[bytes]:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise RecordError(f"record 1 (the whole object) is larger than MaxPayloadInMB ({limit} bytes); "
                          "use --split-type Line or RecordIO, or a larger --max-payload")
    yield data


def lines(stream: IO[bytes], limit: int) -> Iterator[bytes]:
    number = 0
    while True:
        line = stream.readline(limit + 2)
        if not line:
            return
        number += 1
        record = line[:-1] if line.endswith(b"\n") else line
        if record.endswith(b"\r"):
            record = record[:-1]
        if len(record) > limit or (not line.endswith(b"\n") and len(line) == limit + 2):
            raise RecordError(f"line {number} is larger than MaxPayloadInMB ({limit} bytes)")
        if record.strip():
            yield record


def recordio(stream: IO[bytes], limit: int) -> Iterator[bytes]:
    parts: list[bytes] = []
    size = 0
    while True:
        head = stream.read(8)
        if not head:
            if parts:
                raise RecordError("RecordIO input ends inside a multi-part record")
            return
        if len(head) < 8:
            raise RecordError("RecordIO input ends inside a record header")
        magic, word = struct.unpack("<II", head)
        if magic != RECORDIO_MAGIC:
            raise RecordError("RecordIO input has a record without the RecordIO magic number")
        length, flag = word & _LENGTH_MASK, word >> 29
        size += 8 + length
        if size > limit:
            raise RecordError(f"a RecordIO record is larger than MaxPayloadInMB ({limit} bytes)")
        data = stream.read((length + 3) & ~3)
        if len(data) < length:
            raise RecordError("RecordIO input ends inside a record")
        parts.append(head + data)
        if flag in (0, 3):  # a whole record, or the last part of one
            yield b"".join(parts)
            parts, size = [], 0


SPLITTERS: dict[str, Callable[[IO[bytes], int], Iterator[bytes]]] = {"None": whole, "Line": lines,
                                                                    "RecordIO": recordio}


def pack(records: Iterator[bytes], transform: Callable[[bytes], bytes], multi_record: bool, limit: int,
         separator: bytes) -> Iterator[Request]:
    """SingleRecord: one request per record. MultiRecord: as many records as fit in ``limit`` bytes, joined by
    ``separator`` (a newline for Line, nothing for RecordIO). ``transform`` is the input filter."""
    batch: list[bytes] = []
    payloads: list[bytes] = []
    size = 0
    number = 0
    for record in records:
        number += 1
        payload = transform(record)
        if not multi_record:
            yield Request(number, [record], payload)
            continue
        grown = size + len(payload) + (len(separator) if payloads else 0)
        if payloads and grown > limit:
            yield Request(number - len(batch), batch, separator.join(payloads))
            batch, payloads, grown = [], [], len(payload)
        batch.append(record)
        payloads.append(payload)
        size = grown
    if payloads:
        yield Request(number - len(batch) + 1, batch, separator.join(payloads))

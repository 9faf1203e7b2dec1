"""Progress for people: a tqdm bar on a terminal (records, MB/s, ETA), plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    def __init__(self, total_bytes: int, stream: TextIO | None = None, bar: bool | None = None):
        self.stream = stream or sys.stderr
        self.records = 0
        self._bar: Any = None
        self._done = 0
        if bar if bar is not None else self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, file=self.stream,
                             desc="transform", dynamic_ncols=True)

    def advance(self, records: int, input_bytes: int) -> None:
        """``input_bytes``: how far into the input the job has got since the last call."""
        self.records += records
        if self._bar is not None:
            self._bar.update(input_bytes)
            self._bar.set_postfix(records=self.records, refresh=False)

    def line(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

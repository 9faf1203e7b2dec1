"""The JSONPath subset SageMaker batch transform documents for ``InputFilter`` and ``OutputFilter``.

Supported: ``$`` (the root), ``.name`` and ``['name']`` (a child), ``[n]`` (an index, negative from the end),
``[a,b]`` (a union of indexes or quoted names), ``[start:end]`` (a slice, either end optional), ``[*]`` and
``.*`` (all children). A path with a union, slice or wildcard selects a list; otherwise a single value. Anything
else (``..``, filter expressions, functions) is refused when the job starts, as SageMaker refuses it: a general
JSONPath library would accept filters the platform rejects, so this small parser is the emulation.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Union

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INT = re.compile(r"-?[0-9]+")


class JSONPathError(ValueError):
    """A filter outside the supported subset, or one that does not match the record it is applied to."""


@dataclasses.dataclass(frozen=True)
class Child:
    name: str


@dataclasses.dataclass(frozen=True)
class Index:
    index: int


@dataclasses.dataclass(frozen=True)
class Slice:
    start: int | None
    stop: int | None


@dataclasses.dataclass(frozen=True)
class Union_:
    keys: tuple[str | int, ...]


@dataclasses.dataclass(frozen=True)
class Wildcard:
    pass


Step = Union[Child, Index, Slice, Union_, Wildcard]


@dataclasses.dataclass(frozen=True)
class Path:
    text: str
    steps: tuple[Step, ...]

    @property
    def selects_many(self) -> bool:
        return any(isinstance(s, (Slice, Union_, Wildcard)) for s in self.steps)

    def apply(self, value: Any) -> Any:
        matches = [value]
        for step in self.steps:
            matches = [found for current in matches for found in _step(step, current, self.text)]
        if self.selects_many:
            return matches
        if not matches:
            raise JSONPathError(f"filter {self.text!r} matches nothing in the record")
        return matches[0]


def parse(text: str) -> Path:
    if not text.startswith("$"):
        raise JSONPathError(f"filter {text!r} must start with '$'")
    steps: list[Step] = []
    i = 1
    while i < len(text):
        if text.startswith(".*", i):
            steps.append(Wildcard())
            i += 2
        elif text[i] == "." and (m := _NAME.match(text, i + 1)):
            steps.append(Child(m.group()))
            i = m.end()
        elif text[i] == "[":
            end = text.find("]", i)
            if end < 0:
                raise JSONPathError(f"filter {text!r}: '[' without ']'")
            steps.append(_bracket(text[i + 1:end].strip(), text))
            i = end + 1
        else:
            raise JSONPathError(f"filter {text!r}: unsupported at position {i} (SageMaker supports $, .name, "
                                "['name'], [n], [a,b], [start:end] and [*])")
    return Path(text, tuple(steps))


def _bracket(inner: str, text: str) -> Step:
    if inner == "*":
        return Wildcard()
    if ":" in inner:
        start, _, stop = inner.partition(":")
        return Slice(_optional_int(start.strip(), text), _optional_int(stop.strip(), text))
    keys = tuple(_key(part.strip(), text) for part in inner.split(","))
    if len(keys) > 1:
        return Union_(keys)
    return Index(keys[0]) if isinstance(keys[0], int) else Child(keys[0])


def _key(part: str, text: str) -> str | int:
    if len(part) >= 2 and part[0] == part[-1] and part[0] in "'\"":
        return part[1:-1]
    if _INT.fullmatch(part):
        return int(part)
    raise JSONPathError(f"filter {text!r}: {part!r} is neither an index nor a quoted name")


def _optional_int(part: str, text: str) -> int | None:
    if not part:
        return None
    if not _INT.fullmatch(part):
        raise JSONPathError(f"filter {text!r}: slice bound {part!r} is not an integer")
    return int(part)


def _step(step: Step, value: Any, text: str) -> list[Any]:
    if isinstance(step, Child):
        return [value[step.name]] if isinstance(value, dict) and step.name in value else []
    if isinstance(step, Index):
        return [value[step.index]] if isinstance(value, list) and -len(value) <= step.index < len(value) else []
    if isinstance(step, Slice):
        return list(value[step.start:step.stop]) if isinstance(value, list) else []
    if isinstance(step, Wildcard):
        return list(value.values()) if isinstance(value, dict) else list(value) if isinstance(value, list) else []
    found: list[Any] = []
    for key in step.keys:
        found.extend(_step(Index(key) if isinstance(key, int) else Child(key), value, text))
    return found

"""Media types and content negotiation for the request path.

Upstream compares Content-Type and Accept values as raw strings, so
``application/json; charset=utf-8`` is "unsupported" and ``text/csv;q=0.9, */*`` is unusable.
Here a header value is parsed once into a ``MediaType`` (lower-cased ``type/subtype``, its
parameters, ``charset`` and ``q``) and an Accept list is matched against what the server can
produce following RFC 9110 §12.5.1:

* a candidate's quality is the ``q`` of the most specific range matching it
  (``type/subtype`` beats ``type/*`` beats ``*/*``); ``q=0`` excludes it;
* the candidate with the highest quality wins; ties go to the range the client listed first,
  then to the server's order of preference (the default accept first).

Workers see the same few header values over and over, so results are memoised in small dicts
that are simply cleared when full (cheaper than an LRU and good enough for a hot set of a few
strings).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

_CACHE_LIMIT = 512


class MediaType(NamedTuple):
    """A parsed media type or media range, e.g. from ``Text/CSV; charset=UTF-8; q=0.5``."""

    essence: str  # "text/csv": type/subtype, lower case, no parameters
    charset: str | None  # "utf-8", lower case, or None
    q: float  # quality from the q parameter, 1.0 when absent or malformed
    params: tuple[tuple[str, str], ...]  # every parameter, names lower-cased, in order


_parsed: dict[str, MediaType] = {}


def parse(value: str) -> MediaType:
    """Parse one media type (a Content-Type value or one element of an Accept list)."""
    try:
        return _parsed[value]
    except KeyError:
        pass
    media_type = _parse(value)
    if len(_parsed) >= _CACHE_LIMIT:
        _parsed.clear()
    _parsed[value] = media_type
    return media_type


def _parse(value: str) -> MediaType:
    essence, _, rest = value.partition(";")
    params = []
    charset = None
    q = 1.0
    for item in rest.split(";") if rest else ():
        name, _, val = item.partition("=")
        name = name.strip().lower()
        val = val.strip().strip('"')
        if not name:
            continue
        params.append((name, val))
        if name == "charset":
            charset = val.lower() or None
        elif name == "q":
            q = _quality(val)
    return MediaType(essence.strip().lower(), charset, q, tuple(params))


def _quality(value: str) -> float:
    # RFC 9110 allows 0..1 with up to three decimals; a malformed weight is read as 1 rather
    # than failing the request, as most servers do.
    try:
        q = float(value)
    except ValueError:
        return 1.0
    return min(max(q, 0.0), 1.0) if q == q else 1.0


def _specificity(media_range: str, candidate: str) -> int:
    """2 for an exact match, 1 for ``type/*``, 0 for ``*/*``, -1 when the range does not match."""
    if media_range == candidate:
        return 2
    if media_range == "*/*":
        return 0
    if media_range.endswith("/*") and candidate.startswith(media_range[:-1]):
        return 1
    return -1


_negotiated: dict[tuple[tuple[str, ...], tuple[str, ...]], str | None] = {}


def negotiate(ranges: Sequence[str], candidates: Sequence[str]) -> str | None:
    """Pick the best of ``candidates`` (server preference order) for the Accept ``ranges``.

    ``ranges`` are the comma-separated elements of an Accept header. Returns ``None`` when no
    candidate is acceptable. An empty element list or empty strings are treated as ``*/*``.
    """
    key = (tuple(ranges), tuple(candidates))
    try:
        return _negotiated[key]
    except KeyError:
        pass
    choice = _negotiate(key[0], key[1])
    if len(_negotiated) >= _CACHE_LIMIT:
        _negotiated.clear()
    _negotiated[key] = choice
    return choice


def _negotiate(ranges: tuple[str, ...], candidates: tuple[str, ...]) -> str | None:
    parsed = [parse(r) for r in ranges if r.strip()] or [parse("*/*")]
    best: str | None = None
    best_key = (0.0, 0)
    for candidate in candidates:
        specificity, position, q = -1, 0, 0.0
        for pos, media_range in enumerate(parsed):
            spec = _specificity(media_range.essence, candidate)
            if spec > specificity:
                specificity, position, q = spec, pos, media_range.q
        if specificity < 0 or q <= 0.0:
            continue
        key = (q, -position)
        if best is None or key > best_key:
            best, best_key = candidate, key
    return best


def preference(default: str | None, supported: Iterable[str]) -> tuple[str, ...]:
    """Server preference order: the default accept, then JSON, CSV, NPY, then others sorted.

    ``supported`` is often a set, whose iteration order changes between interpreter runs;
    sorting keeps the choice for a wildcard deterministic.
    """
    known = ("application/json", "text/csv", "application/x-npy")
    rest = sorted(s for s in supported if s not in known)
    ordered = [s for s in known if s in supported] + rest
    if default:
        essence = parse(default).essence
        if essence in ordered:
            ordered.remove(essence)
            ordered.insert(0, essence)
    return tuple(ordered)

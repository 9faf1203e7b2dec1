"""Routing as data: (method, path) -> endpoint name and path parameters, or 404 / 405.

Templates are literal segments and ``{name}`` captures. Trailing slashes are ignored, as MMS
does (``/ping/`` is ``/ping``). Exact paths are a dict lookup, which is all ``/invocations`` and
``/ping`` ever need.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, Union


class Route(NamedTuple):
    template: str
    methods: dict[str, str]  # HTTP method -> endpoint name


class Match(NamedTuple):
    endpoint: str
    params: dict[str, str]


class NotFound(NamedTuple):
    pass


class MethodNotAllowed(NamedTuple):
    allow: tuple[str, ...]


Result = Union[Match, NotFound, MethodNotAllowed]

_EMPTY: dict[str, str] = {}


class Router:
    def __init__(self, routes: Iterable[Route]):
        self._exact: dict[str, Route] = {}
        self._templated: list[tuple[list[str], Route]] = []
        for route in routes:
            segments = _segments(route.template)
            if any(s.startswith("{") for s in segments):
                self._templated.append((segments, route))
            else:
                self._exact["/" + "/".join(segments)] = route
        # A request to an exact path (``/invocations``, ``/ping``) is one dict lookup by its raw
        # method and path, returning a shared ``Match`` (its params are the shared empty dict).
        self._matches = {(method.encode("latin-1"), path.encode("latin-1")): Match(endpoint, _EMPTY)
                         for path, route in self._exact.items() for method, endpoint in route.methods.items()}

    def match_raw(self, method: bytes, path: bytes) -> Result:
        """``match`` for the request line's bytes (Latin-1, as HTTP/1.1 has it)."""
        found = self._matches.get((method, path))
        if found is not None:
            return found
        return self.match(method.decode("latin-1"), path.decode("latin-1"))

    def match(self, method: str, path: str) -> Result:
        route = self._exact.get(path)
        params = _EMPTY
        if route is None:
            route, params = self._match_templated(path)
            if route is None:
                return NotFound()
        endpoint = route.methods.get(method)
        if endpoint is None and method == "HEAD":
            endpoint = route.methods.get("GET")
        if endpoint is None:
            return MethodNotAllowed(tuple(route.methods))
        return Match(endpoint, params)

    def _match_templated(self, path: str) -> tuple[Route | None, dict[str, str]]:
        segments = _segments(path)
        if "/" + "/".join(segments) in self._exact:
            return self._exact["/" + "/".join(segments)], _EMPTY
        for template, route in self._templated:
            if len(template) != len(segments):
                continue
            params: dict[str, str] = {}
            for want, got in zip(template, segments):
                if want.startswith("{"):
                    if not got:
                        break
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return route, params
        return None, _EMPTY


def _segments(path: str) -> list[str]:
    parts = path.split("/")
    while parts and parts[-1] == "":
        parts.pop()
    return [p for i, p in enumerate(parts) if i > 0 or p]

"""``GET /metrics`` (Prometheus), ``GET /livez`` and ``GET /readyz`` (Kubernetes probes).

All three are answered in the frontend from its own state, never queued behind inference.
``/livez`` is 200 whenever the event loop runs (during a long model load too: a liveness probe
must not kill a pod that is busy loading); ``/readyz`` answers what ``/ping`` answers.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Callable

from sagemaker_inference.server.http import response as r
from sagemaker_inference.server.routing import Route

if TYPE_CHECKING:
    from sagemaker_inference.server.app import App
    from sagemaker_inference.server.http.protocol import Exchange

ALIVE = {"status": "Alive"}
STATS_WAIT = 0.25  # seconds a scrape waits for the workers' WorkerStats (a busy worker answers later)

_scrapes: set[asyncio.Task[None]] = set()  # strong references: the loop keeps only weak ones

ROUTES = (
    Route("/metrics", {"GET": "metrics"}),
    Route("/livez", {"GET": "livez"}),
    Route("/readyz", {"GET": "readyz"}),
)


def metrics(app: App, exchange: Exchange, params: dict[str, str]) -> None:
    request = exchange.request
    assert request is not None
    if app.counters is None:
        exchange.respond_error(404, "ResourceNotFoundException", "Metrics are disabled (SAGEMAKER_METRICS=false).")
        return
    if app.exposition is None:
        from sagemaker_inference.server.observability.prometheus import Exposition

        app.exposition = Exposition(app)
    waiting = app.registry.request_stats()
    if not waiting:
        _render(app, exchange)
        return
    task = asyncio.get_running_loop().create_task(_render_after(app, exchange, waiting))
    _scrapes.add(task)
    task.add_done_callback(_scrapes.discard)


async def _render_after(app: App, exchange: Exchange, waiting: list[asyncio.Future[None]]) -> None:
    """Fresh worker figures when the workers answer quickly; what we have when one is busy."""
    await asyncio.wait(waiting, timeout=STATS_WAIT)
    _render(app, exchange)


def _render(app: App, exchange: Exchange) -> None:
    request = exchange.request
    assert request is not None and app.exposition is not None
    body, content_type = app.exposition.render(request.header(b"accept"))
    exchange.respond(r.render(200, r.phrase(200), [(b"content-type", content_type.encode())], body,
                              keep_alive=exchange.keep_alive))


def livez(app: App, exchange: Exchange, params: dict[str, str]) -> None:
    exchange.respond_json(200, ALIVE)


def readyz(app: App, exchange: Exchange, params: dict[str, str]) -> None:
    from sagemaker_inference.server.endpoints import ping

    ping(app, exchange, params)


def table() -> dict[str, Callable[[App, Exchange, dict[str, str]], None]]:
    return {"metrics": metrics, "livez": livez, "readyz": readyz}

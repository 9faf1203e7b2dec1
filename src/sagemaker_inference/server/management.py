"""The MMS management API, served in multi-model mode only: register, list, describe, scale and
unregister models at run time (``POST/GET /models``, ``GET/PUT/DELETE /models/{name}``).

Endpoints are called synchronously from the event loop. Anything slow (resolving and measuring a
model directory, unpacking an archive, starting or stopping workers) runs in a task, with the file
system work in a thread, so loading or unloading one model never holds up inference on another or
``/ping``; the task answers the request when it is done.

A load takes its name in ``registry.reservations`` before its first ``await``, so two loads of one
name give one 200 and one 409 even while the first is still unpacking. The reservation also holds
the model's memory estimate until its workers run, so concurrent loads cannot both spend the same
free memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import re
import time
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qsl

from sagemaker_inference.server import archives, memory, model_store
from sagemaker_inference.server.config import DEFAULT_HANDLER
from sagemaker_inference.server.registry import LoadError, Model, ModelState
from sagemaker_inference.server.routing import Route

if TYPE_CHECKING:
    from sagemaker_inference.server.app import App
    from sagemaker_inference.server.http.protocol import Exchange
    from sagemaker_inference.server.workers.pool import ModelSpec

logger = logging.getLogger("sagemaker_inference.server")

Endpoint = Callable[["App", "Exchange", dict[str, str]], None]

MAX_PAGE = 100
# Bounds of every number the API accepts: each value is framed into worker messages, multiplied
# into memory estimates and timers, so anything past these is a 400 naming the field.
MAX_WORKERS = 256  # per model; memory is checked on top (see _reserve_memory)
MAX_BATCH_SIZE = 4096
MAX_BATCH_DELAY_MS = 600_000.0  # 10 minutes
MAX_RESPONSE_TIMEOUT = 7 * 24 * 3600.0  # seconds
_ASCII_INTEGER = re.compile(r"[+-]?[0-9]{1,12}")
RUNTIMES = ("python", "python2", "python3")
WORKERS_SCALED = {"status": "Workers scaled"}
PROCESSING = {"status": "Processing worker updates..."}

_background: set[asyncio.Task[None]] = set()  # strong references: the loop keeps only weak ones


class BadRequest(LoadError):
    """A parameter of a management request is missing or malformed (400)."""

    def __init__(self, message: str):
        super().__init__(400, "BadRequestException", message)


MANAGEMENT_ROUTES = (
    Route("/models", {"GET": "list_models", "POST": "register_model"}),
    Route("/models/{name}", {"GET": "describe_model", "DELETE": "unregister_model", "PUT": "scale_model"}),
)


def table() -> dict[str, Endpoint]:
    return {"list_models": list_models, "register_model": register_model, "describe_model": describe_model,
            "unregister_model": unregister_model, "scale_model": scale_model}


# -- parameters --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Registration:
    """``POST /models`` parameters; None means "the server's default"."""

    url: str
    model_name: str
    handler: str | None = None
    batch_size: int | None = None
    max_batch_delay_ms: float | None = None
    initial_workers: int | None = None
    response_timeout: float | None = None  # seconds
    synchronous: bool = True


def parse_registration(content_type: bytes | None, body: bytes, query: bytes) -> Registration:
    """JSON body when the MIME type is ``application/json`` (query ignored, as MMS), else the query."""
    is_json = (content_type or b"").split(b";")[0].strip().lower() == b"application/json"
    fields = _json_fields(body) if is_json else _query_fields(query)
    url = _text(fields, "url")
    if not url:
        raise BadRequest("Parameter url is required.")
    runtime = _text(fields, "runtime")
    if runtime is not None and runtime not in RUNTIMES:
        raise BadRequest(f"Invalid RuntimeType value: {runtime}")
    # MMS: seconds in the JSON form, minutes in the query form.
    timeout = _number(fields, "response_timeout", 1, MAX_RESPONSE_TIMEOUT if is_json else MAX_RESPONSE_TIMEOUT / 60)
    return Registration(
        url=url,
        model_name=_text(fields, "model_name") or model_store.default_name(url),
        handler=_handler(_text(fields, "handler")),
        batch_size=_integer(fields, "batch_size", 1, MAX_BATCH_SIZE),
        max_batch_delay_ms=_number(fields, "max_batch_delay", 0, MAX_BATCH_DELAY_MS),
        initial_workers=_integer(fields, "initial_workers", 1, MAX_WORKERS),
        response_timeout=None if timeout is None else timeout if is_json else timeout * 60,
        synchronous=_flag(fields, "synchronous", True),
    )


def _json_fields(body: bytes) -> Mapping[str, Any]:
    try:
        fields = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("Invalid JSON body.") from None
    if not isinstance(fields, dict):
        raise BadRequest("Invalid JSON body: expected an object.")
    return fields


def _query_fields(query: bytes) -> Mapping[str, Any]:
    fields: dict[str, str] = {}
    for key, value in parse_qsl(query.decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(key, value)  # MMS reads the first value of a repeated parameter
    return fields


def _text(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"Parameter {name} must be a string.")
    return value


def _number(fields: Mapping[str, Any], name: str, minimum: float, maximum: float) -> float | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON integer of 400 digits
        number = math.nan
    if not minimum <= number <= maximum:  # also refuses nan and inf
        raise BadRequest(f"Parameter {name} must be a number from {minimum:g} to {maximum:g}.")
    return number


def _integer(fields: Mapping[str, Any], name: str, minimum: int, maximum: int) -> int | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    # ASCII digits only: "²".isdigit() is true and int("²") raises.
    if isinstance(value, str) and _ASCII_INTEGER.fullmatch(value.strip()):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise BadRequest(f"Parameter {name} must be an integer from {minimum} to {maximum}.")
    return value


def _flag(fields: Mapping[str, Any], name: str, default: bool) -> bool:
    value = fields.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadRequest(f"Parameter {name} must be true or false.")


_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_FILE_PART = re.compile(r"[A-Za-z0-9_.-]+")


def _handler(handler: str | None) -> str | None:
    """The handler as the worker will use it (stripped), if its form is acceptable.

    A file path must be relative and stay below the model directory (``model_store.confine_handler``
    checks it against the directory, symlinks included, once that is known); a module is a dotted
    name and a function an identifier.
    """
    if handler is None:
        return None
    normalised = handler.strip()
    module_part, _, function = normalised.partition(":")
    if module_part.endswith(".py") or "/" in module_part:
        parts = module_part.split("/")
        ok = not module_part.startswith("/") and all(_FILE_PART.fullmatch(p) and p != ".." for p in parts)
    else:
        ok = bool(_MODULE.fullmatch(module_part))
    if not ok or (function and not function.isidentifier()):
        raise BadRequest(f"Invalid handler: {handler}")
    return normalised


# -- endpoints ---------------------------------------------------------------------------------


def register_model(app: App, exchange: Exchange, params: dict[str, str]) -> None:
    request = exchange.request
    assert request is not None
    registry = app.registry
    try:
        registration = parse_registration(request.header(b"content-type"), request.body, request.query)
        model_store.validate_name(registration.model_name)
    except LoadError as exc:
        exchange.respond_error(exc.status, exc.error_type, exc.message)
        return
    name = registration.model_name
    if app.draining:
        exchange.respond_error(503, "ServiceUnavailableException", "Server is shutting down.")
        return
    if registry.taken(name):
        exchange.respond_error(409, "ConflictStatusException", f"Model {name} is already registered.")
        return
    registry.reservations[name] = 0  # takes the name now, before any await
    if registration.synchronous:
        _spawn(_answer(exchange, _load(app, registration), WORKERS_SCALED))
    else:
        exchange.respond_json(202, PROCESSING)
        _spawn(_answer(None, _load(app, registration), WORKERS_SCALED))


def list_models(app: App, exchange: Exchange, params: dict[str, str]) -> None:
    request = exchange.request
    assert request is not None
    query = _query_fields(request.query)
    limit = _lenient_int(query.get("limit"), MAX_PAGE)
    # MMS: past 100 or negative means 100. 0 too here: MMS answers an empty page whose token
    # never advances, so a client paging through the models loops forever.
    limit = MAX_PAGE if limit > MAX_PAGE or limit <= 0 else limit
    offset = max(0, _lenient_int(query.get("next_page_token"), 0))
    models, more = app.registry.page(offset, limit)
    payload: dict[str, object] = {"nextPageToken": str(offset + limit)} if more else {}
    payload["models"] = [{"modelName": m.name, "modelUrl": m.url} for m in models]
    exchange.respond_json(200, payload)


def describe_model(app: App, exchange: Exchange, params: dict[str, str]) -> None:
    model = app.registry.models.get(params["name"])
    if model is None:
        exchange.respond_error(404, "ModelNotFoundException", f"Model not found: {params['name']}")
        return
    exchange.respond_json(200, model.describe())


def unregister_model(app: App, exchange: Exchange, params: dict[str, str]) -> None:
    name = params["name"]
    model = app.registry.models.get(name)
    if model is None or model.state != ModelState.READY:
        exchange.respond_error(404, "ModelNotFoundException", f"Model not found: {name}")
        return
    _spawn(_answer(exchange, _unload(app, name), {"status": f'Model "{name}" unregistered'}))


def scale_model(app: App, exchange: Exchange, params: dict[str, str]) -> None:
    """``PUT /models/{name}?min_worker=&max_worker=&synchronous=``, as MMS validates and answers it."""
    request = exchange.request
    assert request is not None
    name = params["name"]
    try:
        fields = _query_fields(request.query)
        low = _integer(fields, "min_worker", 0, MAX_WORKERS)
        low = 1 if low is None else low
        high = _integer(fields, "max_worker", 0, MAX_WORKERS)
        high = low if high is None else high
        synchronous = _flag(fields, "synchronous", False)
    except LoadError as exc:
        exchange.respond_error(exc.status, exc.error_type, exc.message)
        return
    if high < low:
        exchange.respond_error(400, "BadRequestException", "max_worker cannot be less than min_worker.")
        return
    model = app.registry.models.get(name)
    if model is None or model.state != ModelState.READY:
        exchange.respond_error(404, "ModelNotFoundException", f"Model not found: {name}")
        return
    # MMS: start workers up to min_worker, stop those above max_worker.
    target = min(max(model.spec.workers, low), high)
    if target == model.spec.workers:
        exchange.respond_json(200 if synchronous else 202, WORKERS_SCALED if synchronous else PROCESSING)
        return
    if target < 1:
        exchange.respond_error(400, "BadRequestException", "min_worker must be at least 1 for a loaded model.")
        return
    extra = (target - model.spec.workers) * model.memory_per_worker
    if extra > 0:
        # Refused at once, even when the caller does not wait, if even eviction could not make room.
        available, evictable = _headroom(app, keep=name)
        if available is not None and extra > available + evictable:
            exchange.respond_error(507, "InternalServerException", _no_room(name, extra, available))
            return
    _spawn(_scale(app, exchange if synchronous else None, model, target))
    if not synchronous:
        exchange.respond_json(202, PROCESSING)


async def _scale(app: App, exchange: Exchange | None, model: Model, workers: int) -> None:
    """Reserve the new workers' memory, scale, then answer as MMS does (only when the caller waits:
    ``synchronous=true``). The model's estimate follows its worker count either way."""
    key = f"{model.name}\0scale"  # NUL: never a model name
    extra = (workers - model.spec.workers) * model.memory_per_worker
    try:
        if extra > 0:
            await _reserve_memory(app, key, extra, keep=model.name)
        ok = await model.group.scale(workers)
    except LoadError as exc:
        logger.warning("model %r not scaled to %d workers: %s", model.name, workers, exc.message)
        if exchange is not None:
            exchange.respond_error(exc.status, exc.error_type, exc.message)
        return
    finally:
        app.registry.reservations.pop(key, None)
        model.memory_estimate = model.memory_per_worker * len(model.group.workers) + model.memory_fixed
    if exchange is None:
        return
    if ok:
        exchange.respond_json(200, WORKERS_SCALED)
    else:
        exchange.respond_error(500, "InternalServerException", "Failed to start workers")


def _lenient_int(value: str | None, default: int) -> int:
    """MMS's query integers: anything unparsable is the default."""
    if value is None or not _ASCII_INTEGER.fullmatch(value.strip()):
        return default
    return int(value)


# -- tasks -------------------------------------------------------------------------------------


def _spawn(coroutine: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _answer(exchange: Exchange | None, work: Coroutine[Any, Any, None], success: object) -> None:
    """Run ``work``; answer ``success`` or its ``LoadError`` (logged when nobody waits for it)."""
    try:
        await work
    except LoadError as exc:
        # Refusals are logged too: a refused url or archive may be someone probing the API.
        logger.log(logging.ERROR if exc.status >= 500 else logging.WARNING, "%s", exc.message)
        if exchange is not None:
            exchange.respond_error(exc.status, exc.error_type, exc.message)
        return
    except Exception:
        logger.exception("management request failed")
        if exchange is not None:
            exchange.respond_error(500, "InternalServerException", "Internal server error.")
        return
    if exchange is not None:
        exchange.respond_json(200, success)


async def _load(app: App, registration: Registration) -> None:
    """Resolve, unpack (archives), check the handler and memory, start workers. The caller has reserved the name."""
    registry, name = app.registry, registration.model_name
    loop = asyncio.get_running_loop()
    started, unpacked, in_ram = time.monotonic(), None, 0
    try:
        source = await loop.run_in_executor(None, model_store.resolve, registration.url, app.config.model_root)
        if source.is_archive:
            extraction = archives.Extraction(source.path, name, _archive_limits(app), app.config.startup_timeout,
                                             fd=source.fd)
            unpacked = extraction.target
            registry.unpacking[name] = extraction  # a shutdown meanwhile cancels it
            try:
                await loop.run_in_executor(None, extraction.run)
            except archives.Refused as exc:
                raise LoadError(exc.status, exc.error_type, exc.message) from None
            finally:
                registry.unpacking.pop(name, None)
            registry.unpacked[name] = unpacked  # from now on a shutdown deletes it with the others
            source = await loop.run_in_executor(None, model_store.measure, unpacked)
            if await loop.run_in_executor(None, memory.in_memory, unpacked):
                in_ram = source.size  # $TMPDIR on tmpfs: the unpacked files themselves take memory
        spec = _spec(app, registration, source.path)
        if registration.handler is not None and registration.handler != app.config.handler:
            allowed = (DEFAULT_HANDLER, *app.config.mme_handler_modules)
            await loop.run_in_executor(None, model_store.confine_handler, registration.handler, spec.model_dir,
                                       allowed)
        await _reserve_memory(app, name, source.footprint(spec.workers) + in_ram)
        deadline = max(spec.response_timeout, app.config.startup_timeout)
        try:
            model = await asyncio.wait_for(registry.load(spec, registration.url), deadline)
        except asyncio.TimeoutError:
            raise LoadError(500, "InternalServerException",
                            f"Failed to start workers: the model did not load within {deadline:g} s") from None
    except BaseException:
        registry.reservations.pop(name, None)
        registry.unpacked.pop(name, None)
        if unpacked is not None:
            await loop.run_in_executor(None, model_store.remove, unpacked)
        raise
    model.memory_estimate = registry.reservations.pop(name, 0)
    model.memory_per_worker, model.memory_fixed = source.per_worker, in_ram
    elapsed = time.monotonic() - started
    # Named as SageMaker's multi-model endpoint metric (microseconds), so logs and CloudWatch agree.
    logger.info("model %r loaded from %s: %d worker(s), handler %s, in %.2f s (ModelLoadingTime %d us)", name,
                registration.url, spec.workers, spec.handler, elapsed, elapsed * 1e6,
                extra={"model": name, "ModelLoadingTime": int(elapsed * 1e6)})


def _archive_limits(app: App) -> archives.Limits:
    cap = app.config.mme_max_unpacked_mb
    return archives.Limits(max_bytes=cap * model_store.MIB if cap else None)


def _spec(app: App, registration: Registration, model_dir: str) -> ModelSpec:
    return app.registry.spec(registration.model_name, model_dir, handler=registration.handler,
                             workers=registration.initial_workers, batch_size=registration.batch_size,
                             max_batch_delay_ms=registration.max_batch_delay_ms,
                             response_timeout=registration.response_timeout)


async def _reserve_memory(app: App, name: str, need: int, keep: str | None = None) -> None:
    """Reserve ``need`` bytes for ``name``, evicting least recently used models (never ``keep``) if
    allowed and if that can make room at all; else 507 (and nothing evicted)."""
    registry = app.registry
    while True:
        available, evictable = _headroom(app, keep)
        if available is None or need <= available:
            registry.reservations[name] = need
            return
        if need > available + evictable:
            raise LoadError(507, "InternalServerException", _no_room(name, need, available))
        victim = registry.least_recently_used(keep)[0]  # evictable > 0: eviction is on and a victim exists
        logger.info("evicting model %r (least recently used) to make room for %r", victim.name, name)
        try:
            await _unload(app, victim.name)
        except LoadError:
            pass  # unloaded meanwhile by someone else: measure again


def _headroom(app: App, keep: str | None = None) -> tuple[int | None, int]:
    """Bytes that may still be committed (None: nothing limits it), and the estimates of the ready
    models LRU eviction could unload for more (0 when eviction is off). Models already unloading
    stay committed and are nobody's victims."""
    registry, config = app.registry, app.config
    budget = config.memory_limit_mb * memory.MIB if config.memory_limit_mb else None
    available = memory.available_memory(budget, registry.memory_committed(), registry.memory_loading())
    victims = registry.least_recently_used(keep) if config.mme_lru_eviction else []
    return available, sum(v.memory_estimate for v in victims)


def _no_room(name: str, need: int, available: int) -> str:
    return (f"Not enough memory to load model {name}: it needs {_mib(need)} MiB, {_mib(available)} MiB are "
            "available.")


async def _unload(app: App, name: str) -> None:
    registry = app.registry
    started = time.monotonic()
    model = registry.models.get(name)
    drain = model.spec.response_timeout if model is not None else 0.0
    await registry.unload(name, drain)
    unpacked = registry.unpacked.pop(name, None)
    if unpacked is not None:
        await asyncio.get_running_loop().run_in_executor(None, model_store.remove, unpacked)
    elapsed = time.monotonic() - started
    logger.info("model %r unloaded in %.2f s (ModelUnloadingTime %d us)", name, elapsed, elapsed * 1e6,
                extra={"model": name, "ModelUnloadingTime": int(elapsed * 1e6)})


def _mib(size: int) -> str:
    return f"{size / memory.MIB:.1f}"

"""The three Runtime API calls, relayed to a container as SageMaker does.

Request mapping (botocore's ``sagemaker-runtime`` model -> the container):
- ``Content-Type`` as is; ``Accept`` from ``Accept`` (InvokeEndpoint) or ``X-Amzn-SageMaker-Accept`` (the
  streaming and async calls); custom attributes, inference id, session id and enable-explanations as their
  ``X-Amzn-SageMaker-*`` headers. Routing headers (target variant, model, container) are consumed here, and
  signing headers (``Authorization``, ``X-Amz-*``) never leave the emulator: SigV4 is accepted unchecked.
- The answer's ``Content-Type`` comes back as ``Content-Type`` (InvokeEndpoint) or
  ``X-Amzn-SageMaker-Content-Type`` (streaming); custom attributes and session headers are relayed;
  ``x-Amzn-Invoked-Production-Variant`` names the variant that served it.
- A container 4xx/5xx becomes ``ModelError`` (424); no connection is ``ServiceUnavailable``; a container that
  takes longer than the invocation timeout is ``ModelError`` with original status 0, as on the platform.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from typing import TYPE_CHECKING
from urllib.parse import unquote

from sagemaker_inference.local import eventstream
from sagemaker_inference.local.runtime import errors
from sagemaker_inference.local.runtime.config import MAX_BODY, Endpoint, RuntimeConfig, Variant
from sagemaker_inference.local.runtime.http import Responder

if TYPE_CHECKING:
    import httpx

    from sagemaker_inference.local.runtime.asyncjobs import AsyncJobs
    from sagemaker_inference.local.runtime.multimodel import MultiModel
    from sagemaker_inference.server.http.parser import HTTPRequest

logger = logging.getLogger("sagemaker_inference.local.runtime")

# Sent with the platform's spelling: handlers look headers up by name, and some do so case-sensitively.
FORWARDED = ("X-Amzn-SageMaker-Custom-Attributes", "X-Amzn-SageMaker-Inference-Id", "X-Amzn-SageMaker-Session-Id",
             "X-Amzn-SageMaker-Enable-Explanations")
RELAYED = ("x-amzn-sagemaker-custom-attributes", "x-amzn-sagemaker-new-session-id",
           "x-amzn-sagemaker-closed-session-id")
OPERATIONS = {"invocations": "InvokeEndpoint", "invocations-response-stream": "InvokeEndpointWithResponseStream",
              "async-invocations": "InvokeEndpointAsync"}
TIMED_OUT = ("Your invocation timed out while waiting for a response from container {container}. Review the "
             "latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again.")


def route(method: bytes, path: bytes) -> tuple[str, str] | None:
    """``POST /endpoints/{EndpointName}/{operation}`` -> (operation, endpoint name); None if it is not one."""
    parts = path.decode("latin-1").split("/")
    if method != b"POST" or len(parts) != 4 or parts[0] or parts[1] != "endpoints" or parts[3] not in OPERATIONS:
        return None
    return OPERATIONS[parts[3]], unquote(parts[2])


def container_headers(request: HTTPRequest, accept_header: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    content_type = request.header(b"content-type")
    accept = request.header(accept_header)
    if content_type is not None:
        headers["Content-Type"] = content_type.decode("latin-1")
    if accept is not None:
        headers["Accept"] = accept.decode("latin-1")
    for name in FORWARDED:
        value = request.header(name.lower().encode())
        if value is not None:
            headers[name] = value.decode("latin-1")
    return headers


def relayed_headers(response: httpx.Response) -> list[tuple[str, str]]:
    return [(name, response.headers[name]) for name in RELAYED if name in response.headers]


class Runtime:
    """The emulator's state: endpoints, one HTTP client to the containers, the model cache, the async queue."""

    def __init__(self, config: RuntimeConfig, client: httpx.AsyncClient, models: MultiModel | None,
                 jobs: AsyncJobs | None):
        self.config, self.client, self.models, self.jobs = config, client, models, jobs
        self._random = random.Random()

    async def handle(self, request: HTTPRequest, responder: Responder) -> None:
        request_id = str(uuid.uuid4())
        try:
            await self._dispatch(request, responder, request_id)
        except errors.APIError as exc:
            if responder.started:  # a stream already began: nothing more can be said on it
                responder.keep_alive = False
                return
            logger.info("%s %s -> %s: %s", request.method.decode(), request.path.decode("latin-1"), exc.code,
                        exc.message)
            await responder.send(exc.status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", exc.code),
                                              ("x-amzn-RequestId", request_id)], exc.body())

    async def _dispatch(self, request: HTTPRequest, responder: Responder, request_id: str) -> None:
        if request.path == b"/ping" and request.method == b"GET":
            await responder.send(200, [("Content-Type", "application/json")], b'{"status": "Healthy"}')
            return
        found = route(request.method, request.path)
        if found is None:
            raise errors.ValidationError(f"Unknown operation: {request.method.decode()} "
                                         f"{request.path.decode('latin-1')}")
        operation, name = found
        endpoint = self.config.endpoints.get(name)
        if endpoint is None:
            raise errors.ValidationError(f"Endpoint {name} of account 000000000000 not found.")
        if operation == "InvokeEndpointAsync":
            await self._invoke_async(endpoint, request, responder, request_id)
            return
        if len(request.body) > MAX_BODY:
            raise errors.ValidationError("1 validation error detected: Value at 'body' failed to satisfy "
                                         f"constraint: Member must have length less than or equal to {MAX_BODY}")
        variant = self.choose_variant(endpoint, request.header(b"x-amzn-sagemaker-target-variant"))
        if operation == "InvokeEndpoint":
            await self._invoke(variant, request, responder, request_id)
        else:
            await self._invoke_stream(variant, request, responder, request_id)

    def choose_variant(self, endpoint: Endpoint, target: bytes | None) -> Variant:
        if target is not None:
            variant = endpoint.variant(target.decode("latin-1"))
            if variant is None:
                raise errors.ValidationError(f"Variant {target.decode('latin-1')} not found for endpoint "
                                             f"{endpoint.name}.")
            return variant
        return self._random.choices(endpoint.variants, weights=[v.weight for v in endpoint.variants])[0]

    # -- InvokeEndpoint ---------------------------------------------------------------------------

    async def _invoke(self, variant: Variant, request: HTTPRequest, responder: Responder, request_id: str) -> None:
        target_model = request.header(b"x-amzn-sagemaker-target-model")
        headers = container_headers(request, b"accept")
        if target_model is None:
            response = await self.post(variant, "/invocations", request.body, headers, self.config.invocation_timeout)
        else:
            response = await self._invoke_model(variant, target_model.decode("latin-1"), request.body, headers)
        if response.status_code >= 400:
            raise errors.ModelError(response.status_code, errors.original_message(response.content),
                                    log_location=_log(variant))
        answer: list[tuple[str, str]] = [
            ("Content-Type", response.headers.get("content-type", "application/octet-stream")),
            ("x-Amzn-Invoked-Production-Variant", variant.name), ("x-amzn-RequestId", request_id),
            *relayed_headers(response)]
        await responder.send(200, answer, response.content)

    async def _invoke_model(self, variant: Variant, target: str, body: bytes, headers: dict[str, str]
                            ) -> httpx.Response:
        if self.models is None:
            raise errors.ValidationError("TargetModel is given but this endpoint is not a multi-model endpoint "
                                         "(start the emulator with --model-data and --model-root).")
        for attempt in range(2):
            path = await self.models.invoke_path(variant, target)
            response = await self.post(variant, path, body, headers, self.config.invocation_timeout)
            if response.status_code != 404 or attempt:
                return response
            self.models.forget(variant, target)  # the container unloaded it behind our back: load it again
        raise AssertionError("unreachable")

    async def post(self, variant: Variant, path: str, body: bytes, headers: dict[str, str],
                   timeout: float) -> httpx.Response:
        import httpx

        try:
            return await self.client.post(variant.url + path, content=body, headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            raise errors.ModelError(0, TIMED_OUT.format(container="primary"), log_location=_log(variant)) from None
        except httpx.TransportError as exc:
            raise _unreachable(variant, exc) from None

    # -- InvokeEndpointWithResponseStream ---------------------------------------------------------

    async def _invoke_stream(self, variant: Variant, request: HTTPRequest, responder: Responder,
                             request_id: str) -> None:
        import httpx

        headers = container_headers(request, b"x-amzn-sagemaker-accept")
        call = self.client.build_request("POST", variant.url + "/invocations", content=request.body, headers=headers,
                                         timeout=self.config.stream_timeout)
        try:
            response = await self.client.send(call, stream=True)
        except httpx.TimeoutException:
            raise errors.ModelError(0, TIMED_OUT.format(container="primary"), log_location=_log(variant)) from None
        except httpx.TransportError as exc:
            raise _unreachable(variant, exc) from None
        try:
            if response.status_code >= 400:
                body = await _read_bounded(response, errors.MAX_ORIGINAL_MESSAGE)
                raise errors.ModelError(response.status_code, errors.original_message(body), log_location=_log(variant))
            await responder.start(200, [
                ("Content-Type", "application/vnd.amazon.eventstream"),
                ("X-Amzn-SageMaker-Content-Type", response.headers.get("content-type", "application/octet-stream")),
                ("x-Amzn-Invoked-Production-Variant", variant.name), ("x-amzn-RequestId", request_id),
                *relayed_headers(response)])
            await self._relay(response, responder)
        finally:
            await response.aclose()

    async def _relay(self, response: httpx.Response, responder: Responder) -> None:
        """Each chunk as it arrives -> ``PayloadPart`` events; an abnormal end -> a ``ModelStreamError`` event."""
        import httpx

        deadline = time.monotonic() + self.config.stream_timeout
        failure: tuple[str, str] | None = None
        try:
            async for chunk in response.aiter_raw():
                for message in eventstream.payload_parts(chunk):
                    await responder.write(message)
                if time.monotonic() > deadline:
                    failure = ("ModelInvocationTimeExceeded", "The model did not finish its response in time.")
                    break
        except httpx.TimeoutException:
            failure = ("ModelInvocationTimeExceeded", "The model failed to finish sending the response within "
                                                      "the timeout period.")
        except httpx.TransportError as exc:
            failure = ("StreamBroken", f"The connection to the model was closed before the response ended ({exc}).")
        if failure is not None:
            logger.info("response stream ended abnormally: %s", failure[0])
            await responder.write(eventstream.exception("ModelStreamError",
                                                        {"Message": failure[1], "ErrorCode": failure[0]}))
        await responder.end()

    # -- InvokeEndpointAsync ----------------------------------------------------------------------

    async def _invoke_async(self, endpoint: Endpoint, request: HTTPRequest, responder: Responder,
                            request_id: str) -> None:
        if self.jobs is None:
            raise errors.ValidationError(f"Endpoint {endpoint.name} is not configured for asynchronous inference "
                                         "(start the emulator with --async-output DIR).")
        variant = self.choose_variant(endpoint, None)
        job = self.jobs.submit(variant, request, container_headers(request, b"x-amzn-sagemaker-accept"))
        await responder.send(202, [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id),
                                   ("X-Amzn-SageMaker-OutputLocation", job.output.as_uri()),
                                   ("X-Amzn-SageMaker-FailureLocation", job.failure.as_uri())],
                             json.dumps({"InferenceId": job.inference_id}).encode())


def _log(variant: Variant) -> str:
    return f"the log of the container at {variant.url}"


def _unreachable(variant: Variant, exc: Exception) -> errors.APIError:
    logger.warning("container %s (variant %s) is unreachable: %s", variant.url, variant.name, exc)
    return errors.ServiceUnavailable(f"The container of variant {variant.name} is not reachable at {variant.url}.")


async def _read_bounded(response: httpx.Response, limit: int) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body)


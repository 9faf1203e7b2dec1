"""Router: full match, partial match (405 + allowed methods), no match (404)."""

from __future__ import annotations

import pytest

from sagemaker_inference.server.endpoints import INFERENCE_ROUTES
from sagemaker_inference.server.management import MANAGEMENT_ROUTES
from sagemaker_inference.server.routing import Match, MethodNotAllowed, NotFound, Route, Router

ROUTER = Router([
    Route("/ping", {"GET": "ping", "POST": "ping"}),
    Route("/invocations", {"POST": "invocations"}),
    Route("/models", {"GET": "list_models", "POST": "register_model"}),
    Route("/models/{name}", {"GET": "describe_model", "DELETE": "unregister_model"}),
    Route("/models/{name}/invoke", {"POST": "invoke"}),
])


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/ping", Match("ping", {})),
        ("POST", "/ping", Match("ping", {})),
        ("POST", "/invocations", Match("invocations", {})),
        ("GET", "/models", Match("list_models", {})),
        ("GET", "/models/resnet", Match("describe_model", {"name": "resnet"})),
        ("DELETE", "/models/resnet-50.v2", Match("unregister_model", {"name": "resnet-50.v2"})),
        ("POST", "/models/m1/invoke", Match("invoke", {"name": "m1"})),
        ("POST", "/models/%2Fetc/invoke", Match("invoke", {"name": "%2Fetc"})),  # decoding is the caller's job
    ],
)
def test_match(method, path, expected):
    assert ROUTER.match(method, path) == expected
    assert ROUTER.match_raw(method.encode(), path.encode()) == expected  # the request line's bytes


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/ping/", Match("ping", {})),
        ("GET", "/ping//", Match("ping", {})),
        ("POST", "/invocations/", Match("invocations", {})),
        ("GET", "/models/m/", Match("describe_model", {"name": "m"})),
        ("POST", "/models/m/invoke/", Match("invoke", {"name": "m"})),
    ],
)
def test_trailing_slashes_are_ignored(method, path, expected):
    assert ROUTER.match(method, path) == expected
    assert ROUTER.match_raw(method.encode(), path.encode()) == expected


@pytest.mark.parametrize("path", ["/", "", "/pingx", "/ping/x", "/invocation", "/models/m/x", "/models/m/invoke/x",
                                  "/models//invoke", "/api/ping", "/PING"])
def test_not_found(path):
    assert ROUTER.match("GET", path) == NotFound()


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/invocations", ("POST",)),
        ("PUT", "/invocations", ("POST",)),
        ("DELETE", "/ping", ("GET", "POST")),
        ("PATCH", "/models", ("GET", "POST")),
        ("POST", "/models/m", ("GET", "DELETE")),
        ("GET", "/models/m/invoke", ("POST",)),
        ("GET", "/invocations/", ("POST",)),
    ],
)
def test_method_not_allowed_lists_the_allowed_methods(method, path, allow):
    assert ROUTER.match(method, path) == MethodNotAllowed(allow)


def test_head_is_served_by_get():
    assert ROUTER.match("HEAD", "/ping") == Match("ping", {})
    assert ROUTER.match("HEAD", "/invocations") == MethodNotAllowed(("POST",))
    assert ROUTER.match_raw(b"HEAD", b"/ping") == Match("ping", {})
    assert ROUTER.match_raw(b"PUT", b"/invocations") == MethodNotAllowed(("POST",))
    assert ROUTER.match_raw(b"GET", b"/nowhere") == NotFound()


def test_exact_routes_win_over_templates():
    router = Router([Route("/models/{name}", {"GET": "describe"}), Route("/models/special", {"GET": "special"})])
    assert router.match("GET", "/models/special") == Match("special", {})
    assert router.match("GET", "/models/other") == Match("describe", {"name": "other"})


def test_server_route_tables():
    single = Router(INFERENCE_ROUTES)
    assert single.match("GET", "/ping") == Match("ping", {})
    assert single.match("POST", "/invocations") == Match("invocations", {})
    assert single.match("GET", "/execution-parameters") == Match("execution_parameters", {})
    assert single.match("POST", "/models/m/invoke") == Match("invoke", {"name": "m"})
    assert single.match("GET", "/models") == NotFound()  # improvements.md 4.3: no management API in single-model
    multi = Router(INFERENCE_ROUTES + MANAGEMENT_ROUTES)
    assert multi.match("GET", "/models") == Match("list_models", {})
    assert multi.match("PUT", "/models/m") == Match("scale_model", {"name": "m"})

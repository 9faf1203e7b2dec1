from __future__ import annotations

import pytest

from sagemaker_inference.local.runtime.config import RuntimeConfigError, Variant, endpoints_from_specs, parse_endpoint
from sagemaker_inference.local.runtime.operations import route


@pytest.mark.parametrize("spec, expected", [
    ("ep=http://127.0.0.1:8080", ("ep", Variant("AllTraffic", "http://127.0.0.1:8080", 1.0))),
    ("ep=http://127.0.0.1:8080/", ("ep", Variant("AllTraffic", "http://127.0.0.1:8080", 1.0))),
    ("ep/blue=http://127.0.0.1:8080:3", ("ep", Variant("blue", "http://127.0.0.1:8080", 3.0))),
    ("ep/green=http://localhost:81:0.5", ("ep", Variant("green", "http://localhost:81", 0.5))),
    ("ep=http://localhost:9", ("ep", Variant("AllTraffic", "http://localhost:9", 1.0))),  # a port, not a weight
])
def test_parse_endpoint(spec, expected):
    assert parse_endpoint(spec) == expected


@pytest.mark.parametrize("spec", ["ep", "ep=", "=http://h:1", "bad_name=http://h:1", "ep=ftp://h:1", "ep/=http://h:1",
                                  "-ep=http://h:1"])
def test_bad_endpoint_specs_name_the_flag(spec):
    with pytest.raises(RuntimeConfigError, match="--endpoint"):
        parse_endpoint(spec)


def test_variants_group_by_endpoint_name():
    endpoints = endpoints_from_specs(["a/x=http://h:1:2", "a/y=http://h:2", "b=http://h:3"])
    assert [v.name for v in endpoints["a"].variants] == ["x", "y"]
    assert endpoints["b"].variant("AllTraffic") is not None
    with pytest.raises(RuntimeConfigError, match="twice"):
        endpoints_from_specs(["a=http://h:1", "a=http://h:2"])
    with pytest.raises(RuntimeConfigError, match="add up to 0"):
        endpoints_from_specs(["a=http://h:1:0"])
    with pytest.raises(RuntimeConfigError):
        endpoints_from_specs([])


@pytest.mark.parametrize("method, path, expected", [
    (b"POST", b"/endpoints/ep/invocations", ("InvokeEndpoint", "ep")),
    (b"POST", b"/endpoints/ep/invocations-response-stream", ("InvokeEndpointWithResponseStream", "ep")),
    (b"POST", b"/endpoints/my%2Dep/async-invocations", ("InvokeEndpointAsync", "my-ep")),
    (b"GET", b"/endpoints/ep/invocations", None),
    (b"POST", b"/endpoints/ep/other", None),
    (b"POST", b"/endpoints/ep/invocations/x", None),
    (b"POST", b"/invocations", None),
])
def test_route(method, path, expected):
    assert route(method, path) == expected

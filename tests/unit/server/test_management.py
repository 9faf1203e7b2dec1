"""management.parse_registration: the two forms of ``POST /models`` (JSON body, query string)."""

from __future__ import annotations

import pytest

from sagemaker_inference.server.management import BadRequest, Registration, parse_registration

JSON = b"application/json"


def test_json_form_with_every_field():
    body = (b'{"url": "/opt/ml/models/abc/model", "model_name": "abc", "handler": "svc:handle", "batch_size": 4,'
            b' "max_batch_delay": 50, "initial_workers": 2, "response_timeout": 30, "synchronous": false,'
            b' "runtime": "python3", "preload_model": "true", "unknown": 1}')
    assert parse_registration(JSON, body, b"url=ignored") == Registration(
        url="/opt/ml/models/abc/model", model_name="abc", handler="svc:handle", batch_size=4,
        max_batch_delay_ms=50.0, initial_workers=2, response_timeout=30.0, synchronous=False)


def test_query_form_response_timeout_is_in_minutes():
    registration = parse_registration(None, b"", b"url=m&response_timeout=2&batch_size=3&synchronous=TRUE")
    assert (registration.response_timeout, registration.batch_size, registration.synchronous) == (120.0, 3, True)


def test_defaults_and_derived_name():
    registration = parse_registration(b"application/json; charset=utf-8", b'{"url": "/opt/ml/models/x/resnet.tar.gz"}',
                                      b"")
    assert registration == Registration(url="/opt/ml/models/x/resnet.tar.gz", model_name="resnet")


def test_first_value_of_a_repeated_query_parameter_wins():
    assert parse_registration(None, b"", b"url=a&url=b").url == "a"


def test_numeric_strings_are_accepted_in_json_as_gson_does():
    assert parse_registration(JSON, b'{"url": "m", "batch_size": "8"}', b"").batch_size == 8


@pytest.mark.parametrize("body, message", [
    (b'{"url": ""}', "Parameter url is required."),
    (b'{"url": "m", "batch_size": true}', "Parameter batch_size must be an integer from 1 to 4096."),
    (b'{"url": "m", "batch_size": 1.5}', "Parameter batch_size must be an integer from 1 to 4096."),
    (b'{"url": "m", "max_batch_delay": -1}', "Parameter max_batch_delay must be a number from 0 to 600000."),
    (b'{"url": "m", "response_timeout": "Infinity"}', "Parameter response_timeout must be a number from 1 to 604800."),
    (b'{"url": "m", "model_name": 7}', "Parameter model_name must be a string."),
    (b'{"url": "m", "handler": "a/../../b.py"}', "Invalid handler: a/../../b.py"),
    (b"\xff", "Invalid JSON body."),
    # Bounds: each of these used to reach the worker protocol or a timer and fail there (500 or a hang).
    (b'{"url": "m", "batch_size": 2147483648}', "Parameter batch_size must be an integer from 1 to 4096."),
    ('{"url": "m", "initial_workers": "\u00b2"}'.encode(),
     "Parameter initial_workers must be an integer from 1 to 256."),
    (b'{"url": "m", "initial_workers": 100000}', "Parameter initial_workers must be an integer from 1 to 256."),
    (b'{"url": "m", "max_batch_delay": 1' + b"0" * 400 + b'}',
     "Parameter max_batch_delay must be a number from 0 to 600000."),
    (b'{"url": "m", "max_batch_delay": "NaN"}', "Parameter max_batch_delay must be a number from 0 to 600000."),
    (b'{"url": "m", "response_timeout": 1e400}', "Parameter response_timeout must be a number from 1 to 604800."),
    (b'{"url": "m", "handler": " /abs/outside/evil.py:handle"}', "Invalid handler:  /abs/outside/evil.py:handle"),
    (b'{"url": "m", "handler": "\\t/abs/evil.py"}', "Invalid handler: \t/abs/evil.py"),
    (b'{"url": "m", "handler": "svc:not a name"}', "Invalid handler: svc:not a name"),
    (b'{"url": "m", "handler": "os;rm"}', "Invalid handler: os;rm"),
])
def test_malformed_fields_are_400(body, message):
    with pytest.raises(BadRequest) as caught:
        parse_registration(JSON, body, b"")
    assert (caught.value.status, caught.value.message) == (400, message)


def test_handler_is_passed_on_as_the_worker_will_read_it():
    assert parse_registration(JSON, b'{"url": "m", "handler": "  lib/svc.py:handle \\n"}', b"").handler == \
        "lib/svc.py:handle"


def test_query_form_bounds_response_timeout_in_minutes():
    assert parse_registration(None, b"", b"url=m&response_timeout=10080").response_timeout == 604800
    with pytest.raises(BadRequest):
        parse_registration(None, b"", b"url=m&response_timeout=10081")

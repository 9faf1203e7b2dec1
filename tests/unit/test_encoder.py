from __future__ import annotations

import io
import json

import numpy as np
import pytest

from sagemaker_inference import content_types, encoder, errors


@pytest.mark.parametrize(
    "target",
    [
        [42, 6, 9],
        np.array([42, 6, 9]),
        np.array([[1.5, 2.0], [3.0, 4.25]]),
        np.float32(0.1),
        {42: np.array([1, 2])},
        [np.int64(1), np.float64(2.5)],
        np.array([1.5, 2.0], dtype=np.float32),
    ],
)
def test_json_output_is_json_dumps_of_tolist(target):
    expected = json.dumps(target, default=lambda o: o.tolist())
    assert encoder.encode(target, content_types.JSON) == expected


def test_json_of_unserializable_object_raises_type_error():
    with pytest.raises(TypeError):
        encoder.encode(object(), content_types.JSON)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ([[1, 2, 3], [4, 5, 6]], "1,2,3\n4,5,6\n"),
        (np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), "1.0,2.0,3.0\n4.0,5.0,6.0\n"),
        ([42, 6, 9], "42\n6\n9\n"),
        (np.array([1.5, 2], dtype=np.float32), "1.5\n2.0\n"),
    ],
)
def test_csv_output(target, expected):
    assert encoder.encode(target, content_types.CSV) == expected


def test_npy_output_round_trips():
    array = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(np.load(io.BytesIO(encoder.encode(array, content_types.NPY))), array)


def test_supported_content_types():
    assert encoder.SUPPORTED_CONTENT_TYPES == {content_types.JSON, content_types.CSV, content_types.NPY}


def test_content_type_parameters_and_case_are_understood():
    assert encoder.encode([1], "Application/JSON; charset=utf-8") == "[1]"


@pytest.mark.parametrize("content_type", ["text/html", None, "", content_types.NPZ])
def test_unsupported_type_is_406_and_an_unsupported_format_error(content_type):
    with pytest.raises(errors.UnsupportedFormatError) as excinfo:
        encoder.encode([1], content_type)
    assert isinstance(excinfo.value, errors.NotAcceptableError)
    assert excinfo.value.status_code == 406


def test_encoder_map_is_patchable(monkeypatch):
    monkeypatch.setitem(encoder._encoder_map, "text/plain", str)
    assert encoder.encode([1], "text/plain") == "[1]"

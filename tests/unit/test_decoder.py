from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import scipy.sparse

from sagemaker_inference import content_types, decoder, errors


def npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[42, 6, 9]", np.array([42, 6, 9])),
        ("[[1, 2], [3, 4.5]]", np.array([[1, 2], [3, 4.5]])),
        ("5", np.array(5)),
        ('["a", "b"]', np.array(["a", "b"])),
        (b"[true, false]", np.array([True, False])),
        ("1e400", np.array(np.inf)),
        ("[1e400, -1e400]", np.array([np.inf, -np.inf])),
    ],
)
def test_json_to_numpy(body, expected):
    result = decoder.decode(body, content_types.JSON)
    np.testing.assert_array_equal(result, expected)
    assert result.dtype == expected.dtype


@pytest.mark.parametrize(
    "body",
    [
        "",
        "{not json",
        '{"instances": [1, 2]}',  # upstream: a 0-d object array
        "[[1, 2], [3]]",  # ragged
        "[1, null]",
        f"[{2**70}]",  # beyond int64: upstream gives an object array
        str(2**64),
        '[{"a": 1}]',
    ],
)
def test_json_that_is_not_an_array_is_a_decode_error(body):
    with pytest.raises(errors.DecodeError) as excinfo:
        decoder.decode(body, content_types.JSON)
    assert excinfo.value.status_code == 400
    assert isinstance(excinfo.value, ValueError)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("42\n6\n9\n", np.array([42, 6, 9])),
        ("1,2,3\n", np.array([1, 2, 3])),
        ("1,2,3\n4,5,6\n", np.array([[1, 2, 3], [4, 5, 6]])),
        ("5\n", np.array(5)),
        (" 1 , 2\r\n\n3,4", np.array([[1, 2], [3, 4]])),
        ("1,2.5\n3,4\n", np.array([[1.0, 2.5], [3.0, 4.0]])),  # upstream: structured array
        ("1,,3\n", np.array([1.0, np.nan, 3.0])),
        ("nan,inf,1e400\n", np.array([np.nan, np.inf, np.inf])),
    ],
)
def test_csv_to_numpy(body, expected):
    result = decoder.decode(body, content_types.CSV)
    np.testing.assert_array_equal(result, expected)
    assert result.dtype == expected.dtype
    assert result.dtype.names is None


@pytest.mark.parametrize("body", ["", "\n\n", "1,2\n3\n", "1,a,2.5\n", "1,2\n3,4,5\n", f"{2**64}\n"])
def test_bad_csv_is_a_decode_error_and_a_value_error(body):
    with pytest.raises(ValueError) as excinfo:
        decoder.decode(body, content_types.CSV)
    assert isinstance(excinfo.value, errors.DecodeError)


def test_csv_dtype_argument_upcasts():
    assert decoder._csv_to_numpy("1,2\n", dtype="float32").dtype == np.float32


def test_npy_to_numpy():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    result = decoder.decode(npy(array), content_types.NPY)
    np.testing.assert_array_equal(result, array)
    assert result.dtype == np.float32


@pytest.mark.parametrize(
    "body",
    [
        b"",
        npy(np.arange(10))[:-8],  # truncated
        b"\x93NUMPY\x01\x00garbage",
        npy(np.array([{"a": 1}], dtype=object), allow_pickle=True),  # a pickled object array
        b"PK\x03\x04 not npy but zip",
    ],
)
def test_bad_or_pickled_npy_is_a_decode_error(body):
    with pytest.raises(errors.DecodeError):
        decoder.decode(body, content_types.NPY)


def test_npy_never_unpickles(monkeypatch):
    import pickle

    def fail(*args, **kwargs):
        raise AssertionError("unpickled")

    monkeypatch.setattr(pickle, "load", fail)
    monkeypatch.setattr(pickle, "loads", fail)
    with pytest.raises(errors.DecodeError, match="allow_pickle"):
        decoder._npy_to_numpy(npy(np.array([object()], dtype=object), allow_pickle=True))


def test_npz_to_sparse():
    matrix = scipy.sparse.csr_matrix(np.array([[0, 1], [2, 0]]))
    buffer = io.BytesIO()
    scipy.sparse.save_npz(buffer, matrix)
    result = decoder.decode(buffer.getvalue(), content_types.NPZ)
    assert scipy.sparse.issparse(result)
    np.testing.assert_array_equal(result.toarray(), matrix.toarray())


@pytest.mark.parametrize("body", [b"", b"garbage", npy(np.arange(3))])
def test_bad_npz_is_a_decode_error(body):
    with pytest.raises(errors.DecodeError):
        decoder.decode(body, content_types.NPZ)


def test_plain_savez_archive_is_a_decode_error():
    buffer = io.BytesIO()
    np.savez(buffer, a=np.arange(3))
    with pytest.raises(errors.DecodeError):
        decoder.decode(buffer.getvalue(), content_types.NPZ)


def test_npz_with_pickled_member_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("indices", "indptr", "format", "shape", "data"):
            archive.writestr(name + ".npy", npy(np.array([object()], dtype=object), allow_pickle=True))
    with pytest.raises(errors.DecodeError):
        decoder.decode(buffer.getvalue(), content_types.NPZ)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json; charset=utf-8", b"[1, 2]"),
        ("APPLICATION/JSON", "[1, 2]"),
        ("application/json;charset=UTF-16", "[1, 2]".encode("utf-16")),
        ("text/csv; charset=latin-1", b"1,2\n"),
    ],
)
def test_content_type_parameters_and_case_are_understood(content_type, body):
    np.testing.assert_array_equal(decoder.decode(body, content_type), np.array([1, 2]))


@pytest.mark.parametrize("content_type", ["text/plain", "application/jsonl", None, "", "application/x-npy-ish"])
def test_unsupported_content_type_is_415_and_an_unsupported_format_error(content_type):
    with pytest.raises(errors.UnsupportedFormatError) as excinfo:
        decoder.decode(b"1", content_type)
    assert isinstance(excinfo.value, errors.UnsupportedMediaTypeError)
    assert excinfo.value.status_code == 415


def test_undecodable_bytes_are_400_and_unknown_charset_415():
    with pytest.raises(errors.DecodeError):
        decoder.decode(b"[\xff]", content_types.JSON)
    with pytest.raises(errors.UnsupportedMediaTypeError):
        decoder.decode(b"[1]", "application/json; charset=klingon")


def test_exceptions_inside_a_decoder_are_wrapped_with_the_cause(monkeypatch):
    def broken(obj):
        raise KeyError("inner")  # upstream reported this as an unsupported content type

    monkeypatch.setitem(decoder._decoder_map, content_types.JSON, broken)
    with pytest.raises(errors.DecodeError) as excinfo:
        decoder.decode("[1]", content_types.JSON)
    assert isinstance(excinfo.value.__cause__, KeyError)


def test_decoder_map_can_be_extended_with_exact_keys(monkeypatch):
    monkeypatch.setitem(decoder._decoder_map, "application/x-custom; v=2", json.loads)
    assert decoder.decode("[1]", "application/x-custom; v=2") == [1]


def test_json_bytes_default_to_utf8():
    assert decoder.decode('["é"]'.encode(), content_types.JSON).tolist() == ["é"]

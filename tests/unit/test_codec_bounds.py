"""Hostile bodies for the default codecs: memory stays proportional to the body, dtypes the
default handlers cannot answer with are refused at decode time, and what the encoders cannot write
is a 406 naming a type that works (or the dense array, for a sparse matrix)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import scipy.sparse

from sagemaker_inference import content_types, decoder, encoder, errors


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def npz(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return buffer.getvalue()


def refused(body: bytes | str, content_type: str) -> str:
    with pytest.raises(errors.DecodeError) as caught:
        decoder.decode(body, content_type)
    assert caught.value.status_code == 400
    return str(caught.value)


# -- NPZ zip bombs -----------------------------------------------------------------------------


def test_npz_bomb_is_refused_from_the_declared_sizes_before_inflating():
    # 240 MB of zeros in a ~230 KB body; upstream's load_npz inflates all of it.
    body = npz(data=npy(np.zeros(30_000_000)), indices=npy(np.zeros(1, np.int32)),
               indptr=npy(np.zeros(2, np.int32)), format=npy(np.array(b"csr")), shape=npy(np.array([1, 1])))
    assert len(body) < 300_000
    assert "inflates to 228 MiB" in refused(body, content_types.NPZ)


def test_npz_member_whose_header_declares_more_than_it_holds_is_refused():
    body = npz(data=npy_header("<f8", (10**12,)), format=npy(np.array(b"csr")))
    assert "Invalid NPZ sparse matrix" in refused(body, content_types.NPZ)


def test_npz_with_many_members_is_refused():
    body = npz(**{f"m{i}": npy(np.zeros(1)) for i in range(50)})
    assert "50 members" in refused(body, content_types.NPZ)


@pytest.mark.parametrize("matrix", [scipy.sparse.csr_matrix(np.eye(3)), scipy.sparse.coo_matrix(np.eye(3)),
                                    scipy.sparse.dia_matrix(np.eye(3)), scipy.sparse.bsr_matrix(np.eye(4)),
                                    scipy.sparse.csc_array(np.eye(2))])
def test_every_sparse_format_still_decodes(matrix):
    buffer = io.BytesIO()
    scipy.sparse.save_npz(buffer, matrix)
    decoded = decoder.decode(buffer.getvalue(), content_types.NPZ)
    np.testing.assert_array_equal(decoded.toarray(), matrix.toarray())


def test_complex_sparse_values_are_refused():
    buffer = io.BytesIO()
    scipy.sparse.save_npz(buffer, scipy.sparse.csr_matrix(np.eye(2) * 1j))
    assert "complex128" in refused(buffer.getvalue(), content_types.NPZ)


# -- JSON string arrays ------------------------------------------------------------------------


def test_json_strings_widened_to_the_longest_are_refused():
    # 35 KB of JSON that numpy would store as a 140 MB <U5000 array.
    body = json.dumps(["a" * 5000] + [""] * 7000)
    assert len(body) < 40_000
    message = refused(body, content_types.JSON)
    assert "7001 strings padded to 5000 characters" in message


@pytest.mark.parametrize("body", ['["a", "bb", 1]', json.dumps(["x" * 100_000]), json.dumps([["ab", "c"]] * 1000),
                                  '{"a": 1}'[:0] + '"just a string"'])
def test_ordinary_string_arrays_decode_as_numpy_makes_them(body):
    np.testing.assert_array_equal(decoder.decode(body, content_types.JSON), np.array(json.loads(body)))


# -- NPY headers and dtypes --------------------------------------------------------------------


@pytest.mark.parametrize("array", [np.array([1 + 2j]), np.array([b"ab"]), np.array(["2020-01-01"], dtype="M8[D]"),
                                   np.array([1], dtype="m8[s]"), np.zeros(3, dtype="V4"),
                                   np.zeros(2, dtype=[("a", "<i4")]), np.zeros(2, dtype=np.longdouble),
                                   np.zeros(2, dtype=object)])
def test_npy_dtypes_the_default_codecs_cannot_answer_with_are_refused_by_name(array):
    message = refused(npy(array), content_types.NPY)
    assert array.dtype.str in message


@pytest.mark.parametrize("dtype", ["?", "i1", "<u8", "<i8", "<f2", "<f4", ">f8", "<U7"])
def test_npy_dtypes_that_round_trip_still_decode(dtype):
    array = np.zeros((2, 3), dtype=dtype)
    decoded = decoder.decode(npy(array), content_types.NPY)
    assert decoded.dtype == array.dtype
    assert encoder.encode(decoded, content_types.JSON) == json.dumps(array.tolist())


def test_npy_of_zero_width_strings_with_a_huge_shape_is_refused():
    assert "<U0" in refused(npy_header("<U0", (10**15,)), content_types.NPY)


@pytest.mark.parametrize("shape", [(-1,), (4, -4), (-2, -2)])
def test_npy_header_with_a_negative_dimension_is_refused(shape):
    # Found by the conformance kit: (-1,) decoded as the whole body, (4, -4) as shape (4, 1).
    with pytest.raises(errors.DecodeError, match="cannot be negative"):
        decoder.decode(npy_header("<f8", shape) + b"\0" * 32, content_types.NPY)


def test_npy_header_declaring_more_data_than_the_body_is_refused_without_allocating():
    # Upstream (and numpy) try to allocate 7 TiB: a MemoryError.
    assert "more data than the body holds" in refused(npy_header("<f8", (10**12,)), content_types.NPY)


def test_a_server_side_memory_error_is_not_reported_as_the_clients_fault(monkeypatch):
    def out_of_memory(data):
        raise MemoryError

    monkeypatch.setitem(decoder._decoder_map, content_types.JSON, out_of_memory)
    with pytest.raises(MemoryError):
        decoder.decode("[1]", content_types.JSON)


def test_charset_naming_a_codec_that_cannot_decode_is_415():
    with pytest.raises(errors.UnsupportedMediaTypeError) as caught:
        decoder.decode(b"[1]", "application/json; charset=undefined")
    assert caught.value.status_code == 415


# -- encoding ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [scipy.sparse.csr_matrix, scipy.sparse.coo_array, scipy.sparse.lil_matrix])
def test_sparse_matrices_are_encoded_as_their_dense_array(make):
    dense = np.array([[0.0, 1.5], [2.0, 0.0]])
    matrix = make(dense)
    assert encoder.encode(matrix, content_types.JSON) == encoder.encode(dense, content_types.JSON)
    assert encoder.encode(matrix, content_types.CSV) == encoder.encode(dense, content_types.CSV)
    assert encoder.encode(matrix, content_types.NPY) == encoder.encode(dense, content_types.NPY)
    assert encoder.encode({"m": matrix}, content_types.JSON) == '{"m": [[0.0, 1.5], [2.0, 0.0]]}'


def test_a_sparse_matrix_too_large_to_send_densely_is_406_naming_what_works():
    with pytest.raises(errors.NotAcceptableError) as caught:
        encoder.encode(scipy.sparse.csr_matrix((100_000, 100_000)), content_types.JSON)
    assert caught.value.status_code == 406
    assert "output_fn" in str(caught.value) and "save_npz" in str(caught.value)


@pytest.mark.parametrize("value", [np.array([1 + 2j]), [1 + 2j], np.array([b"x"])])
def test_a_value_json_cannot_hold_is_406_naming_the_types_that_can(value):
    with pytest.raises(errors.NotAcceptableError) as caught:
        encoder.encode(value, content_types.JSON)
    assert caught.value.status_code == 406
    assert content_types.NPY in str(caught.value)


def test_a_value_no_encoder_can_write_still_raises_type_error():
    with pytest.raises(TypeError):
        encoder.encode({1, 2}, content_types.JSON)


def test_string_arrays_decode_exactly_as_numpy_makes_them():
    # The all-strings path builds the array at its measured width: same dtype, shape and values.
    for body in ('["a", "bb"]', '[["a", "b"], ["cc", "d"]]', '["", ""]', '[[""]]', '["\\u00e9", "ab"]',
                 '["x{y", "z"]', json.dumps([f"s{i}" * (i % 7) for i in range(500)])):
        expected = np.array(json.loads(body))
        decoded = decoder.decode(body, content_types.JSON)
        assert (decoded.dtype, decoded.shape) == (expected.dtype, expected.shape)
        np.testing.assert_array_equal(decoded, expected)
    for body in ('[["a"], ["b", "c"]]', '["a", ["b"]]', '["x", {"a": 1}]', '[["a"], "b"]'):
        refused(body, content_types.JSON)

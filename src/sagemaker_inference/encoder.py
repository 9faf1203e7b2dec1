"""This module contains functionality for converting array-like objects
to various types of objects and files.

Output is byte-for-byte upstream's: JSON is ``json.dumps`` with numpy objects converted by
``tolist()``, CSV is ``np.savetxt(..., delimiter=",", fmt="%s")``, NPY is ``np.save``. The
differences are in ``encode``: the content type is matched on its type/subtype
(``application/json; charset=utf-8`` works), an unknown one raises
``errors.NotAcceptableError`` (an ``UnsupportedFormatError``; HTTP 406), and a ``KeyError``
raised *inside* an encoder is no longer reported as an unsupported content type.

Two additions, where upstream fails with a 500: a scipy sparse matrix is encoded as its dense
array (JSON, CSV and NPY alike; up to ``MAX_DENSE_BYTES``), and a value one encoder cannot
write (``complex`` as JSON, say) while another default encoder can is a 406 naming that type.

numpy is imported inside the functions so importing this module stays cheap.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any, Callable

from sagemaker_inference import _mime, content_types, errors

MAX_DENSE_BYTES = 64 * 1024 * 1024  # a sparse matrix is sent densely up to this size


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if _is_sparse(obj):
        return _dense(obj).tolist()
    return json.JSONEncoder().default(obj)


def _is_sparse(obj: Any) -> bool:
    sparse = sys.modules.get("scipy.sparse")  # never imported here: a sparse matrix means it was
    return sparse is not None and bool(sparse.issparse(obj))


def _dense(matrix: Any) -> Any:
    """The dense array of a sparse matrix, refused (406) when it would be too large to send."""
    rows, columns = matrix.shape
    size = rows * columns * matrix.dtype.itemsize
    if size > MAX_DENSE_BYTES:
        raise errors.NotAcceptableError(
            None, f"A {rows}x{columns} sparse matrix is {size // 2**20} MiB as a dense array, more than the "
                  f"{MAX_DENSE_BYTES // 2**20} MiB the default encoders send; implement output_fn "
                  "(scipy.sparse.save_npz writes application/x-npz).")
    return matrix.toarray()


# ``json.dumps(x, default=...)`` builds a new JSONEncoder on every call; one shared encoder with the
# same settings produces the same text without that cost (encoders keep no state between calls).
_json_encoder = json.JSONEncoder(default=_default)


def _array_to_json(array_like: Any) -> str:
    """Convert an array-like object to JSON.

    To understand better what an array-like object is see:
    https://docs.scipy.org/doc/numpy/user/basics.creation.html#converting-python-array-like-objects-to-numpy-arrays

    Args:
        array_like (np.array or Iterable or int or float): array-like object
            to be converted to JSON.

    Returns:
        (str): object serialized to JSON
    """
    numpy = sys.modules.get("numpy")
    if numpy is not None and type(array_like) is numpy.ndarray:
        # Same output as going through the default hook, without the extra round trip.
        array_like = array_like.tolist()
    return _json_encoder.encode(array_like)


def _array_to_npy(array_like: Any) -> bytes:
    """Convert an array-like object to the NPY format.

    To understand better what an array-like object is see:
    https://docs.scipy.org/doc/numpy/user/basics.creation.html#converting-python-array-like-objects-to-numpy-arrays

    Args:
        array_like (np.array or Iterable or int or float): array-like object
            to be converted to NPY.

    Returns:
        (obj): NPY array.
    """
    import numpy as np

    if _is_sparse(array_like):
        array_like = _dense(array_like)
    buffer = io.BytesIO()
    np.save(buffer, array_like)
    return buffer.getvalue()


def _array_to_csv(array_like: Any) -> str:
    """Convert an array-like object to CSV.

    To understand better what an array-like object is see:
    https://docs.scipy.org/doc/numpy/user/basics.creation.html#converting-python-array-like-objects-to-numpy-arrays

    Args:
        array_like (np.array or Iterable or int or float): array-like object
            to be converted to CSV.

    Returns:
        (str): object serialized to CSV
    """
    import numpy as np

    if _is_sparse(array_like):
        array_like = _dense(array_like)
    stream = io.StringIO()
    np.savetxt(stream, array_like, delimiter=",", fmt="%s")
    return stream.getvalue()


_encoder_map: dict[str, Callable[[Any], Any]] = {
    content_types.NPY: _array_to_npy,
    content_types.CSV: _array_to_csv,
    content_types.JSON: _array_to_json,
}

# Computed once, as upstream: patching _encoder_map later does not change it.
SUPPORTED_CONTENT_TYPES = set(_encoder_map.keys())


def encode(array_like: Any, content_type: str | None) -> Any:
    """Encode an array-like object in a specific content_type to a numpy array.

    To understand better what an array-like object is see:
    https://docs.scipy.org/doc/numpy/user/basics.creation.html#converting-python-array-like-objects-to-numpy-arrays

    Args:
        array_like (np.array or Iterable or int or float): to be converted to numpy.
        content_type (str): content type to be used.

    Returns:
        (np.array): object converted as numpy array.

    Raises:
        errors.NotAcceptableError: no encoder for the content type, or the value cannot be written
            as that type but can as another one (an ``UnsupportedFormatError``; HTTP 406).
    """
    encoder = _encoder_map.get(content_type)  # type: ignore[arg-type]
    if encoder is None and content_type:
        encoder = _encoder_map.get(_mime.parse(content_type).essence)
    if encoder is None:
        known = ", ".join(sorted(_encoder_map))
        raise errors.NotAcceptableError(content_type, f"Cannot encode as {content_type}; supported types: {known}.")
    try:
        return encoder(array_like)
    except (TypeError, ValueError) as e:
        alternatives = [t for t, other in sorted(_encoder_map.items())
                        if other is not encoder and _encodes(t, array_like)]
        if not alternatives:
            raise  # nothing could write it: the handler returned something no response can hold (500)
        raise errors.NotAcceptableError(
            content_type, f"Cannot encode the response as {content_type} ({e}); it can be sent as "
                          f"{' or '.join(alternatives)}: set the Accept header.") from e


def _encodes(content_type: str, array_like: Any) -> bool:
    """Whether the default encoder for ``content_type`` can write ``array_like`` (never by pickling)."""
    import numpy as np

    try:
        if content_type == content_types.NPY:
            np.save(io.BytesIO(), _dense(array_like) if _is_sparse(array_like) else array_like, allow_pickle=False)
        else:
            _encoder_map[content_type](array_like)
    except Exception:
        return False
    return True

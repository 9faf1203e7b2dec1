"""This module contains functionality for converting various types of
files and objects to NumPy arrays.

Differences from upstream (see docs/compatibility.md):

* the content type is parsed: ``application/json; charset=latin-1`` and ``Text/CSV`` are
  decoded, with the charset honoured for text types;
* NPY and NPZ bodies are loaded with ``allow_pickle=False``: a request can never make the
  server unpickle data;
* any failure to turn the body into an array is a ``errors.DecodeError`` (HTTP 400, also a
  ``ValueError``) chained to the original exception, never a raw json/numpy exception;
* CSV is parsed into a plain numeric array (ints, or floats as soon as one cell needs it);
  JSON must describe a numeric/string/bool array (objects, ragged lists and nulls are a 400).

numpy is imported inside the functions (and scipy only for NPZ) so importing this module,
which the model server does indirectly, stays cheap.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any, Callable

from sagemaker_inference import _mime, content_types, errors

if TYPE_CHECKING:
    import numpy as np

_TEXT_TYPES = frozenset(content_types.UTF8_TYPES)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _json_to_numpy(string_like: Any, dtype: Any = None) -> np.ndarray:
    """Convert a JSON object to a numpy array.

    Args:
        string_like (str): JSON string.
        dtype (dtype, optional):  Data type of the resulting array.
            If None, the dtypes will be determined by the contents
            of each column, individually. This argument can only be
            used to 'upcast' the array.  For downcasting, use the
            .astype(t) method.

    Returns:
        (np.array): numpy array

    Raises:
        errors.DecodeError: invalid JSON, or JSON that is not a rectangular array of numbers,
            strings or booleans (objects, ragged lists, nulls, integers beyond int64).
    """
    import numpy as np

    try:
        data = json.loads(string_like)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise errors.DecodeError(f"Invalid JSON: {e}") from e
    if isinstance(data, dict):
        raise errors.DecodeError("JSON object cannot be converted to an array; implement input_fn to accept it.")
    try:
        array = np.array(data, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as e:
        raise errors.DecodeError(f"JSON is not a rectangular array: {e}") from e
    if array.dtype.hasobject and dtype is None:
        raise errors.DecodeError(
            "JSON array must hold numbers, strings or booleans of one shape "
            "(no objects, nulls, ragged lists or integers beyond int64)."
        )
    return array


def _csv_to_numpy(string_like: Any, dtype: Any = None) -> np.ndarray:
    """Convert a CSV object to a numpy array.

    Rows are lines, cells are comma separated; blank lines are skipped and cells may be padded
    with spaces. All-integer input gives an int64 array, anything with a float (or an empty
    cell, read as NaN) a float64 array. As with upstream's ``np.genfromtxt``, single rows and
    single columns are squeezed to 1-d.

    Args:
        string_like (str): CSV string.
        dtype (dtype, optional):  Data type of the resulting array. If None, int64 or float64
            is chosen from the contents. This argument can only be used to 'upcast' the array.
            For downcasting, use the .astype(t) method.

    Returns:
        (np.array): numpy array

    Raises:
        errors.DecodeError: empty input, ragged rows, non-numeric cells.
    """
    import numpy as np

    if isinstance(string_like, (bytes, bytearray)):
        string_like = _text(string_like, None)
    rows = [line.split(",") for line in string_like.splitlines() if line.strip()]
    if not rows:
        raise errors.DecodeError("CSV body is empty.")
    width = len(rows[0])
    for number, row in enumerate(rows, 1):
        if len(row) != width:
            raise errors.DecodeError(f"CSV row {number} has {len(row)} columns, expected {width}.")
    cells = [cell for row in rows for cell in row]
    values = _csv_numbers(cells)
    array = np.array(values, dtype=dtype if dtype is not None else _number_dtype(values))
    return np.squeeze(array.reshape(len(rows), width))


def _csv_numbers(cells: list[str]) -> list[Any]:
    try:
        return [int(cell) for cell in cells]
    except ValueError:
        pass
    try:
        return [float(cell) if cell.strip() else float("nan") for cell in cells]
    except ValueError:
        bad = next(cell for cell in cells if not _is_float(cell))
        raise errors.DecodeError(f"CSV cell {bad.strip()[:64]!r} is not a number.") from None


def _is_float(cell: str) -> bool:
    try:
        float(cell or "nan")
    except ValueError:
        return False
    return True


def _number_dtype(values: list[Any]) -> str:
    if values and type(values[0]) is int:
        if not all(_INT64_MIN <= v <= _INT64_MAX for v in values):
            raise errors.DecodeError("CSV integer out of int64 range.")
        return "int64"
    return "float64"


def _npy_to_numpy(npy_array: Any) -> np.ndarray:
    """Convert a NPY array into numpy.

    Unlike upstream, pickled content is refused (``allow_pickle=False``): object arrays cannot
    be sent in a request.

    Args:
        npy_array (npy array): to be converted to numpy array

    Returns:
        (np.array): converted numpy array.

    Raises:
        errors.DecodeError: not an NPY file, truncated data, object arrays.
    """
    import numpy as np

    stream = io.BytesIO(npy_array)
    try:
        # read_array, unlike np.load, never treats the bytes as a zip (NPZ) or a pickle.
        return np.lib.format.read_array(stream, allow_pickle=False)
    except (ValueError, OSError, EOFError, TypeError) as e:
        raise errors.DecodeError(f"Invalid NPY data: {e}") from e


def _npz_to_sparse(npz_bytes: Any) -> Any:
    """Convert .npz-formatted data to a sparse matrix.

    Args:
        npz_bytes (object): Bytes encoding a sparse matrix in the .npz format.

    Returns:
        (scipy.sparse.spmatrix): A sparse matrix.

    Raises:
        errors.DecodeError: not a sparse-matrix NPZ archive, or it holds pickled data.
        errors.UnsupportedMediaTypeError: scipy is not installed.
    """
    try:
        import scipy.sparse
    except ImportError as e:
        raise errors.UnsupportedMediaTypeError(content_types.NPZ, "application/x-npz needs scipy installed.") from e
    try:
        # load_npz opens the archive with allow_pickle=False.
        return scipy.sparse.load_npz(io.BytesIO(npz_bytes))
    except Exception as e:  # zipfile, numpy and scipy raise a wide variety of types
        raise errors.DecodeError(f"Invalid NPZ sparse matrix: {e}") from e


_decoder_map: dict[str | None, Callable[[Any], Any]] = {
    content_types.NPY: _npy_to_numpy,
    content_types.CSV: _csv_to_numpy,
    content_types.JSON: _json_to_numpy,
    content_types.NPZ: _npz_to_sparse,
}


def decode(obj: Any, content_type: str | None) -> Any:
    """Decode an object that is encoded as one of the default content types.

    The content type is matched on its type/subtype, case-insensitively, after an exact
    lookup (so keys added to ``_decoder_map`` with parameters still match verbatim). A
    ``bytes`` body of a text type (JSON, CSV) is first decoded with its ``charset``
    (UTF-8 by default).

    Args:
        obj (object): to be decoded.
        content_type (str): content type to be used.

    Returns:
        object: decoded object for prediction.

    Raises:
        errors.UnsupportedMediaTypeError: no decoder for the content type (an
            ``UnsupportedFormatError``; HTTP 415).
        errors.DecodeError: the body does not decode (a ``ValueError``; HTTP 400).
    """
    decoder = _decoder_map.get(content_type)
    charset = None
    if decoder is None and content_type:
        media_type = _mime.parse(content_type)
        decoder = _decoder_map.get(media_type.essence)
        essence, charset = media_type.essence, media_type.charset
    else:
        essence = content_type
    if decoder is None:
        raise errors.UnsupportedMediaTypeError(content_type, _unsupported_message(content_type))
    if essence in _TEXT_TYPES and isinstance(obj, (bytes, bytearray)):
        obj = _text(obj, charset)
    try:
        return decoder(obj)
    except (errors.BaseInferenceToolkitError, errors.UnsupportedFormatError):
        raise
    except Exception as e:
        raise errors.DecodeError(f"Unable to decode {content_type} body: {type(e).__name__}: {e}") from e


def _text(data: bytes | bytearray, charset: str | None) -> str:
    """Decode a text body; a bad byte is the client's fault (400), an unknown charset 415."""
    try:
        return data.decode(charset or "utf-8")
    except UnicodeDecodeError as e:
        raise errors.DecodeError(f"Body is not valid {charset or 'utf-8'}: {e.reason} at byte {e.start}.") from e
    except LookupError as e:
        raise errors.UnsupportedMediaTypeError(charset, f"Charset {charset} is not supported.") from e


def _unsupported_message(content_type: str | None) -> str:
    known = ", ".join(sorted(k for k in _decoder_map if k))
    return f"Content type {content_type} is not supported; supported types: {known}."

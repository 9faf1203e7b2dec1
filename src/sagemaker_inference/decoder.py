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
  JSON must describe a numeric/string/bool array (objects, ragged lists and nulls are a 400);
* memory stays proportional to the body: a JSON string array that numpy would widen to the
  longest string, an NPY header declaring more data than the body holds, an NPZ archive whose
  members inflate past ``_inflate_budget`` are refused (400) before anything is allocated;
* NPY/NPZ dtypes the default codecs cannot answer with (complex, bytes, datetime, void,
  structured, zero-width, extended precision) are refused with a 400 naming the dtype.

numpy is imported inside the functions (and scipy only for NPZ) so importing this module,
which the model server does indirectly, stays cheap.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import TYPE_CHECKING, Any, Callable

from sagemaker_inference import _mime, content_types, errors

if TYPE_CHECKING:
    import numpy as np

_TEXT_TYPES = frozenset(content_types.UTF8_TYPES)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MIB = 1024 * 1024
# What decoding one body may allocate beyond the body itself: this many times its size, and at
# least the floor (small bodies of long strings or well-compressed sparse matrices are normal).
INFLATION_RATIO = 16
INFLATION_FLOOR = 64 * _MIB
_ALWAYS_FITS = 14_000  # 4 bytes x 14000**2 / 12 < INFLATION_FLOOR (see _check_string_widths)
_MAX_NPZ_MEMBERS = 16  # a sparse matrix has at most 6 (format, shape, data, indices, indptr, _is_array)
# numpy kinds every default encoder can write back: bool, ints, floats (of at most 8 bytes:
# extended precision has no JSON form), unicode strings.
_ROUND_TRIP_KINDS = frozenset("biufU")


def _inflate_budget(body_size: int) -> int:
    return max(INFLATION_FLOOR, INFLATION_RATIO * body_size)


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
    if '"' in string_like:  # only strings hold a quote: numeric bodies skip all of this
        if dtype is None:
            strings = _string_array(data, string_like)
            if strings is not None:
                return strings
        _check_string_widths(data, string_like)
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


def _string_array(data: Any, text: str) -> np.ndarray | None:
    """An array of nothing but strings, built at its exact width after checking that width against
    the budget; None for anything else (numbers or objects among them, ragged or empty lists).

    Measuring the strings first costs less than it saves: numpy given the width skips its own
    discovery pass (2000 strings: 65 us instead of 130-220 us, plus 40-70 us to measure them).
    A ``{`` anywhere may be an object among the strings, which ``len()`` would measure too: those
    bodies take the general path.
    """
    import numpy as np

    if "{" in text or type(data) is not list:
        return None
    shape = _all_strings(data)
    if shape is None:
        return None
    count, longest = shape
    width = max(longest, 1)  # numpy's choice for empty strings too
    if count * width * 4 > _inflate_budget(len(text)):
        raise errors.DecodeError(
            f"JSON string array too large: {count} strings padded to {longest} characters would need "
            f"{count * width * 4 // _MIB} MiB; send fewer or more even strings, or implement input_fn.")
    try:
        return np.array(data, dtype=f"<U{width}")
    except ValueError:  # ragged: the general path reports it as numpy words it
        return None


def _all_strings(value: list[Any]) -> tuple[int, int] | None:
    """(elements, longest) of a rectangular-looking nest of lists of strings, innermost lists
    measured at C speed (``max(map(len, ...))``); None as soon as something else shows up."""
    if not value:
        return None
    if type(value[0]) is list:
        count = longest = 0
        for row in value:
            shape = _all_strings(row) if type(row) is list else None
            if shape is None:
                return None
            count, longest = count + shape[0], max(longest, shape[1])
        return count, longest
    try:
        return len(value), max(map(len, value))  # TypeError: a number, bool or null among them
    except TypeError:
        return None


def _check_string_widths(data: Any, text: str) -> None:
    """Refuse a string array that numpy would store at ``elements x longest string x 4`` bytes past
    the inflation budget (``["a" * 5000, "", "", ...]``: a 35 KB body, a 200 MB array).

    Bounds first, so that ordinary bodies cost (nearly) nothing: in N characters, k strings of which
    the longest has L characters satisfy k * L <= N**2 / 12 (each takes its length + 3), so a body of
    up to ``_ALWAYS_FITS`` characters cannot pass the floor; then elements <= commas + 1 and L <= N;
    the elements are walked only when that bound is too high.
    """
    if len(text) <= _ALWAYS_FITS:
        return
    budget = _inflate_budget(len(text))
    if (text.count(",") + 1) * len(text) * 4 <= budget:
        return
    count, longest, pending = 0, 0, [data]
    while pending:
        value = pending.pop()
        if isinstance(value, list):
            pending.extend(value)
            continue
        count += 1
        if isinstance(value, str) and len(value) > longest:
            longest = len(value)
    # Numbers among strings become strings of up to 32 characters.
    need = count * max(longest, 32) * 4
    if longest and need > budget:
        raise errors.DecodeError(
            f"JSON string array too large: {count} strings padded to {longest} characters would need "
            f"{need // _MIB} MiB; send fewer or more even strings, or implement input_fn.")


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

    try:
        shape, fortran_order, dtype, offset = _npy_header(npy_array)
        if any(dimension < 0 for dimension in shape):  # numpy's reader refuses them; frombuffer would not
            raise errors.DecodeError(f"NPY header declares shape {shape}: dimensions cannot be negative.")
        count = 1
        for dimension in shape:
            count *= dimension
        if count * dtype.itemsize > len(npy_array) - offset:
            raise errors.DecodeError(
                f"NPY header declares shape {shape} of {dtype.str}: more data than the body holds.")
        # What np.lib.format.read_array does for a bytes body, minus its chunked copy: a copy
        # of the data (writable, not tied to the body), shaped as the header says.
        array = np.frombuffer(npy_array, dtype=dtype, count=count, offset=offset).copy()
    except (ValueError, OSError, EOFError, TypeError) as e:
        if isinstance(e, errors.DecodeError):
            raise
        raise errors.DecodeError(f"Invalid NPY data: {e}") from e
    if fortran_order:
        return array.reshape(shape[::-1]).transpose()
    return array.reshape(shape)


def _npy_header(npy_bytes: Any) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Shape, order, dtype and data offset of an NPY body, read with numpy's header parser; a dtype
    the default codecs cannot answer with is refused before anything is allocated (``<U0`` x
    10**15 is 0 bytes, and an array no handler can iterate)."""
    import numpy as np

    fmt = np.lib.format
    stream = io.BytesIO(npy_bytes)
    version = fmt.read_magic(stream)
    if version == (1, 0):
        shape, fortran_order, dtype = fmt.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran_order, dtype = fmt.read_array_header_2_0(stream)
    else:  # 3.0 exists only for structured dtypes with non-latin-1 field names, which are refused anyway
        raise errors.DecodeError(f"NPY format version {version[0]}.{version[1]} is not supported: use 1.0 or 2.0.")
    _check_dtype(dtype)
    return shape, fortran_order, dtype, stream.tell()


def _check_dtype(dtype: np.dtype) -> None:
    if dtype.hasobject:
        raise errors.DecodeError(f"NPY dtype {dtype.str} (object) is refused: it holds pickled data "
                                 "(allow_pickle is off).")
    if dtype.kind not in _ROUND_TRIP_KINDS or dtype.itemsize == 0 or (dtype.kind == "f" and dtype.itemsize > 8):
        raise errors.DecodeError(
            f"NPY dtype {dtype.str} ({dtype}) is not supported by the default handlers: use bool, integer, "
            "float (up to float64) or unicode string arrays, or implement input_fn.")


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
    import numpy as np

    try:
        # allow_pickle=False, as scipy.sparse.load_npz opens it; once, so that the declared sizes
        # are read from the very ZipFile the members are then read from.
        with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as loaded:
            _check_npz(loaded.zip.infolist(), len(npz_bytes))
            matrix = _sparse_matrix(loaded, scipy.sparse)
    except errors.DecodeError:
        raise
    except Exception as e:  # zipfile, numpy and scipy raise a wide variety of types
        # Including MemoryError: every member's data is bounded above, so a member that cannot be
        # allocated is one whose header claims a shape its data does not hold.
        raise errors.DecodeError(f"Invalid NPZ sparse matrix: {type(e).__name__}: {e}") from e
    _check_dtype(matrix.dtype)
    return matrix


def _check_npz(members: list[zipfile.ZipInfo], body_size: int) -> None:
    """Refuse a zip bomb before inflating it: the members' declared sizes must fit the inflation
    budget. Declared sizes bind: zipfile stops every member at its declared size while inflating
    (and checks its CRC), and numpy reads no more than a member holds."""
    budget = _inflate_budget(body_size)
    if len(members) > _MAX_NPZ_MEMBERS:
        raise errors.DecodeError(f"NPZ archive has {len(members)} members; a sparse matrix has at most 6.")
    declared = sum(m.file_size for m in members)
    if declared > budget:
        raise errors.DecodeError(
            f"NPZ archive inflates to {declared // _MIB} MiB, more than the {budget // _MIB} MiB allowed "
            f"for a {body_size}-byte body.")


_SPARSE_FORMATS = ("csr", "csc", "bsr", "dia", "coo")


def _sparse_matrix(loaded: Any, sparse: Any) -> Any:
    """The matrix an opened NPZ holds, built exactly as ``scipy.sparse.load_npz`` builds it."""
    name = loaded.get("format")
    if name is None:
        raise errors.DecodeError("NPZ body holds no sparse matrix (no 'format' member); implement input_fn.")
    name = name.item()
    if not isinstance(name, str):
        name = name.decode("ascii")
    if name not in _SPARSE_FORMATS:
        raise errors.DecodeError(f"NPZ sparse format {name[:32]!r} is not one of {', '.join(_SPARSE_FORMATS)}.")
    cls = getattr(sparse, name + ("_array" if loaded.get("_is_array") else "_matrix"))
    shape = loaded["shape"]
    if name in ("csc", "csr", "bsr"):
        return cls((loaded["data"], loaded["indices"], loaded["indptr"]), shape=shape)
    if name == "dia":
        return cls((loaded["data"], loaded["offsets"]), shape=shape)
    coords = loaded["coords"] if "coords" in loaded else (loaded["row"], loaded["col"])
    return cls((loaded["data"], coords), shape=shape)


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
    except (errors.BaseInferenceToolkitError, errors.UnsupportedFormatError, MemoryError):
        raise  # a MemoryError is the server's (bodies are bounded before allocation), not the client's
    except Exception as e:
        raise errors.DecodeError(f"Unable to decode {content_type} body: {type(e).__name__}: {e}") from e


def _text(data: bytes | bytearray, charset: str | None) -> str:
    """Decode a text body; a bad byte is the client's fault (400), an unknown charset 415."""
    try:
        return data.decode(charset or "utf-8")
    except UnicodeDecodeError as e:
        raise errors.DecodeError(f"Body is not valid {charset or 'utf-8'}: {e.reason} at byte {e.start}.") from e
    except (LookupError, UnicodeError) as e:  # unknown, or a codec that cannot decode ("undefined")
        raise errors.UnsupportedMediaTypeError(charset, f"Charset {charset} is not supported.") from e


def _unsupported_message(content_type: str | None) -> str:
    known = ", ".join(sorted(k for k in _decoder_map if k))
    return f"Content type {content_type} is not supported; supported types: {known}."

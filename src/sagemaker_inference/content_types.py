"""This module contains constants that define MIME content types."""

from __future__ import annotations

JSON = "application/json"
CSV = "text/csv"
OCTET_STREAM = "application/octet-stream"
ANY = "*/*"
NPY = "application/x-npy"
NPZ = "application/x-npz"
# A list, not a set: upstream and downstream handlers test membership with ``in`` and some
# code relies on the order.
UTF8_TYPES = [JSON, CSV]

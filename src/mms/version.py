"""The MMS version this package is compatible with (what ``mms.__version__`` said under MMS)."""

__version__ = "1.1.11"

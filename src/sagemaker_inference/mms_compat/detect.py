"""Is the real ``multi-model-server`` distribution (the Java MMS) installed beside us?

Both distributions install a top-level ``mms`` package and a ``multi-model-server`` command;
pip does not notice, and whichever was installed last owns the shared files. So the commands we
ship say so, once, in words that name the fix.
"""

from __future__ import annotations

import sys

FIX = ("pip uninstall -y multi-model-server model-archiver && "
       "pip install --force-reinstall --no-deps sagemaker-inference")


def real_mms_version() -> str | None:
    """The installed ``multi-model-server`` distribution's version, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("multi-model-server")
    except PackageNotFoundError:
        return None


def mms_is_ours() -> bool:
    """Whether ``import mms`` gives our package (not the Java MMS's Python side)."""
    try:
        import mms
    except ImportError:
        return False
    return getattr(mms, "__implementation__", None) == "sagemaker-inference"


def conflict_message() -> str | None:
    """One paragraph when the Java MMS distribution is installed too, else None."""
    version = real_mms_version()
    if version is None:
        return None
    owner = "ours" if mms_is_ours() else "the Java MMS's"
    return (f"the multi-model-server {version} distribution (Java MMS) is installed beside sagemaker-inference: "
            "both provide the 'mms' package and the 'multi-model-server' command, and the one installed last "
            f"owns them (the 'mms' package imported here is {owner}). To run without Java: {FIX}")


def warn_if_conflict() -> None:
    message = conflict_message()
    if message:
        print(f"WARNING: {message}", file=sys.stderr, flush=True)

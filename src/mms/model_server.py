"""``mms.model_server``: MMS's entry points, starting our server (no JVM)."""

from __future__ import annotations

from sagemaker_inference.mms_compat.launcher import main as _main
from sagemaker_inference.mms_compat.launcher import old_main as _old_main
from sagemaker_inference.mms_compat.properties import parse_properties


def start() -> None:
    """``multi-model-server``."""
    raise SystemExit(_main())


def old_start() -> None:
    """``mxnet-model-server``."""
    raise SystemExit(_old_main())


def load_properties(file_path: str) -> dict[str, str]:
    """Read a properties file into a dict, as MMS's launcher does."""
    with open(file_path, encoding="utf-8") as f:
        return parse_properties(f.read())


if __name__ == "__main__":
    start()

"""The ``model-archiver`` command (MMS's model-archiver 1.0.3), as the toolkits call it.

``--archive-format no-archive`` (what the Hugging Face Hub path runs) copies the model folder to
``<export-path>/<model-name>/`` and writes ``MAR-INF/MANIFEST.json`` there; our server serves that
folder and takes its handler from the manifest. ``tgz`` writes ``<model-name>.tar.gz`` (a
directory ``<model-name>/`` inside, as model-archiver does) and ``default`` a ``.mar`` zip, for
images that build archives at build time. Same files skipped as model-archiver: hidden and
``__MACOSX``/``__pycache__`` directories, ``*.pyc``, ``.DS_Store``, ``*.mar``, an old manifest.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import shutil
import sys
import tarfile
import zipfile
from collections.abc import Iterator

SUFFIXES = {"tgz": ".tar.gz", "no-archive": "", "default": ".mar"}
MANIFEST_DIR = "MAR-INF"
MANIFEST_FILE = "MANIFEST.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.]*$")
_SKIP_DIRS = {"__MACOSX", "__pycache__"}

logger = logging.getLogger("model-archiver")


class ArchiverError(Exception):
    """Bad input; the message names the fix."""


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="model-archiver", description="Model Archiver Tool (sagemaker-inference)")
    parser.add_argument("--model-name", required=True, help="name of the exported model")
    parser.add_argument("--model-path", required=True, help="folder with the model's files")
    parser.add_argument("--handler", required=True, help="handler service of the model")
    parser.add_argument("--runtime", default="python", choices=["python", "python2", "python3"])
    parser.add_argument("--export-path", default=os.getcwd(), help="where the archive or folder is written")
    parser.add_argument("--archive-format", default="default", choices=list(SUFFIXES))
    parser.add_argument("-f", "--force", action="store_true", help="overwrite an existing export")
    parser.add_argument("-c", "--convert", action="store_true", help="accepted; ONNX conversion is not done")
    return parser


def manifest(model_name: str, handler: str, runtime: str = "python") -> str:
    """The manifest model-archiver 1.0.3 writes, key for key and in its order."""
    return json.dumps({"runtime": runtime, "model": {"modelName": model_name, "handler": handler},
                       "modelServerVersion": "1.0", "implementationVersion": "1.0",
                       "specificationVersion": "1.0"}, indent=2)


def export(model_name: str, model_path: str, handler: str, export_path: str, archive_format: str = "default",
           force: bool = False, runtime: str = "python") -> str:
    """Write the archive or folder; return its path."""
    if not _NAME.match(model_name):
        raise ArchiverError("Model name contains special characters.\nThe allowed regular expression filter for "
                            "model name is: ^[A-Za-z0-9][A-Za-z0-9_\\-.]*$")
    if not os.path.isdir(os.path.abspath(export_path)):
        raise ArchiverError(f"Given export-path {export_path} is not a directory. Point to a valid export-path "
                            "directory.")
    if not os.path.isdir(os.path.abspath(model_path)):
        raise ArchiverError(f"Given model-path {model_path} is not a valid directory. Point to a valid model-path "
                            "directory.")
    target = os.path.join(export_path, model_name + SUFFIXES[archive_format])
    if os.path.exists(target):
        if not force:
            raise ArchiverError(f"{target} already exists.\nPlease specify --force/-f option to overwrite the model "
                                "archive output file.\nSee -h/--help for more details.")
        logger.warning("Overwriting %s ...", target)
    text = manifest(model_name, handler, runtime)
    if archive_format == "no-archive":
        _copy_folder(model_path, target, text)
    elif archive_format == "tgz":
        _write_tgz(model_path, target, model_name, text)
    else:
        _write_mar(model_path, target, text)
    return target


def _files(model_path: str) -> Iterator[tuple[str, str]]:
    """(absolute path, path relative to the model folder) of every file model-archiver keeps."""
    for root, directories, files in os.walk(model_path):
        directories[:] = sorted(d for d in directories if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name == MANIFEST_FILE or name.endswith((".pyc", ".DS_Store", ".mar")):
                continue
            path = os.path.join(root, name)
            yield path, os.path.relpath(path, model_path)


def _copy_folder(model_path: str, target: str, text: str) -> None:
    if os.path.realpath(model_path) != os.path.realpath(target):
        for path, relative in _files(model_path):
            destination = os.path.join(target, relative)
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            shutil.copy(path, destination)
    os.makedirs(os.path.join(target, MANIFEST_DIR), exist_ok=True)
    with open(os.path.join(target, MANIFEST_DIR, MANIFEST_FILE), "w") as f:
        f.write(text)


def _write_tgz(model_path: str, target: str, model_name: str, text: str) -> None:
    with tarfile.open(target, "w:gz") as archive:
        for path, relative in _files(model_path):
            archive.add(path, arcname=os.path.join(model_name, relative))
        data = text.encode("utf-8")
        info = tarfile.TarInfo(os.path.join(model_name, MANIFEST_DIR, MANIFEST_FILE))
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))


def _write_mar(model_path: str, target: str, text: str) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, relative in _files(model_path):
            archive.write(path, relative)
        archive.writestr(os.path.join(MANIFEST_DIR, MANIFEST_FILE), text)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="%(levelname)s - %(message)s")
    args = parser().parse_args(argv)
    if args.convert:
        logger.warning("--convert is accepted and ignored: ONNX models are not converted")
    try:
        target = export(args.model_name, args.model_path, args.handler, args.export_path, args.archive_format,
                        args.force, args.runtime)
    except ArchiverError as exc:
        logger.error("%s", exc)
        return 1
    logger.info("Successfully exported model %s to file %s", args.model_name, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())

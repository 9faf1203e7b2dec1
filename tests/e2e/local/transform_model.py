"""The model the transform tests serve (copied to ``code/inference.py``) and apply record by record in-process.

CSV: one output line per input line, the sum of its columns (a row starting with ``poison`` is refused with 400).
JSON Lines: ``{"score": sum(features)}`` per line. RecordIO: the length of each record's data, one per line.
"""

import json
import os
import struct

from sagemaker_inference import errors


def model_fn(model_dir):
    return "summing"


def execution_parameters_fn():
    wanted = os.environ.get("TEST_EXECUTION_PARAMETERS")
    return json.loads(wanted) if wanted else {}


def _csv(line):
    columns = line.split(",")
    if columns[0] == "poison":
        raise errors.GenericInferenceToolkitError(400, f"poisoned record: {line}")
    return repr(round(sum(float(c) for c in columns), 6))


def _json(line):
    return json.dumps({"score": round(sum(json.loads(line)["features"]), 6)})


def _recordio(data):
    lengths, offset = [], 0
    while offset < len(data):
        _, word = struct.unpack_from("<II", data, offset)
        length = word & ((1 << 29) - 1)
        lengths.append(str(length))
        offset += 8 + ((length + 3) & ~3)
    return lengths


def transform_fn(model, data, content_type, accept):
    if content_type == "application/x-recordio":
        return "\n".join(_recordio(bytes(data))) + "\n", "text/plain"
    if content_type == "text/x-environment":
        return json.dumps({k: v for k, v in os.environ.items() if k.startswith("SAGEMAKER_")}), "application/json"
    text = data.decode() if isinstance(data, (bytes, bytearray)) else data
    lines = [line for line in text.split("\n") if line.strip()]
    if content_type == "text/csv":
        return "\n".join(_csv(line) for line in lines) + "\n", "text/csv"
    return "\n".join(_json(line) for line in lines) + "\n", "application/jsonlines"

"""JSON log formatting: fields, extras, tracebacks, and the line writer that wraps user output."""

from __future__ import annotations

import io
import json
import logging

from sagemaker_inference.server.observability.jsonlog import JsonFormatter, LineWriter


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("my.logger", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def test_fields_and_extras():
    line = JsonFormatter().format(_record("loaded %s in %d ms", "m", 12, ModelLoadingTime=12000, model="m"))
    record = json.loads(line)
    assert record["level"] == "WARNING" and record["logger"] == "my.logger"
    assert record["message"] == "loaded m in 12 ms"
    assert record["ModelLoadingTime"] == 12000 and record["model"] == "m"
    assert "request_id" not in record  # unknown: left out, not null


def test_context_fills_what_the_record_does_not_say():
    formatter = JsonFormatter(lambda: ("id-1", "model-a"))
    assert json.loads(formatter.format(_record("x")))["request_id"] == "id-1"
    own = json.loads(formatter.format(_record("x", request_id="id-2")))
    assert (own["request_id"], own["model"]) == ("id-2", "model-a")


def test_exception_is_one_field():
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        record = logging.LogRecord("l", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    parsed = json.loads(JsonFormatter().format(record))
    assert parsed["message"] == "failed"
    assert "ValueError: bad" in parsed["exception"]


def test_line_writer_waits_for_whole_lines():
    target = io.StringIO()
    writer = LineWriter(target, "user.stdout", context=lambda: ("rid", "m"))
    writer.write("hel")
    assert target.getvalue() == ""
    writer.write("lo\nsecond\r\nthi")
    writer.flush()
    records = [json.loads(line) for line in target.getvalue().splitlines()]
    assert [r["message"] for r in records] == ["hello", "second", "thi"]
    assert {(r["logger"], r["request_id"], r["model"]) for r in records} == {("user.stdout", "rid", "m")}


def test_line_writer_is_a_text_stream_for_print():
    target = io.StringIO()
    print("a", 1, {"b": 2}, file=LineWriter(target, "user.stderr", "INFO"))
    assert json.loads(target.getvalue())["message"] == "a 1 {'b': 2}"


def test_line_writer_hands_out_the_real_binary_stream_and_descriptor():
    import sys

    writer = LineWriter(sys.__stderr__, "user.stderr")
    assert writer.buffer is sys.__stderr__.buffer
    assert writer.fileno() == sys.__stderr__.fileno()


def test_text_lines_name_their_request_and_only_then():
    from sagemaker_inference.server.logs import TextFormatter

    plain = TextFormatter()
    assert plain.format(_record("ready")).endswith("[WARNING] my.logger: ready")
    assert plain.format(_record("done", request_id="r-1")).endswith("[WARNING] my.logger (request r-1): done")
    in_batch = TextFormatter(lambda: ("r-2,r-3", "m"))
    assert in_batch.format(_record("x")).endswith("my.logger (request r-2,r-3): x")

"""The transform's pure rules: JSONPath subset, splitting, packing, joins, precedence."""

from __future__ import annotations

import gzip
import io
import json
import struct

import pytest

from sagemaker_inference.local.transform import records
from sagemaker_inference.local.transform.config import JobSettings, TransformConfigError, resolve
from sagemaker_inference.local.transform.dataprocessing import DataProcessing, DataProcessingError, split_output
from sagemaker_inference.local.transform.jsonpath import JSONPathError, parse


@pytest.mark.parametrize("path, value, expected", [
    ("$", {"a": 1}, {"a": 1}),
    ("$.a", {"a": 1}, 1),
    ("$['a']", {"a": 1}, 1),
    ("$.a.b[1]", {"a": {"b": [5, 6]}}, 6),
    ("$[-1]", [1, 2, 3], 3),
    ("$[1:]", [1, 2, 3], [2, 3]),
    ("$[:2]", [1, 2, 3], [1, 2]),
    ("$[0,-1]", [1, 2, 3], [1, 3]),
    ("$['id','x']", {"id": 1, "x": 2, "y": 3}, [1, 2]),
    ("$.features[*]", {"features": [1, 2]}, [1, 2]),
    ("$.*", {"a": 1, "b": 2}, [1, 2]),
    ("$.SageMakerOutput.score", {"SageMakerOutput": {"score": 0.5}}, 0.5),
])
def test_jsonpath_subset(path, value, expected):
    assert parse(path).apply(value) == expected


@pytest.mark.parametrize("path", ["a", "$..a", "$[?(@.a)]", "$.a(", "$[x]", "$[1:b]", "$["])
def test_jsonpath_outside_the_subset_is_refused(path):
    with pytest.raises(JSONPathError):
        parse(path)


def test_jsonpath_that_matches_nothing_is_an_error():
    with pytest.raises(JSONPathError, match="matches nothing"):
        parse("$.missing").apply({"a": 1})
    assert parse("$[5:]").apply([1]) == []


def test_lines_skip_blank_lines_and_strip_crlf():
    stream = io.BytesIO(b"a,1\r\n\nb,2\n   \nc,3")
    assert list(records.lines(stream, 100)) == [b"a,1", b"b,2", b"c,3"]


def test_line_over_the_limit_is_refused_without_reading_it_whole():
    stream = io.BytesIO(b"ok\n" + b"x" * 1000 + b"\n")
    splitter = records.lines(stream, 10)
    assert next(splitter) == b"ok"
    with pytest.raises(records.RecordError, match="line 2"):
        next(splitter)
    assert stream.tell() < 20  # read the limit and a little, not the whole line


def test_whole_object_limit():
    assert list(records.whole(io.BytesIO(b"12345"), 5)) == [b"12345"]
    with pytest.raises(records.RecordError, match="MaxPayloadInMB"):
        list(records.whole(io.BytesIO(b"123456"), 5))


def _rec(data: bytes, flag: int = 0) -> bytes:
    return struct.pack("<II", records.RECORDIO_MAGIC, (flag << 29) | len(data)) + data + b"\0" * (-len(data) % 4)


def test_recordio_split_keeps_framing_and_joins_multipart_records():
    data = _rec(b"abc") + _rec(b"part1", 1) + _rec(b"part2", 2) + _rec(b"end", 3) + _rec(b"")
    got = list(records.recordio(io.BytesIO(data), 1000))
    assert got == [_rec(b"abc"), _rec(b"part1", 1) + _rec(b"part2", 2) + _rec(b"end", 3), _rec(b"")]
    with pytest.raises(records.RecordError, match="magic"):
        list(records.recordio(io.BytesIO(b"\0" * 8), 1000))
    with pytest.raises(records.RecordError, match="ends inside"):
        list(records.recordio(io.BytesIO(_rec(b"abcdef")[:-3]), 1000))


def test_gzip_input_object(tmp_path):
    path = tmp_path / "a.gz"
    path.write_bytes(gzip.compress(b"1\n2\n3\n"))
    source = records.InputObject(str(path), gzipped=True)
    assert list(records.lines(source.stream, 10)) == [b"1", b"2", b"3"]
    assert source.position() == path.stat().st_size
    source.close()


def test_multirecord_packs_up_to_the_limit_in_order():
    rows = [b"x" * 3 for _ in range(10)]  # 3 bytes each, "\n"-joined: 3 fit in 11 bytes
    packed = list(records.pack(iter(rows), lambda r: r, True, 11, b"\n"))
    assert [len(r.records) for r in packed] == [3, 3, 3, 1]
    assert [r.first for r in packed] == [1, 4, 7, 10]
    assert all(len(r.payload) <= 11 for r in packed)
    assert packed[0].label == "records 1-3" and packed[3].label == "record 10"
    single = list(records.pack(iter(rows), lambda r: r.upper(), False, 11, b"\n"))
    assert [r.payload for r in single] == [b"XXX"] * 10


def _job(**settings):
    return resolve(JobSettings(**settings), {})


def test_csv_join_and_filters():
    processing = DataProcessing(_job(content_type="text/csv", split_type="Line", join_source="Input",
                                     input_filter="$[1:]", output_filter="$[0,-1]"))
    assert processing.filter_input(b"id7,1,2") == b"1,2"
    assert processing.finish(b"id7,1,2", b"0.9") == b"id7,0.9"
    assert processing.filter_input(b'"a,b",1') == b"1"  # quoted commas are one column


def test_json_join_shapes():
    processing = DataProcessing(_job(content_type="application/jsonlines", split_type="Line", join_source="Input"))
    assert json.loads(processing.finish(b'{"a":1}', b'{"s":2}')) == {"a": 1, "SageMakerOutput": {"s": 2}}
    assert json.loads(processing.finish(b"[1,2]", b"0.5")) == {"SageMakerInput": [1, 2], "SageMakerOutput": 0.5}
    assert json.loads(processing.finish(b'{"a":1}', b"not json")) == {"a": 1, "SageMakerOutput": "not json"}
    with pytest.raises(DataProcessingError):
        processing.finish(b"{broken", b"1")


def test_split_output_lines_or_a_json_array():
    assert split_output(b"1\n2\n3\n", 3) == [b"1", b"2", b"3"]
    assert split_output(b"[[1],[2]]", 2) == [b"[1]", b"[2]"]
    with pytest.raises(DataProcessingError, match="2 record"):
        split_output(b"1\n2\n", 3)


def test_precedence_flags_then_container_then_defaults():
    assert _job().batch_strategy == "SingleRecord"
    answer = {"BatchStrategy": "MULTI_RECORD", "MaxConcurrentTransforms": 4, "MaxPayloadInMB": 2}
    job = resolve(JobSettings(), answer)
    assert (job.batch_strategy, job.max_concurrent_transforms, job.max_payload) == ("MultiRecord", 4, 2 * 1024 ** 2)
    job = resolve(JobSettings(batch_strategy="SingleRecord", max_payload_mb=1), answer)
    assert (job.batch_strategy, job.max_concurrent_transforms, job.max_payload) == ("SingleRecord", 4, 1024 ** 2)
    job = resolve(JobSettings(), {"MaxConcurrentTransforms": "lots", "MaxPayloadInMB": 0})
    assert (job.max_concurrent_transforms, job.max_payload) == (1, 6 * 1024 ** 2)


@pytest.mark.parametrize("settings, flag", [
    ({"split_type": "TFRecord"}, "--split-type"),
    ({"max_payload_mb": 101}, "--max-payload"),
    ({"max_concurrent_transforms": 0}, "--max-concurrent-transforms"),
    ({"input_filter": "$..x", "content_type": "text/csv"}, "--input-filter"),
    ({"join_source": "Input", "content_type": "image/png"}, "--content-type"),
    ({"join_source": "Input", "content_type": "text/csv"}, "--split-type Line"),
    ({"join_source": "Input", "split_type": "RecordIO"}, "RecordIO"),
])
def test_bad_settings_name_the_flag(settings, flag):
    with pytest.raises(TransformConfigError, match=flag):
        _job(**settings)

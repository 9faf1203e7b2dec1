"""docs/streaming.md's examples run as written: each ``<!-- example: name -->`` block is served as a
model's ``code/inference.py`` and its ``<!-- client: name -->`` block is run against the real server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "streaming.md"
BLOCK = re.compile(r"<!-- (example|client): (\w+) -->\n```python\n(.*?)```", re.S)
ENV = {"chat": {"SAGEMAKER_ENABLE_STATEFUL_SESSIONS": "true"}}


def blocks() -> dict[tuple[str, str], str]:
    return {(kind, name): code for kind, name, code in BLOCK.findall(DOC.read_text())}


def test_every_example_has_a_client():
    found = blocks()
    examples = {name for kind, name in found if kind == "example"}
    assert examples == {name for kind, name in found if kind == "client"} == {"sse", "echo", "chat"}


@pytest.mark.parametrize("name", ["sse", "echo", "chat"])
def test_example_runs(name, serve, model_dir, capsys):
    found = blocks()
    server = serve("--model-dir", str(model_dir(found[("example", name)], name=name)), workers=2,
                   env=ENV.get(name))
    exec(compile(found[("client", name)], f"docs/streaming.md:{name}", "exec"), {"URL": server.url})
    assert capsys.readouterr().out.strip()

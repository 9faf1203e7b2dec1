"""The quickstart's commands, run as written against the real server (``--example``), with the
outputs the page shows compared to what they print: the curl lines, the Python block with httpx,
and the same block with ``requests`` as the page says to adapt it. Examples under ``examples/``
are run by ``test_examples.py``; here, that they do not share a directory."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "docs" / "quickstart.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", QUICKSTART.read_text(), re.S)


def _curl_examples() -> list[tuple[str, str]]:
    """``(command, expected output)`` for each curl call of the page: the output is the comment
    after it (on its line or on the ``#`` lines that follow)."""
    (block,) = [b for b in _blocks("bash") if "curl" in b]
    examples: list[tuple[str, list[str]]] = []
    lines = block.replace("\\\n", " ").splitlines()
    for line in lines:
        if line.startswith("curl"):
            command, _, comment = line.partition("  #")
            examples.append((command.strip(), []))
            if comment.strip() and ":" not in comment:
                examples[-1][1].append(comment.strip())
        elif line.startswith("#") and examples:
            examples[-1][1].append(line[2:])
    return [(command, "\n".join(expected)) for command, expected in examples]


@pytest.fixture(scope="module")
def example_server():
    from tests.e2e.serverproc import ServerProcess

    server = ServerProcess(["--example", "--workers", "1"])
    try:
        yield server.wait_ready()
    finally:
        server.stop()


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_curl_lines_print_what_the_page_shows(example_server):
    examples = _curl_examples()
    assert len(examples) == 3
    for command, expected in examples:
        command = command.replace("localhost:8080", f"127.0.0.1:{example_server.port}")
        result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
        assert result.stdout.strip() == expected.strip(), command


@pytest.mark.parametrize("client", ["httpx", "requests"])
def test_the_python_block_prints_what_the_page_shows(example_server, client):
    pytest.importorskip(client)
    (code,) = [b for b in _blocks("python") if "invocations" in b]
    code = code.replace("localhost:8080", f"127.0.0.1:{example_server.port}")
    if client == "requests":  # as the page says: the same calls, data= for the raw body
        code = code.replace("import httpx", "import requests").replace("httpx.", "requests.")
        code = code.replace("content=", "data=")
    expected = [line.split("# ", 1)[1].strip() for line in code.splitlines() if line.startswith("print(")]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert [line.strip() for line in result.stdout.splitlines()] == expected


def test_every_example_writes_to_its_own_directory():
    """Each example's README and scripts name directories no other example uses, so that a
    leftover ``code/inference.py`` of one never answers for another."""
    owners: dict[str, set[str]] = {}
    for path in (ROOT / "examples").rglob("*"):
        if path.is_file() and path.suffix in (".md", ".py", "") and path.parent != ROOT / "examples":
            example = path.relative_to(ROOT / "examples").parts[0]
            for directory in re.findall(r"(/tmp/[\w.-]+)", path.read_text(errors="replace")):
                owners.setdefault(directory, set()).add(example)
    shared = {d: sorted(e) for d, e in owners.items() if len(e) > 1}
    assert owners and not shared, shared

"""The subcommands' usage errors: one line naming the flag, exit code 2 (nothing is started)."""

from __future__ import annotations

import pytest

from sagemaker_inference.server.cli import main


@pytest.mark.parametrize("argv, message", [
    (["runtime"], "at least one --endpoint"),
    (["runtime", "--endpoint", "no-url"], "--endpoint 'no-url'"),
    (["runtime", "--endpoint", "a=http://h:1", "--model-data", "/tmp"], "--model-data and --model-root"),
    (["runtime", "--endpoint", "a=http://h:1", "--invocation-timeout", "0"], "--invocation-timeout"),
    (["transform", "--endpoint-url", "http://h:1", "--input", "/nonexistent", "--output", "/tmp"], "no such file"),
    (["transform", "--endpoint-url", "http://h:1", "--input", "/", "--output", "/tmp", "--max-payload", "500"],
     "--max-payload"),
])
def test_usage_errors_exit_2_with_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_transform_needs_a_container(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["transform", "--input", "x", "--output", "y"])
    assert exited.value.code == 2
    assert "--endpoint-url" in capsys.readouterr().err

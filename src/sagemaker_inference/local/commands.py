"""The local-SageMaker subcommands, hooked into ``sagemaker-inference`` by ``server/cli.py`` with one call."""

from __future__ import annotations

import argparse

NAMES = ("runtime", "transform")


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from sagemaker_inference.local.runtime import cli as runtime_cli
    from sagemaker_inference.local.transform import cli as transform_cli

    runtime_cli.register(commands)
    transform_cli.register(commands)

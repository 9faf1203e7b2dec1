"""The seed README's container entrypoint does ``from sagemaker_inference import log, utils``."""

from __future__ import annotations


def test_log_is_an_alias_of_logging():
    from sagemaker_inference import log, logging, utils

    assert log.get_logger() is logging.get_logger()
    assert log.get_logger().name == "sagemaker-inference"
    assert callable(utils.parse_accept)

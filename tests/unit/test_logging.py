from __future__ import annotations

import logging as stdlib_logging

from sagemaker_inference import logging


def test_get_logger_name():
    assert logging.get_logger() is stdlib_logging.getLogger("sagemaker-inference")


def test_configure_logger_adds_a_stream_handler_each_call():
    logger = logging.get_logger()
    before = list(logger.handlers)
    try:
        logging.configure_logger()
        logging.configure_logger()
        added = [h for h in logger.handlers if h not in before]
        assert len(added) == 2
        assert all(isinstance(h, stdlib_logging.StreamHandler) for h in added)
        assert added[0].formatter._fmt == "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
        assert logger.level == stdlib_logging.NOTSET
    finally:
        logger.handlers[:] = before

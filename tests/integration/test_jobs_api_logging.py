"""The jobs API logs at INFO, the level it is deployed with, without clashing with LogRecord's own fields."""

from __future__ import annotations

import logging

import pytest


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_jobs_api_logs_at_info(stack, method):
    from transcode_core.observability import logger

    previous = logger.log_level
    logger.setLevel(logging.INFO)
    try:
        assert stack.track("xvid", "559cbbec14ea67a7cad6d7d8") == 201
        assert stack.jobs_api(method, "xvid", "559cbbec14ea67a7cad6d7d8")[0] in (200, 204)
    finally:
        logger.setLevel(previous)

"""Structured JSON logs carry the request id and trace id of the request they belong to."""

from __future__ import annotations

import json
import logging

import pytest

from telemetry_platform.logging import JsonFormatter, RequestContextFilter
from tests.factories import audit_event, batch

pytestmark = pytest.mark.django_db


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_log_lines_are_json_with_request_and_trace_ids(ingest_client):
    """A warning logged while serving a request names that request and its trace."""
    handler = Capture()
    logger = logging.getLogger("ingest")
    logger.addHandler(handler)
    try:
        from unittest import mock

        with mock.patch("ingest.ratelimit._script", side_effect=__import__("redis").RedisError):
            ingest_client.post(
                batch(audit_event()),
                HTTP_X_REQUEST_ID="req-log-1",
                HTTP_TRACEPARENT="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
    finally:
        logger.removeHandler(handler)
    entries = [json.loads(line) for line in handler.lines]
    warning = next(e for e in entries if "rate limiter unavailable" in e["message"])
    assert warning["request_id"] == "req-log-1"
    assert warning["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert warning["level"] == "WARNING" and warning["logger"] == "ingest.ratelimit"


def test_error_responses_are_logged_once_with_request_and_trace_ids(client):
    """Django's "Not Found" line is written while the request's ids are in force, and once."""
    handler = Capture()
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        response = client.get(
            "/no-such-page?actor=someone",
            HTTP_X_REQUEST_ID="req-log-404",
            HTTP_TRACEPARENT="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 404
    entries = [json.loads(line) for line in handler.lines]
    assert [(e["message"], e["request_id"], e["trace_id"]) for e in entries] == [
        ("Not Found: /no-such-page", "req-log-404", "4bf92f3577b34da6a3ce929d0e0e4736")
    ]

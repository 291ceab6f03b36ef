"""Structured JSON logs: one object per line, with the request id and trace id in force."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
trace_id_var: ContextVar[str] = ContextVar("trace_id", default="")


def _no_span_trace_id() -> str:
    return ""


# Tracing (telemetry_platform.tracing) installs a source reading the active span, so a log
# line names the same trace as the span it was written under, even without a traceparent.
_span_trace_id: Callable[[], str] = _no_span_trace_id


def set_span_trace_id_source(source: Callable[[], str]) -> None:
    """Read trace ids from ``source`` (the active span's, hex) before the traceparent header's."""
    global _span_trace_id
    _span_trace_id = source


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` and ``trace_id`` of the current request (or task) to records."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Return True always: the filter only annotates."""
        record.request_id = request_id_var.get()
        record.trace_id = _span_trace_id() or trace_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object. Messages are the platform's own wording:
    no event value ever reaches a log line (see the leak tests)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", ""),
            "trace_id": getattr(record, "trace_id", ""),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)

"""Structured JSON logs: one object per line, with the request id and trace id in force."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
trace_id_var: ContextVar[str] = ContextVar("trace_id", default="")


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` and ``trace_id`` of the current request (or task) to records."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Return True always: the filter only annotates."""
        record.request_id = request_id_var.get()
        record.trace_id = trace_id_var.get()
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

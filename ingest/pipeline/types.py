"""The values that travel the ingest pipeline: frozen, built once, never patched."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from typing import Any


class BatchError(Exception):
    """The request as a whole cannot be processed (nothing stored).

    It carries a code from ``ingest.codes.BatchCode``; the entry point that received the
    request decides how to answer it (ingest/api/steps.py maps codes to HTTP statuses).
    """

    def __init__(self, code: str, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class RetryableError(Exception):
    """The store is unavailable or too slow; the client should retry the whole batch later."""


class StoreRefusedError(Exception):
    """The store refused the batch for a reason a retry cannot change (a data error or a
    constraint other than the dedupe key): a server-side fault, never answered "retry"."""


@dataclass(frozen=True)
class KeyScope:
    """What an API key may send; an empty set allows anything."""

    sources: frozenset[str] = frozenset()
    surfaces: frozenset[str] = frozenset()
    event_classes: frozenset[str] = frozenset()
    schemas: tuple[str, ...] = ()

    def allows_schema(self, schema: str, event_class: str) -> bool:
        """Return True if the key may send events of ``schema`` (class ``event_class``)."""
        if self.event_classes and event_class not in self.event_classes:
            return False
        if not self.schemas:
            return True
        return any(
            schema.startswith(allowed[:-1]) if allowed.endswith("*") else schema == allowed
            for allowed in self.schemas
        )

    def allows_origin(self, source: str, surface: str) -> bool:
        """Return True if the key may send events from ``source`` and ``surface``."""
        if self.sources and source not in self.sources:
            return False
        return not self.surfaces or surface in self.surfaces


@dataclass(frozen=True)
class IngestContext:
    """Facts of the request that events inherit: the key's source and scope, request ids."""

    source: str
    request_id: str = ""
    received_at: datetime = dataclass_field(default_factory=lambda: datetime.now(UTC))
    scope: KeyScope = KeyScope()
    # From a valid W3C traceparent header; applied to events that carry no trace of their own.
    trace_id: str = ""


@dataclass(frozen=True)
class RawItem:
    """One event as decoded from the batch: its schema name and body (dict or bytes)."""

    schema: str
    body: Any


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one event was refused; ``field`` and ``message`` never carry its values."""

    code: str
    message: str
    field: str = ""


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    """A validated, redacted event ready to be written, with what it will be counted as."""

    event_class: str
    schema_revision_id: int
    schema_name: str
    schema_version: int
    source: str
    event_id: str
    occurred_at: datetime
    request_id: str
    trace_id: str
    actor_hash: str
    payload: dict[str, Any]
    payload_json: str  # the payload encoded once, as stored
    warnings: tuple[str, ...] = ()
    redactions: tuple[tuple[str, str], ...] = ()
    metrics: tuple = ()  # the plan's compiled aggregate metrics
    # One-way hashes of the people the event names (its hashed and pseudonymous-id fields
    # and the actor): the indexed column data-subject requests find events by.
    subject_hashes: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, str, datetime]:
        """The dedupe key: the same event sent twice has the same key."""
        return (self.event_class, self.source, self.event_id, self.occurred_at)


@dataclass(frozen=True, slots=True)
class EventResult:
    """The answer for one event of a batch."""

    index: int
    status: str  # accepted | duplicate | rejected
    event_id: str = ""
    code: str = ""
    field: str = ""
    message: str = ""
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The event's entry in the API answer."""
        if self.event_id and not self.warnings and self.status != "rejected":
            return {"index": self.index, "status": self.status, "event_id": self.event_id}
        data: dict[str, Any] = {"index": self.index, "status": self.status}
        if self.event_id:
            data["event_id"] = self.event_id
        if self.status == "rejected":
            data.update(code=self.code, field=self.field, message=self.message)
        if self.warnings:
            data["warnings"] = list(self.warnings)
        return data


@dataclass(frozen=True)
class BatchResult:
    """The answers for a whole batch, in the order of its events."""

    results: tuple[EventResult, ...]

    def totals(self) -> dict[str, int]:
        """How many events were received, accepted, duplicates and rejected."""
        counts = {"received": len(self.results), "accepted": 0, "duplicate": 0, "rejected": 0}
        for result in self.results:
            counts[result.status] += 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        """The API answer: the totals and one entry per event."""
        return {**self.totals(), "results": [result.as_dict() for result in self.results]}

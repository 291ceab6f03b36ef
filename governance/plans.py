"""Compiled schema plans: everything ingest needs to take one schema's events, as plain data.

Built by the plan cache in selectors.py (which reads the database); the pipeline reads
them and imports nothing else of governance's state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from google.protobuf.message import Message

from .choices import RevisionStatus
from .envelope import EnvelopeReader
from .metric_plans import CompiledMetric
from .redaction import RedactionPlan
from .schemas import CompiledSchema


@dataclass(frozen=True)
class SchemaPlan:
    """Everything ingest needs to validate one schema's events, compiled once per revision."""

    schema_name: str
    event_class: str
    retention_days: int
    revision_id: int
    version: int
    status: str
    compiled: CompiledSchema
    roles: Mapping[str, str]
    redaction: RedactionPlan
    # Proto3 JSON fast path: the message, or None when ParseDict must decide.
    json_parser: Callable[[dict], Message | None]
    # Getters of the envelope facts (event id, time, source, actor, ...) by field role.
    envelope: EnvelopeReader
    # Aggregate metrics computed from this schema's accepted events.
    metrics: tuple[CompiledMetric, ...] = ()
    # The stored payload: MessageToDict (proto field names) of the redacted message, compiled.
    dict_renderer: Callable[[Message], dict] | None = None

    @property
    def deprecated(self) -> bool:
        return self.status == RevisionStatus.DEPRECATED


@dataclass(frozen=True)
class SchemaRefusal:
    """Why a schema name cannot take events right now (no ingestible revision)."""

    code: str
    message: str

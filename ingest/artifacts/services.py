"""Writes of the artifact lanes: parse an artifact, send its events through the one pipeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from governance.selectors import SchemaRefusal, schema_plans
from ingest.pipeline import IngestContext, ingest_batch
from telemetry_platform.conf import telemetry_settings

from .common import (
    ArtifactCode,
    ArtifactError,
    ArtifactItem,
    ArtifactReport,
    ItemResult,
    ParsedArtifact,
)
from .diagnostics import diagnostics_snapshot_parse
from .jsonl import jsonl_parse
from .perf_signoff import perf_signoff_parse

PERF_SIGNOFF = "perf-signoff"
DIAGNOSTICS = "diagnostics"
JSONL = "jsonl"
ARTIFACT_KINDS = (PERF_SIGNOFF, DIAGNOSTICS, JSONL)


def parsed_artifact_ingest(
    *, parsed: ParsedArtifact, kind: str, context: IngestContext
) -> ArtifactReport:
    """Send a parsed artifact's events through ``ingest_batch`` (validation, redaction,
    dedupe, retention), in batches of at most TELEMETRY_MAX_EVENTS_PER_BATCH; answer one
    result per item, refused parts included, in artifact order.

    Each batch commits on its own: a RetryableError in a later batch leaves the earlier
    ones stored, and re-sending the artifact answers them ``duplicate``.
    """
    refused = {id(entry) for entry in parsed.items if _holds_nul(entry.item.body)}
    items = [entry for entry in parsed.items if id(entry) not in refused]
    answers: dict[int, ItemResult] = {
        key: ItemResult(
            ref=entry.ref,
            status="rejected",
            line=entry.line,
            code=ArtifactCode.INVALID_VALUE,
            message="holds a NUL character, which the store cannot keep",
        )
        for entry in parsed.items
        if (key := id(entry)) in refused
    }
    size = max(1, telemetry_settings.MAX_EVENTS_PER_BATCH)
    for start in range(0, len(items), size):
        chunk = items[start : start + size]
        batch = ingest_batch([entry.item for entry in chunk], context)
        for entry, result in zip(chunk, batch.results, strict=True):
            answers[id(entry)] = ItemResult(
                ref=entry.ref,
                status=result.status,
                line=entry.line,
                event_id=result.event_id,
                code=result.code,
                field=result.field,
                message=result.message,
            )
    results = []
    for entry in parsed.entries:
        if isinstance(entry, ArtifactItem):
            results.append(answers[id(entry)])
        else:
            results.append(
                ItemResult(
                    ref=entry.ref,
                    status="rejected",
                    line=entry.line,
                    code=entry.code,
                    message=entry.message,
                )
            )
    return ArtifactReport(
        kind=kind, results=results, warnings=list(parsed.warnings), facts=dict(parsed.facts)
    )


def _holds_nul(body: object) -> bool:
    # PostgreSQL text and jsonb cannot hold U+0000: refuse the item rather than fail its batch.
    return "\\u0000" in json.dumps(body)


def perf_signoff_ingest(
    *, content: bytes, context: IngestContext, source: str = ""
) -> ArtifactReport:
    """Ingest a release sign-off artifact: one performance_budget_sample per measured value.

    Event ids derive from build id and metric path, so re-ingesting the artifact answers
    every sample ``duplicate``. ``source`` (else the context's) is recorded on each sample.
    """
    parsed = perf_signoff_parse(content, source=source)
    return parsed_artifact_ingest(parsed=parsed, kind=PERF_SIGNOFF, context=context)


def diagnostics_snapshot_ingest(
    *,
    content: bytes,
    context: IngestContext,
    service: str = "",
    instance: str = "",
    source: str = "",
) -> ArtifactReport:
    """Ingest a delivery diagnostics snapshot: one service_metric event per counter."""
    parsed = diagnostics_snapshot_parse(
        content,
        now=context.received_at.astimezone(UTC),
        service=service,
        instance=instance,
        source=source,
        prefix=telemetry_settings.DIAGNOSTICS_METRIC_PREFIX,
    )
    return parsed_artifact_ingest(parsed=parsed, kind=DIAGNOSTICS, context=context)


def jsonl_artifact_ingest(*, content: bytes, schema: str, context: IngestContext) -> ArtifactReport:
    """Ingest each line of a JSONL artifact as an event of ``schema``; answers by line number."""
    schema_plans.refresh()
    name, _, pinned = schema.partition("@")
    plan = schema_plans.get(name, int(pinned) if pinned.isdigit() else None)
    if plan is None or (pinned and not pinned.isdigit()):
        raise ArtifactError(
            ArtifactCode.UNKNOWN_SCHEMA, f"no schema is registered as {schema!r}", field="schema"
        )
    if isinstance(plan, SchemaRefusal):
        raise ArtifactError(plan.code, f"{schema}: {plan.message}", field="schema")
    parsed = jsonl_parse(content, schema=schema)
    if not parsed.entries:
        raise ArtifactError(ArtifactCode.EMPTY_ARTIFACT, "the file has no lines")
    return parsed_artifact_ingest(parsed=parsed, kind=JSONL, context=context)


def cli_context(*, source: str) -> IngestContext:
    """The ingest context of an operator's command: no key scope, a request id of its own."""
    import uuid

    return IngestContext(
        source=source, request_id=f"cli-{uuid.uuid4().hex}", received_at=datetime.now(UTC)
    )

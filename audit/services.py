"""The only write path for audit events: the platform records its own actions here."""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from governance.defaults import PLATFORM_AUDIT_SCHEMA, PLATFORM_SOURCE


def audit_event_record(
    *,
    event_name: str,
    actor: AbstractBaseUser | None,
    outcome: str = "success",
    attributes: Mapping[str, str] | None = None,
    request_id: str = "",
) -> bool:
    """Write one platform audit event (source ``platform``) in the caller's transaction.

    It travels the same pipeline as ingested audit events, so the same validation and
    field policies apply. Return False when the audit schema is not registered yet
    (only during the very first configuration load).
    """
    from ingest import pipeline  # the pipeline imports governance, which imports us

    occurred_at = timezone.now()
    event = {
        "event_name": event_name,
        "outcome": outcome,
        "occurred_at": occurred_at.isoformat().replace("+00:00", "Z"),
        "attributes": dict(attributes or {}),
        "source": PLATFORM_SOURCE,
    }
    if request_id:
        event["request_id"] = request_id
    if actor is not None and actor.is_authenticated:
        event["user_id"] = actor.get_username()
    context = pipeline.IngestContext(source=PLATFORM_SOURCE, request_id=request_id)
    pipeline.schema_plans.refresh(throttle=False)
    prepared = pipeline.prepare_event(pipeline.RawItem(PLATFORM_AUDIT_SCHEMA, event), context)
    if isinstance(prepared, pipeline.Rejection):
        if prepared.code == "unknown_schema":
            return False
        raise ValueError(f"platform audit event refused: {prepared.code} at {prepared.field}")
    pipeline.persist_events([prepared], context)
    return True

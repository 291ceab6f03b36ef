"""The platform's own audit events: what it did, by whom, written through the pipeline.

They take the same path as ingested audit events (validation, field policies, the
chain), in the caller's transaction. Governance records its changes through
``governance.ports`` (this module is installed there when the ingest app loads).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from governance.defaults import PLATFORM_AUDIT_SCHEMA, PLATFORM_SOURCE
from governance.selectors import schema_plans

from .codes import RejectCode
from .pipeline import IngestContext, RawItem, Rejection, persist_events, prepare_event


def audit_event_record(
    *,
    event_name: str,
    actor: AbstractBaseUser | None,
    outcome: str = "success",
    attributes: Mapping[str, str] | None = None,
    request_id: str = "",
) -> bool:
    """Write one platform audit event (source ``platform``) in the caller's transaction.

    Return False when the audit schema is not registered yet (only during the very first
    configuration load); raise if the event is refused, so an unrecorded action fails.
    """
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
    context = IngestContext(source=PLATFORM_SOURCE, request_id=request_id)
    schema_plans.refresh(throttle=False)
    prepared = prepare_event(RawItem(PLATFORM_AUDIT_SCHEMA, event), context)
    if isinstance(prepared, Rejection):
        if prepared.code == RejectCode.UNKNOWN_SCHEMA:
            return False
        raise ValueError(f"platform audit event refused: {prepared.code} at {prepared.field}")
    persist_events([prepared], context)
    return True

"""Records of who looked at audit data: searches, exports, correlation lookups and denials.

Each is a platform audit event (identifiers in hashed form) and a counter, the same for
the admin and the API.
"""

from __future__ import annotations

import json

from django.http import HttpRequest

from ingest.platform_audit import audit_event_record

from .filtersets import AuditEventFilterSet
from .metrics import AUDIT_SEARCHES


def _request_id(request: HttpRequest) -> str:
    return getattr(request, "request_id", "")


def record_search(request: HttpRequest, filterset: AuditEventFilterSet, action: str) -> None:
    """Record a search or export as a platform audit event (identifiers hashed), and count it."""
    AUDIT_SEARCHES.labels(action).inc()
    audit_event_record(
        event_name=f"platform.audit.{action}",
        actor=request.user,
        request_id=_request_id(request),
        attributes={"filters": json.dumps(filterset.filters_for_audit(), sort_keys=True)},
    )


def record_correlation(request: HttpRequest, *, event_pk: int, found: int) -> None:
    """Record that ``request.user`` opened an event's correlation timeline."""
    AUDIT_SEARCHES.labels("correlated").inc()
    audit_event_record(
        event_name="platform.audit.correlated",
        actor=request.user,
        request_id=_request_id(request),
        attributes={"event": str(event_pk), "timeline_events": str(found)},
    )


def record_denied(request: HttpRequest, *, action: str) -> None:
    """Record a signed-in user's refused attempt to search, export or open audit data."""
    AUDIT_SEARCHES.labels("denied").inc()
    audit_event_record(
        event_name="platform.audit.denied",
        actor=request.user,
        outcome="denied",
        request_id=_request_id(request),
        attributes={"action": action, "path": request.path[:200]},
    )

"""``envelope()``: the shared ``telemetry.v1.Envelope`` of the platform schemas, as a dict.

The platform's service metrics, client diagnostics and performance budget samples
carry an ``envelope`` message (``proto/telemetry/v1/events.proto``). This builds its
proto3 JSON form, filling in what a caller would otherwise get wrong by hand: a
fresh event id and an RFC 3339 UTC occurred-at.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

# The platform rejects a kept pseudonymous id that is not already a one-way hash; failing
# here, in the emitting service, keeps a raw principal id from ever leaving the process.
_HASHED_SCOPE = re.compile(r"^(sha256|k1):[0-9a-f]{64}$")


def rfc3339(moment: datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC with microseconds (``...T12:00:00.000123Z``)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        # A naive time is ambiguous (local? UTC?) and would be stored hours off.
        raise ValueError("occurred_at must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def envelope(
    *,
    source: str = "",
    surface: str = "",
    event_id: str | None = None,
    occurred_at: datetime | str | None = None,
    client_build_id: str = "",
    app_version: str = "",
    protocol_version: str = "",
    request_id: str = "",
    traceparent: str = "",
    tracestate: str = "",
    session_id: str = "",
    device_id: str = "",
    topic: str = "",
    run_id: str = "",
    worker_id: str = "",
    actor_scope_hash: str = "",
) -> dict[str, Any]:
    """Return the proto3 JSON form of a ``telemetry.v1.Envelope``.

    ``event_id`` defaults to a new uuid4 hex; ``occurred_at`` (an aware datetime or an
    RFC 3339 string) defaults to now. An empty ``source`` lets the platform use the API
    key's source. Empty fields are left out, and ``build``/``correlation`` appear only
    when one of their fields is set. ``session_id`` and ``device_id`` are hashed by the
    platform on ingest; ``actor_scope_hash`` must already be ``sha256:``/``k1:`` + 64
    hex digits (``ValueError`` otherwise).

    Use it as the ``envelope`` field of a platform event::

        client.emit(
            schema="telemetry.client_diagnostic.v1",
            event={"envelope": envelope(source="web", surface="web"), "name": "ws.reconnect"},
        )
    """
    if actor_scope_hash and not _HASHED_SCOPE.match(actor_scope_hash):
        raise ValueError("actor_scope_hash must be 'sha256:' or 'k1:' followed by 64 hex digits")
    if occurred_at is None:
        occurred_at = datetime.now(UTC)
    result: dict[str, Any] = {
        "event_id": event_id or uuid.uuid4().hex,
        "occurred_at": occurred_at if isinstance(occurred_at, str) else rfc3339(occurred_at),
    }
    if source:
        result["source"] = source
    if surface:
        result["surface"] = surface
    build = _non_empty(
        client_build_id=client_build_id, app_version=app_version, protocol_version=protocol_version
    )
    if build:
        result["build"] = build
    correlation = _non_empty(
        request_id=request_id,
        traceparent=traceparent,
        tracestate=tracestate,
        session_id=session_id,
        device_id=device_id,
        topic=topic,
        run_id=run_id,
        worker_id=worker_id,
    )
    if correlation:
        result["correlation"] = correlation
    if actor_scope_hash:
        result["actor_scope_hash"] = actor_scope_hash
    return result


def _non_empty(**fields: str) -> dict[str, str]:
    return {name: value for name, value in fields.items() if value}

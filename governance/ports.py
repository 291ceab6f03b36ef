"""What governance needs from the event store, installed by the ingest app when it loads.

Governance sits below ingest in the import graph (ingest validates against governance's
plans), so it cannot import the store. Yet a policy change records an audit event, a new
event class needs its partition, a retention change previews its purge, a field-policy
change previews stored events, and the conformance check needs the metric catalogue.
Those are the store's to answer: ``ingest.apps.IngestConfig.ready`` installs them here.
Calling one that is not installed raises ImproperlyConfigured: an action is never left
unaudited by accident.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured

PORTS = (
    "audit_event_record",
    "event_class_partition_ensure",
    "purge_preview",
    "stored_events_latest",
    "metric_catalogue",
    "suppressed_subject_hashes",
)
_installed: dict[str, Callable[..., Any]] = {}


def ports_install(**implementations: Callable[..., Any]) -> None:
    """Install the store's implementations (each name in PORTS)."""
    unknown = set(implementations) - set(PORTS)
    if unknown:
        raise ImproperlyConfigured(f"unknown governance ports: {sorted(unknown)}")
    _installed.update(implementations)


def ports_missing() -> list[str]:
    """The ports nothing has installed (empty once the ingest app has loaded)."""
    return [name for name in PORTS if name not in _installed]


def _port(name: str) -> Callable[..., Any]:
    try:
        return _installed[name]
    except KeyError:
        raise ImproperlyConfigured(
            f"governance port {name!r} is not installed: is 'ingest' in INSTALLED_APPS?"
        ) from None


def audit_event_record(
    *,
    event_name: str,
    actor: AbstractBaseUser | None,
    outcome: str = "success",
    attributes: Mapping[str, str] | None = None,
    request_id: str = "",
) -> bool:
    """Record a platform audit event in the caller's transaction (False before bootstrap)."""
    return _port("audit_event_record")(
        event_name=event_name,
        actor=actor,
        outcome=outcome,
        attributes=attributes,
        request_id=request_id,
    )


def event_class_partition_ensure(name: str) -> None:
    """Create the storage partition of event class ``name`` if it is missing."""
    _port("event_class_partition_ensure")(name)


def purge_preview(
    event_class: Any, *, retention_days: int | None = None, now: datetime | None = None
) -> Any:
    """Dry run of a purge of ``event_class`` (with ``retention_days``): what it would remove."""
    return _port("purge_preview")(event_class, retention_days=retention_days, now=now)


def stored_events_latest(
    *, event_class: str, revision_id: int, limit: int, prefer_not_source: str = ""
) -> list[Any]:
    """The latest stored events of a schema revision (rows with event_id, occurred_at and
    payload), those not from ``prefer_not_source`` first."""
    return _port("stored_events_latest")(
        event_class=event_class,
        revision_id=revision_id,
        limit=limit,
        prefer_not_source=prefer_not_source,
    )


def metric_catalogue() -> list[Any]:
    """Every metric family the platform emits, as the conformance check sees it."""
    return _port("metric_catalogue")()


def suppressed_subject_hashes() -> frozenset[str]:
    """The one-way hashes of the data subjects whose events ingest refuses (installed by
    the privacy app; the plan cache reads it when the policy epoch moves)."""
    return frozenset(_port("suppressed_subject_hashes")())

"""Reads of the event store that other apps ask for (through governance.ports)."""

from __future__ import annotations

import time

from telemetry_platform.conf import telemetry_settings

from .models import ApiKey, Event


def stored_events_latest(
    *, event_class: str, revision_id: int, limit: int, prefer_not_source: str = ""
) -> list[Event]:
    """The latest stored events of a schema revision (event id, time and payload only).

    Events not from ``prefer_not_source`` come first; that source's only when there are
    no others (a change request's preview shows senders' events, not the platform's own).
    """
    of_revision = Event.objects.filter(
        event_class_id=event_class, schema_revision_id=revision_id
    ).only("event_id", "occurred_at", "payload")
    newest = of_revision.order_by("-occurred_at")
    if prefer_not_source:
        others = list(newest.exclude(source=prefer_not_source)[:limit])
        if others:
            return others
    return list(newest[:limit])


_publishable_origins: list = []  # [(read at, origins)]: per process, at most one entry


def publishable_origins_list() -> frozenset[str]:
    """Every origin some active publishable key allows (read again after API_KEY_CACHE_SECONDS).

    A preflight carries no credentials, so it is answered for these origins; the request
    that follows is checked against its own key's origins.
    """
    ttl = telemetry_settings.API_KEY_CACHE_SECONDS
    now = time.monotonic()
    if _publishable_origins and now - _publishable_origins[0][0] < ttl:
        return _publishable_origins[0][1]
    rows = ApiKey.objects.filter(kind=ApiKey.Kind.PUBLISHABLE, revoked_at__isnull=True).values_list(
        "allowed_origins", flat=True
    )
    origins = frozenset(origin for row in rows for origin in row)
    _publishable_origins[:] = [(now, origins)]
    return origins


def publishable_origins_forget() -> None:
    """Forget the cached origins (a key was created, scoped, rotated or revoked here)."""
    _publishable_origins.clear()

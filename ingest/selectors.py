"""Reads of the event store that other apps ask for (through governance.ports)."""

from __future__ import annotations

from .models import Event


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

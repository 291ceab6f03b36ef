"""Celery tasks of ingest: the retention purge."""

from __future__ import annotations

from celery import shared_task

from .services import events_purge_expired

PURGE_TIME_LIMIT = 60 * 60


@shared_task(
    name="ingest.tasks.purge_expired_events",
    queue="maintenance",
    time_limit=PURGE_TIME_LIMIT,
    soft_time_limit=PURGE_TIME_LIMIT - 60,
    acks_late=True,
)
def purge_expired_events(event_class: str | None = None) -> dict[str, int]:
    """Delete events past their class retention; return rows deleted per class."""
    return events_purge_expired(event_class=event_class).deleted

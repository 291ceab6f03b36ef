"""Celery tasks of ingest: the retention purge."""

from __future__ import annotations

from celery import shared_task

from .services import events_purge_expired, partitions_maintain_all

PURGE_TIME_LIMIT = 60 * 60


@shared_task(
    name="ingest.tasks.purge_expired_events",
    queue="maintenance",
    time_limit=PURGE_TIME_LIMIT,
    soft_time_limit=PURGE_TIME_LIMIT - 60,
    acks_late=True,
)
def purge_expired_events(
    event_class: str | None = None, triggered_by: str = "beat"
) -> dict[str, int]:
    """Delete events past their retention (holds kept); return rows deleted per class."""
    return events_purge_expired(event_class=event_class, triggered_by=triggered_by).deleted


@shared_task(
    name="ingest.tasks.maintain_partitions",
    queue="maintenance",
    time_limit=15 * 60,
    soft_time_limit=14 * 60,
)
def maintain_partitions() -> list[str]:
    """Create day partitions ahead of time and split days out of default partitions."""
    return partitions_maintain_all()

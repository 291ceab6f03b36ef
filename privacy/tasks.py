"""Celery tasks of privacy: run an approved erasure, resume those a dead worker left."""

from __future__ import annotations

from celery import shared_task

from .erasure import RUNNABLE, subject_request_erase
from .models import SubjectRequest

ERASURE_TIME_LIMIT = 60 * 60


@shared_task(
    name="privacy.tasks.erase_subject",
    queue="maintenance",
    time_limit=ERASURE_TIME_LIMIT,
    soft_time_limit=ERASURE_TIME_LIMIT - 60,
    acks_late=True,
)
def erase_subject(request_id: int, batch_size: int = 5000, pause_seconds: float = 0.0) -> str:
    """Erase an approved request's subject; return its status ("locked" if running elsewhere)."""
    request = subject_request_erase(
        request_id=request_id, batch_size=batch_size, pause_seconds=pause_seconds
    )
    return request.status if request is not None else "locked"


@shared_task(
    name="privacy.tasks.resume_erasures",
    queue="maintenance",
    time_limit=5 * 60,
    soft_time_limit=4 * 60,
)
def resume_erasures() -> list[int]:
    """Queue every erasure not finished (killed worker) or waiting for holds; return their ids.

    A run already in progress keeps its lock, so the queued duplicate returns at once.
    """
    ids = list(
        SubjectRequest.objects.filter(
            kind=SubjectRequest.Kind.ERASURE, status__in=RUNNABLE
        ).values_list("pk", flat=True)
    )
    for request_id in ids:
        erase_subject.delay(request_id)
    return ids

"""The beat schedule resumes erasures (killed workers, holds released) on its own."""

from __future__ import annotations

import json

import pytest
from django_celery_beat.models import PeriodicTask

from privacy.tasks import resume_erasures
from telemetry_platform.beat import BEAT_SCHEDULE, beat_schedule_seed
from telemetry_platform.celery import app as celery_app


@pytest.mark.django_db
def test_the_beat_schedule_runs_resume_erasures_every_ten_minutes():
    """Seeding the schedule creates a periodic task for privacy.tasks.resume_erasures on the
    maintenance queue, every ten minutes, and the task name is one the worker knows."""
    task, _crontab, kwargs = BEAT_SCHEDULE["resume erasures"]
    assert task == resume_erasures.name == "privacy.tasks.resume_erasures"
    assert task in celery_app.tasks
    PeriodicTask.objects.filter(name="resume erasures").delete()
    created = beat_schedule_seed()
    assert any("privacy.tasks.resume_erasures" in line for line in created)
    periodic = PeriodicTask.objects.get(name="resume erasures")
    assert (periodic.task, periodic.queue, json.loads(periodic.kwargs)) == (
        task,
        "maintenance",
        kwargs,
    )
    assert (periodic.crontab.minute, periodic.crontab.hour) == ("*/10", "*")
    assert periodic.enabled

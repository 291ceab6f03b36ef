"""The beat schedule, in one place; seeded into django-celery-beat so operators can edit it."""

from __future__ import annotations

import json

from django_celery_beat.models import CrontabSchedule, PeriodicTask

# name -> (task, crontab fields, kwargs). Seeding creates missing entries and leaves
# existing ones alone, so edits made in the admin survive every deploy.
BEAT_SCHEDULE: dict[str, tuple[str, dict[str, str], dict]] = {
    "purge expired events": (
        "ingest.tasks.purge_expired_events",
        {"minute": "17", "hour": "*"},
        {},
    ),
    "maintain event partitions": (
        "ingest.tasks.maintain_partitions",
        {"minute": "7", "hour": "*"},
        {},
    ),
    "export audit digests": (
        "audit.tasks.export_audit_digests",
        {"minute": "37", "hour": "*"},
        {},
    ),
    # Erasures a killed worker left, and rows kept for a hold since released.
    "resume erasures": (
        "privacy.tasks.resume_erasures",
        {"minute": "*/10", "hour": "*"},
        {},
    ),
}


def beat_schedule_seed() -> list[str]:
    """Create the default periodic tasks that do not exist yet; return what was created."""
    created = []
    for name, (task, crontab, kwargs) in BEAT_SCHEDULE.items():
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        schedule, _ = CrontabSchedule.objects.get_or_create(
            minute=crontab.get("minute", "*"),
            hour=crontab.get("hour", "*"),
            day_of_week=crontab.get("day_of_week", "*"),
            day_of_month=crontab.get("day_of_month", "*"),
            month_of_year=crontab.get("month_of_year", "*"),
            timezone="UTC",
        )
        PeriodicTask.objects.create(
            name=name, task=task, crontab=schedule, kwargs=json.dumps(kwargs), queue="maintenance"
        )
        created.append(f"beat schedule {name!r}: {task} at minute {crontab.get('minute')}")
    return created

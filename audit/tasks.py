"""Celery tasks of audit: the daily digest files of the audit chains."""

from __future__ import annotations

from celery import shared_task

from telemetry_platform.conf import telemetry_settings

from .digests import audit_digests_export


@shared_task(
    name="audit.tasks.export_audit_digests",
    queue="maintenance",
    time_limit=15 * 60,
    soft_time_limit=14 * 60,
)
def export_audit_digests() -> list[str]:
    """Write the digest files of closed days not exported yet (off without a directory)."""
    directory = telemetry_settings.AUDIT_DIGEST_DIR
    if not directory:
        return []
    return [path.name for path in audit_digests_export(directory=directory)]

"""Helpers to read the platform's own audit events in tests."""

from __future__ import annotations

from django.db.models import QuerySet

from ingest.models import Event


def platform_audit_events(event_name: str) -> QuerySet[Event]:
    return Event.objects.filter(source="platform", payload__event_name=event_name)

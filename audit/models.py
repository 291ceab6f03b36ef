"""Audit events as security analysts search them (a proxy of the event store's rows)."""

from __future__ import annotations

from django.db import models

from ingest.models import Event


class AuditEventManager(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(event_class_id="audit_event")


class AuditEvent(Event):
    """Audit events (class ``audit_event``) as security analysts search them."""

    objects = AuditEventManager()

    class Meta:
        proxy = True
        ordering = ["-occurred_at", "-id"]
        permissions = [
            ("search_auditevent", "Can search and export audit events"),
        ]
        verbose_name = "audit event"

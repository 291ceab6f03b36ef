"""Audit chain heads: the last link of every (source, day) chain, kept across purges."""

from __future__ import annotations

from django.db import models

from ingest.models import Event


class AuditChainHead(models.Model):
    """Where a chain ends. Verification compares the stored rows with it; a purge marks it.

    After a purge removed (some of) a chain's rows, ``purged_at`` says so and gaps in
    that chain are expected; the final link is kept, so the record of what existed
    outlives the rows.
    """

    source = models.CharField(max_length=200)
    day = models.DateField()
    last_seq = models.BigIntegerField()
    last_link = models.CharField(max_length=80)
    purged_at = models.DateTimeField(null=True, blank=True)
    rows_purged = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "day"], name="audit_chain_head_unique")
        ]
        ordering = ["day", "source"]

    def __str__(self) -> str:
        return f"{self.source} {self.day}: {self.last_seq} links"


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

"""Audit chain heads: the last link of every (source, day) chain, kept across purges."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import models

from ingest.models import Event

from .chain import head_content, keyed_digest, keyed_digest_valid


class AuditChainHead(models.Model):
    """Where a chain ends. Verification compares the stored rows with it; a purge marks it.

    After a purge removed (some of) a chain's rows, ``purged_at`` says so and
    ``rows_purged`` how many links are gone; the final link is kept, so the record of
    what existed outlives the rows. ``digest`` is a keyed digest of that state under the
    digest key (not in the database): a head edited in SQL no longer matches it.
    """

    source = models.CharField(max_length=200)
    day = models.DateField()
    last_seq = models.BigIntegerField()
    last_link = models.CharField(max_length=80)
    purged_at = models.DateTimeField(null=True, blank=True)
    rows_purged = models.BigIntegerField(default=0)
    digest = models.CharField(max_length=100, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "day"], name="audit_chain_head_unique")
        ]
        ordering = ["day", "source"]

    def __str__(self) -> str:
        return f"{self.source} {self.day}: {self.last_seq} links"

    def state_content(self) -> bytes:
        """The bytes ``digest`` covers."""
        return head_content(
            source=self.source,
            day=self.day,
            last_seq=self.last_seq,
            last_link=self.last_link,
            purged_at=self.purged_at,
            rows_purged=self.rows_purged,
        )

    def seal(self, *, key_id: str, key: str) -> None:
        """Set ``digest`` for the current state (the caller saves)."""
        self.digest = keyed_digest(self.state_content(), key_id=key_id, key=key)

    def seal_valid(self, *, keys: Mapping[str, str]) -> bool:
        """Whether ``digest`` matches the current state under one of ``keys``."""
        return bool(self.digest) and keyed_digest_valid(
            self.digest, self.state_content(), keys=keys
        )


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

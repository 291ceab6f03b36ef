"""Audit chain heads: the last link of every (source, day) chain, kept across purges."""

from __future__ import annotations

from django.db import models


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

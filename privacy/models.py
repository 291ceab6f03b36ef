"""Data-subject requests: who asked what about whom (by one-way hashes only), and the outcome."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models


class SubjectRequest(models.Model):
    """One data-subject request. The subject is held only as the hashes of the raw
    identifiers given (under every configured key id): the values never reach storage."""

    class Kind(models.TextChoices):
        ACCESS = "access", "Access (export of the subject's events)"
        ERASURE = "erasure", "Erasure (delete the subject's events, with a certificate)"
        SUPPRESSION = "suppression", "Suppression (refuse the subject's future events)"
        SUPPRESSION_LIFT = "suppression_lift", "Lift a suppression"

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed (waiting for another person's approval)"
        APPROVED = "approved", "Approved (queued)"
        RUNNING = "running", "Running"
        RETAINED = "retained", "Done but for rows under legal hold (erased on release)"
        COMPLETED = "completed", "Completed"
        REJECTED = "rejected", "Rejected"

    kind = models.CharField(max_length=24, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROPOSED)
    subject_hashes = ArrayField(models.CharField(max_length=80))
    identifier_kinds = ArrayField(
        models.CharField(max_length=16), help_text="Which kinds of identifier were given."
    )
    reason = models.CharField(max_length=300)
    ticket = models.CharField(max_length=100, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lifts = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="lifted_by",
        help_text="The suppression (or erasure) whose suppression this request lifts.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    # From here on ingest refuses the subject's events (erasures and suppressions).
    suppressed_at = models.DateTimeField(null=True, blank=True)
    suppression_lifted_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    rows_erased = models.BigIntegerField(default=0)
    counts_before = models.JSONField(default=dict, blank=True)
    certificate = models.JSONField(null=True, blank=True)
    certificate_digest = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("approve_subjectrequest", "Can approve data-subject erasures and suppression lifts"),
        ]

    def __str__(self) -> str:
        return f"subject request #{self.pk} ({self.kind}, {self.status})"

    @property
    def reference(self) -> str:
        """How audit records and tombstones name this request."""
        return f"subject-request:{self.pk}"

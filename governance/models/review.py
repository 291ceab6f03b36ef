"""Reviewed changes: change requests, the applied versions of each policy, periodic reviews."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ..choices import ChangeKind, ChangeStatus


class ChangeRequest(models.Model):
    """A proposed change to one policy target, reviewed by a second person before it applies.

    ``base_state`` is the part of the target's state the proposal was written against and
    ``base_version`` the target's version then: if either moved on, the request is stale
    and must be rebased before it can be approved or applied.
    """

    kind = models.CharField(max_length=32, choices=ChangeKind.choices)
    target = models.CharField(max_length=300, db_index=True)
    summary = models.CharField(max_length=300)
    reason = models.TextField(help_text="Why this change is needed.")
    payload = models.JSONField(
        null=True, help_text="The proposed state of the target (null: remove it)."
    )
    base_state = models.JSONField(null=True, blank=True)
    base_version = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=16, choices=ChangeStatus.choices, default=ChangeStatus.DRAFT, db_index=True
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_comment = models.TextField(blank=True)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_version = models.PositiveIntegerField(null=True, blank=True)
    restores_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="Set when this request rolls the target back."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("propose_changerequest", "Can propose policy changes"),
            ("approve_changerequest", "Can approve or reject others' policy changes"),
            ("apply_changerequest", "Can apply approved policy changes"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.summary}"


class PolicyVersion(models.Model):
    """The state of one policy target after each applied change (version 0: before any)."""

    target = models.CharField(max_length=300)
    kind = models.CharField(max_length=32, choices=ChangeKind.choices)
    version = models.PositiveIntegerField()
    state = models.JSONField(null=True)
    change_request = models.OneToOneField(
        ChangeRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["target", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["target", "version"], name="policy_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.target} v{self.version}"


class PolicyReview(models.Model):
    """A periodic review of a policy target: someone looked at it and found it right."""

    target = models.CharField(max_length=300, db_index=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(auto_now_add=True)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-reviewed_at"]
        permissions = [("review_policy", "Can mark policies as reviewed")]

    def __str__(self) -> str:
        return f"{self.target} reviewed {self.reviewed_at:%Y-%m-%d}"

"""Admin of retention: per-schema overrides and legal holds, proposed for review."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from telemetry_platform.conf import telemetry_settings

from ..choices import ChangeKind
from ..hashing import keyed_hash_candidates
from ..models import LegalHold, RetentionOverride
from ..services import retention_limits_for
from ..services.change_kinds import NEW_HOLD_TARGET
from .workflow import PROPOSE, ChangeReasonField, ProposeThroughChangeRequest, propose


class RetentionOverrideForm(forms.ModelForm):
    change_reason = ChangeReasonField()

    class Meta:
        model = RetentionOverride
        fields = ("schema", "retention_days", "reason")

    def clean(self) -> dict:
        data = super().clean()
        schema, days = data.get("schema"), data.get("retention_days")
        if schema is not None and days is not None:
            low, high = retention_limits_for(schema.event_class_id)
            if not low <= days <= high:
                self.add_error("retention_days", f"must be between {low} and {high} days")
        return data


@admin.register(RetentionOverride)
class RetentionOverrideAdmin(ProposeThroughChangeRequest, admin.ModelAdmin):
    """Overrides are proposed here; removing one is proposed with the list action."""

    form = RetentionOverrideForm
    list_display = ("schema", "retention_days", "reason", "updated_at", "updated_by")
    fields = ("schema", "retention_days", "reason", "change_reason")
    actions = ["propose_removal"]

    def get_readonly_fields(self, request: HttpRequest, obj: RetentionOverride | None = None):
        return ("schema",) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: RetentionOverride | None = None):
        return False  # removal is a reviewed change too

    def change_request_for(
        self, request: HttpRequest, obj: RetentionOverride, form, change: bool
    ) -> tuple[str, str, dict]:
        """The schema's proposed retention and the reason it differs from its class."""
        payload = {"retention_days": obj.retention_days, "reason": obj.reason}
        return ChangeKind.RETENTION_OVERRIDE, f"retention_override:{obj.schema.name}", payload

    @admin.action(description="Propose removing the selected overrides", permissions=["add"])
    def propose_removal(self, request: HttpRequest, queryset: QuerySet[RetentionOverride]) -> None:
        for override in queryset.select_related("schema"):
            propose(
                request,
                kind=ChangeKind.RETENTION_OVERRIDE,
                target=f"retention_override:{override.schema.name}",
                payload=None,
                reason=f"Remove the retention override of {override.schema.name}",
            )


class LegalHoldForm(forms.ModelForm):
    change_reason = ChangeReasonField(required=False, help_text="Defaults to the hold's reason.")
    actor_identifier = forms.CharField(
        required=False,
        help_text="The raw user id or e-mail: it is hashed under every key and never stored.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    class Meta:
        model = LegalHold
        fields = ("reason", "event_class", "schema", "occurred_from", "occurred_to", "expires_at")

    def clean(self) -> dict:
        data = super().clean()
        criteria = ("event_class", "schema", "actor_identifier", "occurred_from", "occurred_to")
        if not any(data.get(name) for name in criteria):
            raise forms.ValidationError("a hold needs at least one criterion")
        start, end = data.get("occurred_from"), data.get("occurred_to")
        if start and end and start >= end:
            self.add_error("occurred_to", "must be after the start of the range")
        return data


@admin.register(LegalHold)
class LegalHoldAdmin(ProposeThroughChangeRequest, admin.ModelAdmin):
    """Holds are placed and released through reviewed change requests."""

    form = LegalHoldForm
    change_list_template = "admin/tgp/change_list_fit.html"
    list_display = (
        "id",
        "reason",
        "owner",
        "event_class",
        "schema",
        "occurred_from",
        "occurred_to",
        "expires_at",
        "released_at",
    )
    list_filter = ("released_at", "event_class")
    actions = ["release_holds"]

    def get_readonly_fields(self, request: HttpRequest, obj: LegalHold | None = None) -> tuple:
        if obj is None:
            return ()
        return (
            "reason",
            "owner",
            "event_class",
            "schema",
            "actor_hashes",
            "occurred_from",
            "occurred_to",
            "expires_at",
            "released_at",
            "created_at",
        )

    def get_fields(self, request: HttpRequest, obj: LegalHold | None = None) -> tuple:
        if obj is None:
            return (
                "reason",
                "event_class",
                "schema",
                "actor_identifier",
                "occurred_from",
                "occurred_to",
                "expires_at",
                "change_reason",
            )
        return self.get_readonly_fields(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: LegalHold | None = None) -> bool:
        return False  # release instead: the record of the hold stays

    def has_change_permission(self, request: HttpRequest, obj: LegalHold | None = None) -> bool:
        return obj is None and request.user.has_perm(PROPOSE)  # a placed hold is read-only

    def change_request_for(
        self, request: HttpRequest, obj: LegalHold, form, change: bool
    ) -> tuple[str, str, dict]:
        """The hold's criteria; the actor identifier travels as its keyed hashes only."""
        data = form.cleaned_data
        identifier = data.get("actor_identifier", "")
        payload = {
            "reason": data["reason"],
            "event_class": data["event_class"].name if data.get("event_class") else "",
            "schema": data["schema"].name if data.get("schema") else "",
            "actor_hashes": keyed_hash_candidates(identifier, keys=telemetry_settings.HASH_KEYS)
            if identifier
            else [],
            "occurred_from": _iso(data.get("occurred_from")),
            "occurred_to": _iso(data.get("occurred_to")),
            "expires_at": _iso(data.get("expires_at")),
        }
        if not form.cleaned_data.get("change_reason"):
            form.cleaned_data["change_reason"] = data["reason"]
        return ChangeKind.LEGAL_HOLD_PLACE, NEW_HOLD_TARGET, payload

    @admin.action(description="Propose releasing the selected holds", permissions=["add"])
    def release_holds(self, request: HttpRequest, queryset: QuerySet[LegalHold]) -> None:
        for hold in queryset.filter(released_at__isnull=True):
            propose(
                request,
                kind=ChangeKind.LEGAL_HOLD_RELEASE,
                target=f"legal_hold:{hold.pk}",
                payload={"released": True},
                reason=f"Release hold #{hold.pk} ({hold.reason})",
            )


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None

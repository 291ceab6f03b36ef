"""Admin of retention: per-schema overrides and legal holds."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from ..models import LegalHold, RetentionOverride
from ..services import (
    legal_hold_create,
    legal_hold_release,
    retention_limits_for,
    retention_override_set,
)


class RetentionOverrideForm(forms.ModelForm):
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
class RetentionOverrideAdmin(admin.ModelAdmin):
    form = RetentionOverrideForm
    list_display = ("schema", "retention_days", "reason", "updated_at", "updated_by")

    def save_model(self, request: HttpRequest, obj: RetentionOverride, form, change: bool) -> None:
        retention_override_set(
            schema=obj.schema,
            retention_days=obj.retention_days,
            reason=obj.reason,
            actor=request.user,
        )

    def delete_model(self, request: HttpRequest, obj: RetentionOverride) -> None:
        retention_override_set(
            schema=obj.schema, retention_days=None, reason="", actor=request.user
        )


class LegalHoldForm(forms.ModelForm):
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
class LegalHoldAdmin(admin.ModelAdmin):
    form = LegalHoldForm
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
            )
        return self.get_readonly_fields(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: LegalHold | None = None) -> bool:
        return False  # release instead: the record of the hold stays

    def save_model(self, request: HttpRequest, obj: LegalHold, form, change: bool) -> None:
        if change:
            return
        data = form.cleaned_data
        hold = legal_hold_create(
            reason=data["reason"],
            owner=request.user,
            event_class=data.get("event_class"),
            schema=data.get("schema"),
            actor_identifier=data.get("actor_identifier", ""),
            occurred_from=data.get("occurred_from"),
            occurred_to=data.get("occurred_to"),
            expires_at=data.get("expires_at"),
        )
        obj.pk = hold.pk

    @admin.action(description="Release selected holds")
    def release_holds(self, request: HttpRequest, queryset: QuerySet[LegalHold]) -> None:
        for hold in queryset:
            legal_hold_release(hold=hold, actor=request.user)
        self.message_user(request, f"Released {queryset.count()} hold(s).", messages.SUCCESS)

"""One filter definition for audit search: the admin, the API and exports share it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone
from django_filters.fields import IsoDateTimeField

from governance.hashing import keyed_hash_candidates
from telemetry_platform.conf import telemetry_settings

from .models import AuditEvent

DEFAULT_WINDOW = timedelta(hours=24)
# The audit schema's outcomes: a choice, so a typo is an error rather than zero results.
OUTCOME_CHOICES = [
    ("success", "success"),
    ("failure", "failure"),
    ("rejected", "rejected"),
    ("denied", "denied"),
    ("error", "error"),
]
# The expression of the full-text index on the audit partition (ingest/partitions.py).
ATTRIBUTES_TSVECTOR = (
    "jsonb_to_tsvector('simple', coalesce(payload->'attributes', '{}'), '[\"string\"]')"
)


def hashed(value: str) -> list[str]:
    """The stored forms of a raw identifier, under every configured key."""
    return keyed_hash_candidates(value.strip(), keys=telemetry_settings.HASH_KEYS)


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, normalised to UTC (PostgreSQL refuses offsets beyond ±15:59)."""

    def to_python(self, value: object) -> datetime | None:
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            if timezone.is_naive(moment):
                moment = moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError("date-time out of range", code="invalid") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class AuditEventFilterSet(django_filters.FilterSet):
    """Filters of audit search. Identifiers are typed raw and searched by their keyed hash."""

    occurred_after = UtcDateTimeFilter(
        field_name="occurred_at", lookup_expr="gte", label="From (default: 24 hours ago)"
    )
    occurred_before = UtcDateTimeFilter(field_name="occurred_at", lookup_expr="lt", label="Until")
    event_name = django_filters.CharFilter(
        method="filter_event_name", label="Event name (exact, or a prefix ending in . or *)"
    )
    outcome = django_filters.ChoiceFilter(
        method="filter_payload_text", label="Outcome", choices=OUTCOME_CHOICES
    )
    source = django_filters.CharFilter(field_name="source", label="Source")
    request_id = django_filters.CharFilter(field_name="request_id", label="Request id")
    trace_id = django_filters.CharFilter(method="filter_trace_id", label="Trace id")
    session = django_filters.CharFilter(method="filter_hashed_payload", label="Session id (raw)")
    actor = django_filters.CharFilter(method="filter_actor", label="Actor: user id or e-mail (raw)")
    org = django_filters.CharFilter(method="filter_hashed_payload", label="Org id (raw)")
    device = django_filters.CharFilter(method="filter_hashed_payload", label="Device id (raw)")
    q = django_filters.CharFilter(method="filter_text", label="Text in attribute values")

    PAYLOAD_KEYS = {
        "outcome": "outcome",
        "session": "session_id",
        "org": "org_id",
        "device": "device_id",
    }

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    @property
    def qs(self) -> QuerySet:
        queryset = super().qs
        data = self.form.cleaned_data if self.form.is_bound and self.is_valid() else {}
        if not data.get("occurred_after") and not data.get("occurred_before"):
            queryset = queryset.filter(occurred_at__gte=timezone.now() - DEFAULT_WINDOW)
        return queryset.order_by("-occurred_at", "-id")

    def filter_event_name(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        key = KeyTextTransform("event_name", "payload")
        if value.endswith(("*", ".")):
            return queryset.alias(event_name_value=key).filter(
                event_name_value__startswith=value.rstrip("*")
            )
        return queryset.alias(event_name_value=key).filter(event_name_value=value)

    def filter_payload_text(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        key = self.PAYLOAD_KEYS[name]
        return queryset.alias(**{f"{key}_value": KeyTextTransform(key, "payload")}).filter(
            **{f"{key}_value": value.strip()}
        )

    def filter_hashed_payload(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        key = self.PAYLOAD_KEYS[name]
        return queryset.alias(**{f"{key}_value": KeyTextTransform(key, "payload")}).filter(
            **{f"{key}_value__in": hashed(value)}
        )

    def filter_actor(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(actor_hash__in=hashed(value))

    def filter_trace_id(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(trace_id=value.strip().lower())

    def filter_text(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.extra(  # noqa: S610 (parameterised; the expression must match the index)
            where=[f"{ATTRIBUTES_TSVECTOR} @@ plainto_tsquery('simple', %s)"], params=[value]
        )

    def filters_for_audit(self) -> dict[str, Any]:
        """The applied filters as recorded in the platform audit log: identifiers hashed."""
        if not self.is_bound or not self.is_valid():
            return {}
        recorded = {}
        for key, value in self.form.cleaned_data.items():
            if value in (None, ""):
                continue
            if key in ("actor", "session", "org", "device"):
                recorded[key] = hashed(value)[0]
            else:
                recorded[key] = value.isoformat() if hasattr(value, "isoformat") else str(value)
        return recorded

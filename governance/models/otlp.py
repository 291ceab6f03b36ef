"""OTLP log routes: which registered schema an OpenTelemetry log record becomes."""

from __future__ import annotations

from django.db import models


class OtlpLogRoute(models.Model):
    """One rule of the OTLP log mapping; the lowest ``priority`` that matches wins.

    Each ``match_*`` is a shell-style pattern (``auth.*``); blank matches anything. The
    record's event name is its ``event_name`` or, failing that, its ``event.name``
    attribute. A blank ``schema_name`` rejects the matching records (code
    ``unmapped_log_record``): how an owner turns the built-in fallback off.
    """

    name = models.SlugField(max_length=100, unique=True)
    priority = models.PositiveIntegerField(default=100, db_index=True)
    match_event_name = models.CharField(max_length=200, blank=True)
    match_scope = models.CharField(max_length=200, blank=True)
    match_service = models.CharField(max_length=200, blank=True)
    schema_name = models.CharField(
        max_length=200, blank=True, help_text="Registered schema; blank rejects the records."
    )
    description = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ("priority", "name")

    def __str__(self) -> str:
        return f"{self.name} -> {self.schema_name or 'reject'}"

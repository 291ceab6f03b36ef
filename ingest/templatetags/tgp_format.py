"""Template filters: measured values in human units, durations in words."""

from __future__ import annotations

from django import template

from ingest.humanize import human_duration, human_value

register = template.Library()


@register.filter(name="human_unit")
def human_unit(value: float | None, unit: str = "") -> str:
    """``{{ 384000|human_unit:"bytes" }}`` -> "384 kB"."""
    return "—" if value is None else human_value(float(value), unit or "")


@register.filter(name="human_duration")
def human_duration_filter(seconds: float | None) -> str:
    return human_duration(seconds)

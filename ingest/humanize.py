"""Durations and measured values as people read them (pure: no models, no request)."""

from __future__ import annotations

from .artifacts.trends import human_value


def human_duration(seconds: float | None) -> str:
    """``0.007785`` -> "7.8 ms", ``123.4`` -> "2 min 3 s", ``None`` -> "—"."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return human_value(seconds * 1000, "ms")
    if seconds < 60:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


__all__ = ["human_duration", "human_value"]

"""The platform's own settings (``TELEMETRY_*``), read lazily from Django settings.

Each is declared once, in parameters.py (environment name, type, default, description);
settings.py sets them from the environment, and tests override them as Django settings.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings

from .parameters import telemetry_defaults

DEFAULTS: dict[str, Any] = telemetry_defaults()


class TelemetrySettings:
    """Looks a name up as ``TELEMETRY_<NAME>`` in Django settings, falling back to DEFAULTS."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"unknown platform setting {name!r}")
        return getattr(django_settings, f"TELEMETRY_{name}", DEFAULTS[name])


telemetry_settings = TelemetrySettings()

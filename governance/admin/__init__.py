"""Admin of governance: registry, field policies, retention, and the reviewed workflow."""

from . import metrics, otlp, policies, registry, retention, workflow

__all__ = ["metrics", "otlp", "policies", "registry", "retention", "workflow"]

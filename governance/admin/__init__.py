"""Admin of governance: registry, field policies, retention, and the reviewed workflow."""

from . import metrics, policies, registry, retention, workflow

__all__ = ["metrics", "policies", "registry", "retention", "workflow"]

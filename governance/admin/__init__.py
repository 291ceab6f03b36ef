"""Admin of governance: the registry (classes, schemas, revisions) and field policies."""

from . import metrics, policies, registry, retention

__all__ = ["metrics", "policies", "registry", "retention"]

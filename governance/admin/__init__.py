"""Admin of governance: the registry (classes, schemas, revisions) and field policies."""

from . import policies, registry, retention

__all__ = ["policies", "registry", "retention"]

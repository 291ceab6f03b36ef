"""Admin of governance: the registry (classes, schemas, revisions) and field policies."""

from . import policies, registry

__all__ = ["policies", "registry"]

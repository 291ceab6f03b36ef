"""The metric catalogue: every metric family this platform emits, for the conformance check."""

from __future__ import annotations

from prometheus_client import REGISTRY

from governance.conformance import CatalogueEntry
from governance.models import MetricDefinition

from .service_metrics import service_metric_names

PLATFORM_PREFIXES = ("telemetry_",)


def metric_catalogue() -> list[CatalogueEntry]:
    """Every metric family this platform emits (its own, and the catalogue's telemetry
    aggregates), as the conformance check sees it. Process/runtime families of the
    client library are left out: no rule should depend on them by accident."""
    entries = {}
    for family in REGISTRY.collect():
        if family.name.startswith(PLATFORM_PREFIXES):
            entries[family.name] = CatalogueEntry(family.name, family.type, family.documentation)
    for definition in MetricDefinition.objects.filter(enabled=True):
        entries[definition.name] = CatalogueEntry(definition.name, definition.kind, definition.help)
    # Service counters that services have posted (service_metric events) are emitted too.
    for name, kind in service_metric_names().items():
        if name not in entries and not name.startswith(PLATFORM_PREFIXES):
            entries[name] = CatalogueEntry(name, kind)
    return sorted(entries.values(), key=lambda entry: entry.name)

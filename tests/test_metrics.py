"""The /metrics exposition: counters typed counter under exactly the names rules use."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

from ingest.telemetry_metrics import counter_family
from telemetry_platform.metrics import exposition


class _Static:
    def __init__(self, *families: Metric) -> None:
        self.families = families

    def collect(self):
        return self.families


def test_counters_are_typed_counter_under_their_sample_names():
    """A bare-named counter keeps its exact sample name and is typed counter (not untyped);
    a `_total` counter's TYPE line names `<name>_total`, not `<name>_total_total`."""
    bare = counter_family("openagents_sync_client_telemetry_event_count", "Client events.")
    bare.add_sample("openagents_sync_client_telemetry_event_count", {"surface": "ios"}, 3)
    total = counter_family("telemetry_things_total", "Things.")
    total.add_sample("telemetry_things_total", {}, 2)
    gauge = Metric("telemetry_depth", "Depth counter untyped", "gauge")
    gauge.add_sample("telemetry_depth", {}, 1)
    registry = CollectorRegistry()
    registry.register(_Static(bare, total, gauge))
    assert exposition(registry).decode().splitlines() == [
        "# HELP openagents_sync_client_telemetry_event_count Client events.",
        "# TYPE openagents_sync_client_telemetry_event_count counter",
        'openagents_sync_client_telemetry_event_count{surface="ios"} 3.0',
        "# HELP telemetry_things_total Things.",
        "# TYPE telemetry_things_total counter",
        "telemetry_things_total 2.0",
        "# HELP telemetry_depth Depth counter untyped",
        "# TYPE telemetry_depth gauge",
        "telemetry_depth 1.0",
    ]

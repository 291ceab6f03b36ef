"""Delivery diagnostics snapshots: one service_metric event per counter, labelled by topic/consumer."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ingest.artifacts import ArtifactError, diagnostics_snapshot_ingest
from ingest.artifacts.diagnostics import counter_kind, diagnostics_snapshot_parse
from ingest.models import Event
from ingest.pipeline import IngestContext
from tests.factories import delivery_snapshot

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def parse(snapshot: dict, **options):
    return diagnostics_snapshot_parse(json.dumps(snapshot).encode(), now=NOW, **options)


def by_name(parsed) -> dict[tuple[str, str], dict]:
    bodies = {}
    for entry in parsed.items:
        body = entry.item.body
        bodies[(body["name"], body["labels"].get("topic", body["labels"].get("cause", "")))] = body
    return bodies


def test_each_counter_becomes_one_event_labelled_by_topic_or_consumer():
    """Global counters, per-topic counters and per-consumer counters each become an event."""
    parsed = parse(delivery_snapshot())
    assert not parsed.rejections
    bodies = by_name(parsed)
    polls = bodies[("khala.delivery.total_polls", "")]
    assert polls["value"] == 120 and polls["kind"] == "KIND_COUNTER"
    assert polls["temporality"] == "TEMPORALITY_CUMULATIVE"
    assert (polls["service"], polls["instance"]) == ("runtime", "runtime-0")
    assert polls["labels"] == {"driver": "memory"}
    depth = bodies[("khala.delivery.topic.queue_depth", "run:019c7f31:events")]
    assert depth["kind"] == "KIND_GAUGE" and depth["value"] == 17
    assert depth["labels"] == {
        "driver": "memory",
        "topic": "run:019c7f31:events",
        "topic_class": "run_events",
        "qos_tier": "hot",
    }
    lag = next(b for b in bodies.values() if b["name"] == "khala.delivery.consumer.lag_events")
    assert lag["labels"]["consumer"] == "edge-a" and lag["labels"]["topic"] == "run:019c7f31:events"
    causes = bodies[("khala.delivery.recent_disconnects", "slow_consumer")]
    assert causes["value"] == 2 and causes["kind"] == "KIND_GAUGE"
    # 7 delivery counters + 2 causes + 11 topic numbers + 1 consumer counter
    assert len(parsed.items) == 21


def test_running_totals_are_counters_and_the_rest_gauges():
    """Totals (polls, evictions, messages, *_count) are counters; depths and limits gauges."""
    assert [
        counter_kind(n)
        for n in (
            "total_polls",
            "slow_consumer_evictions",
            "dropped_messages",
            "frame_size_rejected_count",
        )
    ] == ["KIND_COUNTER"] * 4
    assert {counter_kind(n) for n in ("queue_depth", "active_consumers", "head_sequence")} == {
        "KIND_GAUGE"
    }


def test_event_ids_are_stable_for_the_same_snapshot():
    """The same snapshot gives the same ids, so re-sending it is answered duplicate."""

    def ids(parsed):
        return [entry.item.body["envelope"]["event_id"] for entry in parsed.items]

    snapshot = delivery_snapshot()
    assert ids(parse(snapshot)) == ids(parse(snapshot))
    assert ids(parse(snapshot)) != ids(parse(snapshot, instance="runtime-1"))


def test_snapshot_without_timestamp_is_dated_now_with_a_warning():
    """No timestamp: the ingest time is used, and the report says so."""
    snapshot = delivery_snapshot()
    del snapshot["timestamp"]
    parsed = parse(snapshot)
    assert parsed.facts["occurred_at"] == "2026-11-24T12:00:00Z"
    assert any("no timestamp" in warning for warning in parsed.warnings)


def test_bad_counters_are_rejected_one_by_one():
    """Non-numeric and negative counters and topics without a name are refused with reasons."""
    snapshot = delivery_snapshot()
    snapshot["delivery_metrics"]["total_polls"] = "120"
    snapshot["delivery_metrics"]["served_messages"] = -3
    snapshot["topic_windows"].append({"queue_depth": 4})
    snapshot["topic_windows"].append("not an object")
    parsed = parse(snapshot)
    assert {r.ref: r.code for r in parsed.rejections} == {
        "delivery_metrics.total_polls": "not_numeric",
        "delivery_metrics.served_messages": "negative_counter",
        "topic_windows[1]": "missing_field",
        "topic_windows[2]": "body_not_an_object",
    }
    assert ("khala.delivery.throttled_polls", "") in by_name(parsed)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b'{"delivery_metrics": {"total_polls": 1}', "malformed_json"),
        (b'{"driver": "memory"}', "empty_artifact"),
        (b'{"timestamp": "soon", "counters": {"a": 1}}', "invalid_timestamp"),
    ],
)
def test_unusable_snapshots_are_refused(content, code):
    """Truncated JSON, no counters at all or a bad timestamp refuse the snapshot."""
    with pytest.raises(ArtifactError) as refused:
        diagnostics_snapshot_parse(content, now=NOW)
    assert refused.value.code == code


@pytest.mark.django_db
def test_snapshot_lands_as_service_metric_events_once(platform_config):
    """Ingested through the pipeline: stored as service_metric events; again: duplicates."""
    content = json.dumps(delivery_snapshot()).encode()
    first = diagnostics_snapshot_ingest(content=content, context=IngestContext(source="runtime"))
    assert first.totals()["accepted"] == 21 and first.totals()["rejected"] == 0
    again = diagnostics_snapshot_ingest(content=content, context=IngestContext(source="runtime"))
    assert again.totals()["duplicate"] == 21
    stored = Event.objects.filter(event_class_id="service_metric", source="runtime")
    assert stored.count() == 21
    names = {event.payload["name"] for event in stored}
    assert "khala.delivery.fairness_limited_polls" in names

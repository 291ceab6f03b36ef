"""Service counters: service_metric events exposed on /metrics, dots as underscores."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from ingest.catalogue import metric_catalogue
from ingest.service_metrics import PREFIX, exposed_name
from telemetry_platform.redis_client import redis_client
from tests.factories import SERVICE_METRIC_SCHEMA, delivery_snapshot, iso

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_service_series():
    """Series are derived data in Redis: start every test without them."""

    def wipe():
        for key in redis_client().scan_iter(f"{PREFIX}*"):
            redis_client().delete(key)

    wipe()
    yield
    wipe()


def metric_event(number: int, *, minutes_ago: float = 10, **fields) -> dict:
    event = {
        "envelope": {
            "event_id": f"metric-{number}",
            "occurred_at": iso(datetime.now(UTC) - timedelta(minutes=minutes_ago)),
        },
        "name": "auth.verify.completed",
        "kind": "KIND_COUNTER",
        "value": 1,
        "labels": {"route": "/verify"},
        "service": "control",
        "instance": "control-0",
    }
    event.update(fields)
    return event


def post(ingest_client, *events: dict):
    response = ingest_client.post(
        {"events": list(events)}, query=f"?schema={SERVICE_METRIC_SCHEMA}"
    )
    assert response.status_code == 200, response.content
    return response.json()


def samples(client, name: str) -> dict[str, float]:
    """The exposed samples of ``name``: label text -> value."""
    text = client.get("/metrics").content.decode()
    found = {}
    for line in text.splitlines():
        match = re.match(rf"^{name}(\{{.*\}})? (\S+)$", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


def test_increments_are_added_under_the_underscored_name_with_labels(ingest_client, client):
    """Counter increments add up; the name is exposed with dots as underscores and labelled
    by instance, service and the event's labels."""
    body = post(ingest_client, metric_event(1, value=2), metric_event(2, value=3))
    assert body["accepted"] == 2
    assert samples(client, "auth_verify_completed") == {
        '{instance="control-0",route="/verify",service="control"}': 5.0
    }
    text = client.get("/metrics").content.decode()
    assert "# TYPE auth_verify_completed" in text


def test_retransmitted_increment_is_not_counted_twice(ingest_client, client):
    """A duplicate event (same source and id) does not move the counter."""
    event = metric_event(1, value=4)
    post(ingest_client, event)
    assert post(ingest_client, event)["duplicate"] == 1
    assert list(samples(client, "auth_verify_completed").values()) == [4.0]


def test_cumulative_snapshots_add_their_increase_and_survive_restarts(ingest_client, client):
    """Snapshots of a running total: 10 then 15 expose 15; a restart reporting 4 adds 4;
    a late, older snapshot changes nothing."""

    def snapshot(number, value, minutes_ago):
        return metric_event(
            number, value=value, minutes_ago=minutes_ago, temporality="TEMPORALITY_CUMULATIVE"
        )

    post(ingest_client, snapshot(1, 10, 30), snapshot(2, 15, 20))
    assert list(samples(client, "auth_verify_completed").values()) == [15.0]
    post(ingest_client, snapshot(3, 4, 10))
    assert list(samples(client, "auth_verify_completed").values()) == [19.0]
    post(ingest_client, snapshot(4, 12, 25))
    assert list(samples(client, "auth_verify_completed").values()) == [19.0]


def test_gauges_keep_the_newest_value(ingest_client, client):
    """A gauge shows the newest sample per series, whatever the arrival order."""
    post(
        ingest_client,
        metric_event(1, name="queue.depth", kind="KIND_GAUGE", value=7, minutes_ago=5),
        metric_event(2, name="queue.depth", kind="KIND_GAUGE", value=3, minutes_ago=9),
    )
    assert list(samples(client, "queue_depth").values()) == [7.0]


def test_series_beyond_the_limit_fold_and_are_counted(ingest_client, client, settings):
    """Label sets beyond TELEMETRY_SERVICE_METRIC_MAX_SERIES add to one folded series."""
    settings.TELEMETRY_SERVICE_METRIC_MAX_SERIES = 2
    events = [metric_event(n, labels={"route": f"/r{n}"}) for n in range(5)]
    post(ingest_client, *events)
    exposed = samples(client, "auth_verify_completed")
    assert len(exposed) == 3 and exposed['{folded="true"}'] == 3.0
    assert samples(client, "auth_verify_completed_folded_series_total") == {"": 3.0}


def test_platform_names_and_redacted_labels_are_never_exposed(ingest_client, client):
    """A service cannot shadow the platform's telemetry_* metrics, and a label value that
    redaction changed (an e-mail) is left out rather than exposed as a hash."""
    post(
        ingest_client,
        metric_event(1, name="telemetry.ingest.events"),
        metric_event(2, labels={"route": "/verify", "user": "eli.898485@corp.test"}),
    )
    text = client.get("/metrics").content.decode()
    assert "eli.898485" not in text and 'user="' not in text
    assert samples(client, "auth_verify_completed") == {
        '{instance="control-0",route="/verify",service="control"}': 1.0
    }
    assert exposed_name("telemetry.ingest.events") == ""
    assert exposed_name("auth.verify.completed") == "auth_verify_completed"
    assert exposed_name("9lives") == ""


def test_delivery_snapshot_counters_are_exposed_by_topic(ingest_client, client):
    """A diagnostics snapshot posted to the artifact API shows up on /metrics."""
    response = ingest_client.client.post(
        "/api/v1/artifacts/diagnostics",
        data=json.dumps(delivery_snapshot()),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {ingest_client.secret}",
    )
    assert response.status_code == 200 and response.json()["accepted"] == 21
    assert samples(client, "khala_delivery_total_polls") == {
        '{driver="memory",instance="runtime-0",service="runtime"}': 120.0
    }
    depth = samples(client, "khala_delivery_topic_queue_depth")
    assert depth == {
        '{driver="memory",instance="runtime-0",qos_tier="hot",service="runtime",'
        'topic="run:019c7f31:events",topic_class="run_events"}': 17.0
    }


def test_posted_service_metrics_join_the_conformance_catalogue(ingest_client):
    """Rules referencing a posted service counter find it in the catalogue."""
    post(ingest_client, metric_event(1))
    names = {entry.name: entry.type for entry in metric_catalogue()}
    assert names["auth_verify_completed"] == "counter"


def test_names_beyond_the_limit_and_kind_changes_are_dropped(ingest_client, client, settings):
    """With TELEMETRY_SERVICE_METRIC_MAX_NAMES=1 a second name is not exposed; a name first
    seen as a counter ignores later gauge samples."""
    settings.TELEMETRY_SERVICE_METRIC_MAX_NAMES = 1
    post(
        ingest_client,
        metric_event(1, value=2),
        metric_event(2, name="other.counter"),
        metric_event(3, kind="KIND_GAUGE", value=50),
    )
    assert list(samples(client, "auth_verify_completed").values()) == [2.0]
    assert samples(client, "other_counter") == {}


def test_histogram_samples_are_exposed_as_count_and_sum(ingest_client, client):
    """Histogram samples add to <name>_count and <name>_sum."""
    post(
        ingest_client,
        metric_event(1, name="verify.latency_ms", kind="KIND_HISTOGRAM_SAMPLE", value=12.5),
        metric_event(2, name="verify.latency_ms", kind="KIND_HISTOGRAM_SAMPLE", value=7.5),
    )
    assert list(samples(client, "verify_latency_ms_count").values()) == [2.0]
    assert list(samples(client, "verify_latency_ms_sum").values()) == [20.0]

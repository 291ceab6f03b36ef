"""Aggregate metrics from ingested telemetry: catalogue guard rails and the exposed values."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from governance.metric_plans import MetricDefinitionError
from governance.models import MetricDefinition, Schema
from governance.services import metric_definition_save
from ingest.telemetry_metrics import PREFIX
from telemetry_platform.redis_client import redis_client
from tests.factories import (
    CLIENT_TELEMETRY_SCHEMA,
    client_telemetry_events,
    client_telemetry_schema_register,
)

pytestmark = pytest.mark.django_db
COUNTER = "openagents_sync_client_telemetry_event_count"


@pytest.fixture
def client_schema(platform_config, settings):
    settings.TELEMETRY_PLAN_REFRESH_SECONDS = 0
    for key in redis_client().scan_iter(f"{PREFIX}*"):
        redis_client().delete(key)
    return client_telemetry_schema_register()


def define(**fields) -> MetricDefinition:
    definition = MetricDefinition(schema=Schema.objects.get(name=CLIENT_TELEMETRY_SCHEMA), **fields)
    return metric_definition_save(definition=definition, actor=None)


def exposition(client) -> str:
    return client.get("/metrics").content.decode()


def test_ingesting_client_diagnostics_moves_the_counter_with_labels(
    client_schema, ingest_client, client
):
    """The client telemetry counter counts events by oneof member, surface and version."""
    define(
        name=COUNTER,
        kind="counter",
        labels=[
            {"label": "event_type", "source": "oneof:event"},
            {"label": "surface", "source": "field:surface"},
            {"label": "app_version", "source": "field:app_version"},
        ],
    )
    events = client_telemetry_events(8)  # reconnect, auth_failure, replay, delivery_error x2
    ingest_client.post({"events": events}, query=f"?schema={CLIENT_TELEMETRY_SCHEMA}")
    text = exposition(client)
    assert f"# TYPE {COUNTER} counter" in text  # exact name: see ingest/telemetry_metrics.py
    line = (
        f'{COUNTER}{{app_version="1.0.0",event_type="reconnect",surface="CLIENT_SURFACE_IOS"}} 1.0'
    )
    assert line in text
    total = sum(
        float(row.rsplit(" ", 1)[1]) for row in text.splitlines() if row.startswith(f"{COUNTER}{{")
    )
    assert total == 8
    ingest_client.post({"events": events}, query=f"?schema={CLIENT_TELEMETRY_SCHEMA}")  # duplicates
    again = sum(
        float(row.rsplit(" ", 1)[1])
        for row in exposition(client).splitlines()
        if row.startswith(f"{COUNTER}{{")
    )
    assert again == 8  # duplicates are not counted twice


def test_replay_catchup_histogram_by_status(client_schema, ingest_client, client):
    """A histogram of replay catch-up duration, by status, from replay events only."""
    define(
        name="openagents_sync_replay_catchup_duration_ms",
        kind="histogram",
        value_field="replay.catchup_duration_ms",
        only_when="replay",
        labels=[{"label": "status", "source": "field:replay.status"}],
        buckets=[100, 1000],
    )
    events = client_telemetry_events(4)
    events[2]["replay"]["catchup_duration_ms"] = 450
    ingest_client.post({"events": events}, query=f"?schema={CLIENT_TELEMETRY_SCHEMA}")
    text = exposition(client)
    name = "openagents_sync_replay_catchup_duration_ms"
    assert f'{name}_bucket{{le="100",status="stale_cursor"}} 0.0' in text
    assert f'{name}_bucket{{le="1000",status="stale_cursor"}} 1.0' in text
    assert f'{name}_count{{status="stale_cursor"}} 1.0' in text
    assert f'{name}_sum{{status="stale_cursor"}} 450.0' in text


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        ([{"label": "session", "source": "field:session_id"}], "classified pseudonymous_id"),
        ([{"label": "actor", "source": "field:actor_scope_hash"}], "classified pseudonymous_id"),
        ([{"label": "x", "source": "field:no_such_field"}], "no field 'no_such_field'"),
        ([{"label": "x", "source": "oneof:nope"}], "no oneof 'nope'"),
        ([{"label": "x", "source": "surface"}], "source must be field:PATH or oneof:NAME"),
    ],
)
def test_label_guard_rails(client_schema, labels, fragment):
    """Labels never come from personal, secret or pseudonymous fields, nor unknown ones."""
    with pytest.raises(MetricDefinitionError) as refused:
        define(name="bad_metric", labels=labels)
    assert any(fragment in error for error in refused.value.errors), refused.value.errors
    assert not MetricDefinition.objects.filter(name="bad_metric").exists()


def test_series_beyond_the_limit_fold_into_other(client_schema, ingest_client, client):
    """With max_series=2, a third label set is counted under 'other' and the fold counted."""
    define(
        name="client_events_by_session_topic",
        labels=[{"label": "topic", "source": "field:event_id"}],
        max_series=2,
    )
    ingest_client.post(
        {"events": client_telemetry_events(4)}, query=f"?schema={CLIENT_TELEMETRY_SCHEMA}"
    )
    text = exposition(client)
    assert 'client_events_by_session_topic{topic="other"} 2.0' in text
    assert "client_events_by_session_topic_folded_series_total 2.0" in text


def test_catalogue_feeds_the_conformance_check(client_schema, tmp_path, capsys):
    """A rule using the catalogue metric passes; one using an unknown runtime metric fails."""
    define(name=COUNTER, labels=[{"label": "event_type", "source": "oneof:event"}])
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "groups:\n- name: khala\n  rules:\n"
        f'  - alert: ReconnectStorm\n    expr: sum(rate({COUNTER}{{event_type="reconnect"}}[5m])) > 5\n'
        "  - alert: FanoutDrops\n    expr: rate(openagents_runtime_khala_fanout_dropped_total[5m]) > 0\n"
    )
    with pytest.raises(SystemExit) as exit_info:
        call_command("check_conformance", str(rules), "--format", "json")
    assert exit_info.value.code == 1
    import json

    report = json.loads(capsys.readouterr().out)
    assert [(m["name"], m["metrics"]) for m in report["missing"]] == [
        ("FanoutDrops", ["openagents_runtime_khala_fanout_dropped_total"])
    ]


def test_conformance_upload_in_admin(client_schema, admin_client):
    """The admin shows the same report for an uploaded rules file."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    rules = b"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up_nothing_total > 0\n"
    response = admin_client.post(
        "/admin/governance/metricdefinition/conformance/",
        {"file": SimpleUploadedFile("rules.yaml", rules), "allow_missing": ""},
    )
    page = response.content.decode()
    assert 'id="conformance-report"' in page
    assert "up_nothing_total" in page


def sample_sum(client, name: str, **labels: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition(client).splitlines()
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items())
    )


def test_platform_counters_for_purges_searches_and_registrations(platform_config, client):
    """Purge runs and rows, audit searches and schema refusals are counted on /metrics."""
    from governance.services import SchemaRegistrationError, schema_register
    from ingest.services import events_purge_expired

    runs = sample_sum(client, "telemetry_purge_runs_total", event_class="audit_event")
    events_purge_expired(event_class="audit_event")
    assert sample_sum(client, "telemetry_purge_runs_total", event_class="audit_event") == runs + 1
    refused = sample_sum(client, "telemetry_schema_registrations_total", outcome="refused")
    with pytest.raises(SchemaRegistrationError):
        schema_register(
            name="x.v1",
            proto_files={"x.proto": "nonsense"},
            message_name="X",
            event_class="service_metric",
            actor=None,
        )
    assert (
        sample_sum(
            client,
            "telemetry_schema_registrations_total",
            outcome="refused",
            code="proto_compile_error",
        )
        >= 1
    )
    assert (
        sample_sum(client, "telemetry_schema_registrations_total", outcome="refused") == refused + 1
    )

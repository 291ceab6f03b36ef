"""The real OpenTelemetry Python SDK (LoggingHandler, MeterProvider, OTLP/HTTP protobuf
exporters) exporting to the live test server: logs stored governed, metrics on /metrics."""

from __future__ import annotations

import json
import logging
import re
import uuid

import pytest
from django.db import connection
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from governance.otlp import otlp_log_routes
from governance.services import default_configuration_load
from ingest.service_metrics import PREFIX
from ingest.services import api_key_create
from telemetry_platform.redis_client import redis_client
from tests.ingest.otlp.otlp_helpers import stored

PLANTED = {
    "user.id": "user_929583699",
    "user.email": "eli.898485@corp.test",
    "client.address": "132.147.15.18",
    "http.request.header.cookie": "session=s3cr3tcookie",
    "http.request.header.authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl",
    "url.full": "https://app.test/reset?email=ana.417@corp.test&api_key=sk_live_5f1e0c9a77d24b",
}
# What must appear nowhere: every planted value, and the personal parts of the URL's query.
RAW_VALUES = (*PLANTED.values(), "ana.417@corp.test", "sk_live_5f1e0c9a77d24b")


@pytest.fixture
def key(transactional_db):
    otlp_log_routes.clear()
    default_configuration_load()
    yield api_key_create(name="control-service", source="control-service", actor=None)
    otlp_log_routes.clear()


def sdk_logger(live_server, secret: str, name: str) -> tuple[logging.Logger, LoggerProvider]:
    provider = LoggerProvider(resource=Resource.create({"service.name": "control-service"}))
    exporter = OTLPLogExporter(
        endpoint=f"{live_server.url}/v1/logs", headers={"Authorization": f"Bearer {secret}"}
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger(name)
    logger.handlers = [LoggingHandler(level=logging.INFO, logger_provider=provider)]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, provider


def test_sdk_logs_land_governed_and_planted_pii_is_nowhere(live_server, key, caplog):
    """LoggingHandler records exported as OTLP protobuf are stored: an 'audit' logger's
    records as audit events joining the hash chain, others under telemetry.otel_log.v1; the
    planted raw personal values appear neither in any table nor in the captured logs."""
    caplog.set_level(logging.DEBUG)
    audit, audit_provider = sdk_logger(live_server, key.secret, "audit")
    app, app_provider = sdk_logger(live_server, key.secret, "control.app")
    audit.info(
        "autopilot updated",
        extra={"event.name": "autopilot.updated", "outcome": "success", **PLANTED},
    )
    app.warning("password reset for eli.898485@corp.test", extra=PLANTED)
    audit_provider.shutdown()
    app_provider.shutdown()

    [audit_row] = [
        r for r in stored("telemetry.audit_event.v1") if r["source"] == "control-service"
    ]
    assert audit_row["payload"]["event_name"] == "autopilot.updated"
    assert audit_row["actor_hash"] and audit_row["payload"]["user_id"].startswith("k")
    [log_row] = stored("telemetry.otel_log.v1")
    assert log_row["payload"]["severity_text"] == "WARN"
    assert log_row["payload"]["scope_name"] == "control.app"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT chain_seq FROM ingest_event WHERE source = 'control-service' "
            "AND chain_seq IS NOT NULL"
        )
        assert cursor.fetchall() == [(1,)]
        dump = []
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE'"
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (catalogue names)
            dump.append(json.dumps(cursor.fetchall(), default=str))
    everything = "\n".join(dump) + caplog.text
    for raw in RAW_VALUES:
        assert raw not in everything, raw


def test_sdk_metrics_appear_on_metrics_under_prometheus_names(live_server, key, client):
    """A MeterProvider's counter (delta and cumulative) and histogram exported as OTLP
    protobuf appear on /metrics: the counter as <name>_total accumulated across exports,
    the histogram as _bucket/_sum/_count; a user.id label is never a label."""
    for redis_key in redis_client().scan_iter(f"{PREFIX}*"):
        redis_client().delete(redis_key)
    suffix = uuid.uuid4().hex[:8]
    exporter = OTLPMetricExporter(
        endpoint=f"{live_server.url}/v1/metrics",
        headers={"Authorization": f"Bearer {key.secret}"},
        preferred_temporality={
            Counter: AggregationTemporality.DELTA,
            Histogram: AggregationTemporality.CUMULATIVE,
        },
    )
    reader = InMemoryMetricReader(
        preferred_temporality={
            Counter: AggregationTemporality.DELTA,
            Histogram: AggregationTemporality.CUMULATIVE,
        }
    )
    provider = MeterProvider(
        resource=Resource.create({"service.name": "control-service"}), metric_readers=[reader]
    )
    meter = provider.get_meter("control")
    requests = meter.create_counter(f"app{suffix}.requests", unit="{request}")
    latency = meter.create_histogram(f"app{suffix}.latency", unit="s")
    requests.add(5, {"route": "/verify", "user.id": "user_929583699"})
    latency.record(0.2, {"route": "/verify"})
    exporter.export(reader.get_metrics_data())
    requests.add(3, {"route": "/verify", "user.id": "user_929583699"})
    latency.record(2.0, {"route": "/verify"})
    exporter.export(reader.get_metrics_data())
    provider.shutdown()

    text = client.get("/metrics").content.decode()
    lines = [line for line in text.splitlines() if line.startswith(f"app{suffix}")]
    counter = [line for line in lines if line.startswith(f"app{suffix}_requests_total{{")]
    assert len(counter) == 1 and counter[0].endswith(" 8.0"), lines
    assert "user_929583699" not in text
    assert any(
        re.match(rf"^app{suffix}_latency_seconds_count\{{.*\}} 2\.0$", line) for line in lines
    ), lines
    assert any('le="+Inf"' in line and line.endswith(" 2.0") for line in lines), lines

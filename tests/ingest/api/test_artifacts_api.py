"""POST /api/v1/artifacts/perf-signoff and /diagnostics: API keys, answers, bad input, fuzzing."""

from __future__ import annotations

import gzip
import json

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections

from ingest.models import Event
from ingest.services import api_key_create, api_key_revoke
from tests.factories import PERF_SIGNOFF_SAMPLE_COUNT, delivery_snapshot, perf_signoff_artifact
from tests.test_openapi import fuzz_operation

pytestmark = pytest.mark.django_db
PERF_URL = "/api/v1/artifacts/perf-signoff"
DIAGNOSTICS_URL = "/api/v1/artifacts/diagnostics"


def post(client, url: str, body, *, secret: str | None, raw: bytes | None = None, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    return client.post(
        url,
        data=raw if raw is not None else json.dumps(body),
        content_type=extra.pop("content_type", "application/json"),
        **headers,
        **extra,
    )


def test_signoff_artifact_is_answered_per_sample_and_idempotent(client, api_key):
    """200 with one result per sample; posting it again answers every sample duplicate."""
    artifact = perf_signoff_artifact(build_id="b-100")
    first = post(client, PERF_URL, artifact, secret=api_key.secret)
    assert first.status_code == 200
    body = first.json()
    assert body["kind"] == "perf-signoff" and body["build_id"] == "b-100"
    assert body["accepted"] == PERF_SIGNOFF_SAMPLE_COUNT and body["rejected"] == 0
    assert body["results"][0] == {
        "ref": "boot.root.p95_ms",
        "status": "accepted",
        "event_id": body["results"][0]["event_id"],
    }
    again = post(client, PERF_URL, artifact, secret=api_key.secret).json()
    assert again["duplicate"] == PERF_SIGNOFF_SAMPLE_COUNT
    stored = Event.objects.filter(event_class_id="performance_budget_sample")
    assert stored.count() == PERF_SIGNOFF_SAMPLE_COUNT
    assert {event.source for event in stored} == {"control-service"}  # the key's source
    assert {event.ingest_request_id for event in stored} == {first["X-Request-Id"]}


def test_bad_samples_are_rejected_with_reasons_and_the_rest_is_stored(client, api_key):
    """Per-sample rejections carry ref, code and message; good samples are stored."""
    artifact = perf_signoff_artifact()
    artifact["metrics"]["boot"]["manifest"]["p95_ms"] = "slow"
    artifact["budgets"]["paint_p95_ms"] = 100
    body = post(client, PERF_URL, artifact, secret=api_key.secret).json()
    rejected = {r["ref"]: r for r in body["results"] if r["status"] == "rejected"}
    assert set(rejected) == {"boot.manifest.p95_ms", "budgets.paint_p95_ms"}
    assert rejected["boot.manifest.p95_ms"]["code"] == "not_numeric"
    assert "slow" not in rejected["boot.manifest.p95_ms"]["message"]
    assert rejected["budgets.paint_p95_ms"]["code"] == "unknown_budget"
    assert body["accepted"] == PERF_SIGNOFF_SAMPLE_COUNT - 1


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (json.dumps(perf_signoff_artifact()).encode()[:-30], "malformed_json"),
        (
            json.dumps({"timestamp": "20260222T181254Z", "metrics": {"a": 1}}).encode(),
            "missing_field",
        ),
        (b"[]", "body_not_an_object"),
    ],
)
def test_unusable_artifacts_are_answered_400_and_nothing_is_stored(client, api_key, raw, code):
    """Truncated JSON or missing required fields: 400 with the platform's error shape."""
    response = post(client, PERF_URL, None, secret=api_key.secret, raw=raw)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert not Event.objects.filter(event_class_id="performance_budget_sample").exists()


def test_authentication_and_scopes_are_those_of_the_events_api(client, api_key, platform_config):
    """No key: 401; revoked key: 401; a key scoped to other classes gets per-sample
    forbidden_schema rejections."""
    artifact = perf_signoff_artifact()
    assert post(client, PERF_URL, artifact, secret=None).status_code == 401
    scoped = api_key_create(
        name="clients-only", actor=None, allowed_event_classes=["client_diagnostic"]
    )
    body = post(client, PERF_URL, artifact, secret=scoped.secret).json()
    assert body["rejected"] == PERF_SIGNOFF_SAMPLE_COUNT
    assert {r["code"] for r in body["results"]} == {"forbidden_schema"}
    api_key_revoke(api_key=api_key.api_key, actor=None)
    revoked = post(client, PERF_URL, artifact, secret=api_key.secret)
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "revoked_api_key"


def test_content_type_size_gzip_and_rate_limits_apply(client, api_key, settings):
    """Wrong content type 400, oversized body 413, gzip accepted, rate limit 429."""
    artifact = perf_signoff_artifact()
    wrong = post(client, PERF_URL, artifact, secret=api_key.secret, content_type="text/plain")
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "unsupported_content_type"
    zipped = post(
        client,
        PERF_URL,
        None,
        secret=api_key.secret,
        raw=gzip.compress(json.dumps(artifact).encode()),
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert zipped.status_code == 200 and zipped.json()["accepted"] == PERF_SIGNOFF_SAMPLE_COUNT
    settings.TELEMETRY_MAX_BODY_BYTES = 100
    assert post(client, PERF_URL, artifact, secret=api_key.secret).status_code == 413
    settings.TELEMETRY_MAX_BODY_BYTES = 5 * 1024 * 1024
    limited = api_key_create(name="slow", actor=None, rate_limit_per_second=1)
    response = post(client, PERF_URL, artifact, secret=limited.secret)
    assert response.status_code == 429 and "Retry-After" in response


def test_source_parameter_is_recorded_and_checked_against_the_key(client, api_key):
    """?source= names the lane on each sample; a key limited to other sources is refused."""
    body = post(
        client, f"{PERF_URL}?source=web-shell", perf_signoff_artifact(), secret=api_key.secret
    )
    assert body.json()["accepted"] == PERF_SIGNOFF_SAMPLE_COUNT
    assert Event.objects.filter(source="web-shell").count() == PERF_SIGNOFF_SAMPLE_COUNT
    scoped = api_key_create(name="desktop", actor=None, allowed_sources=["desktop-shell"])
    refused = post(
        client, f"{PERF_URL}?source=web-shell", perf_signoff_artifact(), secret=scoped.secret
    )
    assert {r["code"] for r in refused.json()["results"]} == {"forbidden_source"}


def test_diagnostics_snapshot_endpoint(client, api_key):
    """A snapshot is answered per counter; service/instance parameters override the body's."""
    snapshot = delivery_snapshot()
    snapshot["delivery_metrics"]["total_polls"] = "many"
    response = post(
        client, f"{DIAGNOSTICS_URL}?instance=runtime-7", snapshot, secret=api_key.secret
    )
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "diagnostics" and body["instance"] == "runtime-7"
    assert body["rejected"] == 1 and body["accepted"] == 20
    assert body["results"][0]["ref"] == "delivery_metrics.total_polls"
    stored = Event.objects.filter(event_class_id="service_metric")
    assert {event.payload["instance"] for event in stored} == {"runtime-7"}


def test_schema_documents_the_artifact_operations(client):
    """/api/schema/ describes both artifact endpoints with their answers."""
    document = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for url in (PERF_URL, DIAGNOSTICS_URL):
        operation = document["paths"][url]["post"]
        assert set(operation["responses"]) >= {"200", "400", "401", "413", "429", "503"}
        assert operation["security"]
    perf_body = document["paths"][PERF_URL]["post"]["requestBody"]["content"]["application/json"]
    component = perf_body["schema"]["$ref"].rpartition("/")[2]
    assert component.startswith("PerfSignoffArtifact")
    properties = document["components"]["schemas"][component]["properties"]
    assert "pass" in properties and "pass_" not in properties


def test_fuzzed_artifact_requests_with_a_valid_key_never_get_a_server_error(api_key):
    """Generated requests for both artifact operations, with a real API key: no 5xx but 503."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    failures: list = []
    try:
        schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())
        operations = [
            result.ok()
            for result in schema.get_all_operations()
            if result.ok().path in (PERF_URL, DIAGNOSTICS_URL)
        ]
        assert len(operations) == 2
        for operation in operations:
            calls = fuzz_operation(
                operation, {"Authorization": f"Bearer {api_key.secret}"}, failures
            )
            assert calls >= 5
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    assert failures == []

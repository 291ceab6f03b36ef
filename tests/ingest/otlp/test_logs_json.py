"""POST /v1/logs with OTLP JSON: routes, field mapping, redaction, partial success, refusals."""

from __future__ import annotations

import gzip
import json

import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from governance.otlp import otlp_log_routes
from governance.services.otlp_routes import otlp_log_route_save
from ingest.services import api_key_create
from tests.ingest.otlp.otlp_helpers import log_record, logs_request, post_otlp, stored

pytestmark = pytest.mark.django_db

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"


@pytest.fixture(autouse=True)
def _fresh_routes():
    otlp_log_routes.clear()
    yield
    otlp_log_routes.clear()


def test_unrouted_record_lands_in_otel_log_with_semantic_convention_pii_governed(client, api_key):
    """A record no route names goes to telemetry.otel_log.v1: user.id and user.email hashed,
    client.address and http.request.header.* dropped, an e-mail in another attribute and in
    url.full scanned away, hex trace/span ids become the trace id, severity kept."""
    record = log_record(
        traceId=TRACE,
        spanId=SPAN,
        attributes={
            "user.id": "user_929583699",
            "user.email": "eli.898485@corp.test",
            "client.address": "132.147.15.18",
            "http.request.header.authorization": "Bearer abc.def.ghi",
            "url.full": "https://app.test/reset?email=eli.898485@corp.test",
            "note": "contact eli.898485@corp.test please",
            "retry.count": 3,
        },
    )
    response = post_otlp(client, api_key.secret, "/v1/logs", logs_request(record))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json() == {}  # no partial_success: everything accepted
    [row] = stored("telemetry.otel_log.v1")
    payload = row["payload"]
    text = json.dumps(row)
    for raw in ("user_929583699", "eli.898485@corp.test", "132.147.15.18", "abc.def.ghi"):
        assert raw not in text
    assert payload["user_id"].startswith("k") and ":" in payload["user_id"]
    assert payload["user_email"].startswith("k") and ":" in payload["user_email"]
    assert "client_address" not in payload and "http_request_header" not in payload
    assert payload["attributes"]["retry.count"] == "3"
    assert payload["severity_text"] == "INFO" and payload["severity_number"] == 9
    assert payload["service_name"] == "control-service" and row["source"] == "control-service"
    assert row["trace_id"] == TRACE
    assert row["event_class"] == "service_log"


def test_audit_scope_records_become_audit_events_searchable_by_raw_user_id(client, api_key):
    """Records of the 'audit' logger map onto telemetry.audit_event.v1 by attribute name
    (user.id -> user_id, session.id -> session_id ...); ids are stored hashed, unknown
    attributes land in the scanned attributes map, and audit search finds the record by
    the raw user id."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    record = log_record(
        eventName="autopilot.updated",
        body={"kvlistValue": {"values": [{"key": "outcome", "value": {"stringValue": "rejected"}}]}},
        attributes={
            "user.id": "user_929583699",
            "session_id": "sess_53171691",
            "org_id": "org_3186027",
            "request_id": "req_17362f25244caf9c4dabb4817253edc6",
            "autopilot_id": "ap_2",
            "email": "eli.898485@corp.test",
        },
    )
    response = post_otlp(client, api_key.secret, "/v1/logs", logs_request(record, scope="audit"))
    assert response.status_code == 200 and response.json() == {}
    [row] = stored("telemetry.audit_event.v1")[-1:]
    payload = row["payload"]
    assert payload["event_name"] == "autopilot.updated" and payload["outcome"] == "rejected"
    assert payload["request_id"] == "req_17362f25244caf9c4dabb4817253edc6"
    assert payload["attributes"]["autopilot_id"] == "ap_2"
    assert "eli.898485@corp.test" not in json.dumps(payload)
    for field in ("user_id", "session_id", "org_id"):
        assert payload[field].startswith("k") and "_" not in payload[field].split(":")[-1]
    analyst = get_user_model().objects.create_user("sam", password="pw-123456!")
    analyst.groups.add(Group.objects.get(name="security analyst"))
    client.force_login(analyst)
    found = client.get("/api/v1/audit-events", {"actor": "user_929583699"}).json()["results"]
    assert [r["payload"]["event_name"] for r in found if r["source"] != "platform"] == [
        "autopilot.updated"
    ]


def test_partial_success_names_paths_and_codes_never_values(client, api_key):
    """A record without a timestamp and one with 10,000 attributes are rejected, the rest
    stored; partial_success counts them and names path, code and field, no value."""
    no_time = log_record(attributes={"user.email": "secret.person@corp.test"})
    del no_time["timeUnixNano"]
    crowded = log_record(attributes={f"a{i}": "secret.person@corp.test" for i in range(10_000)})
    good = log_record()
    response = post_otlp(client, api_key.secret, "/v1/logs", logs_request(no_time, crowded, good))
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "2"  # int64: a string in the JSON mapping
    message = partial["errorMessage"]
    assert "resourceLogs[0].scopeLogs[0].logRecords[0]: missing_field at time" in message
    assert "logRecords[1]: too_many_attributes at attributes" in message
    assert "secret.person" not in message
    assert len(stored("telemetry.otel_log.v1")) == 1


def test_observed_time_stands_in_and_a_megabyte_value_is_rejected_per_record(client, api_key):
    """observed_time_unix_nano is the occurred-at when time_unix_nano is absent; a 1 MB
    attribute value rejects its record (event_too_large), not the request."""
    observed = log_record()
    observed["observedTimeUnixNano"] = observed.pop("timeUnixNano")
    huge = log_record(attributes={"blob": "x" * 1_000_000})
    response = post_otlp(client, api_key.secret, "/v1/logs", logs_request(observed, huge))
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1"
    assert "logRecords[1]: event_too_large" in partial["errorMessage"]
    assert len(stored("telemetry.otel_log.v1")) == 1


def test_a_route_maps_event_names_and_a_blank_schema_rejects(client, api_key):
    """Routes are data: an event-name route sends records to its schema; turning the
    fallback into a rejection refuses unrouted records with unmapped_log_record."""
    otlp_log_route_save(
        name="autopilot", actor=None, priority=5, match_event_name="autopilot.*",
        schema_name="telemetry.audit_event.v1",
    )  # fmt: skip
    otlp_log_route_save(name="otel-log-fallback", actor=None, priority=1000, schema_name="")
    routed = log_record(eventName="autopilot.updated")
    unrouted = log_record(attributes={"event.name": "something.else"})
    response = post_otlp(client, api_key.secret, "/v1/logs", logs_request(routed, unrouted))
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1"
    assert "logRecords[1]: unmapped_log_record at event_name" in partial["errorMessage"]
    assert [r["payload"]["event_name"] for r in stored("telemetry.audit_event.v1")][-1] == (
        "autopilot.updated"
    )


def test_service_name_outside_the_keys_sources_is_rejected(client, platform_config):
    """resource service.name is the source, checked against the key's allowed sources."""
    key = api_key_create(
        name="billing", source="billing", allowed_sources=["billing"], actor=None
    )
    response = post_otlp(client, key.secret, "/v1/logs", logs_request(log_record()))
    partial = response.json()["partialSuccess"]
    assert "forbidden_source" in partial["errorMessage"]
    assert stored("telemetry.otel_log.v1") == []


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"\xff\xfe garbage", "application/x-protobuf", "malformed_protobuf"),
        (b"{not json", "application/json", "malformed_json"),
        (json.dumps({"resourceLogs": {"a": 1}}).encode(), "application/json", "malformed_json"),
        (
            json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
                {"timeUnixNano": "soon", "body": {"stringValue": "secret.person@corp.test"}}
            ]}]}]}).encode(),
            "application/json",
            "malformed_json",
        ),
        (json.dumps(logs_request(log_record(traceId="zz"))).encode(), "application/json",
         "malformed_json"),
    ],
)  # fmt: skip
def test_unparseable_bodies_are_400_in_the_request_encoding(
    client, api_key, body, content_type, code
):
    """Garbage protobuf and wrong JSON types answer 400 with a google.rpc.Status in the
    request's encoding, naming the code and never quoting the body."""
    response = post_otlp(client, api_key.secret, "/v1/logs", body, content_type=content_type)
    assert response.status_code == 400
    assert response["Content-Type"] == content_type
    if content_type == "application/json":
        status = response.json()
        assert status["code"] == 3 and status["message"].startswith(f"{code}:")
    else:
        status = Status.FromString(response.content)
        assert status.code == 3 and status.message.startswith(f"{code}:")
    assert b"secret.person" not in response.content


def test_gzip_body_is_accepted_and_protobuf_answer_is_protobuf(client, api_key):
    """Content-Encoding: gzip is inflated; a protobuf request gets a protobuf answer."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    request = json_format.ParseDict(logs_request(log_record()), ExportLogsServiceRequest())
    response = post_otlp(
        client,
        api_key.secret,
        "/v1/logs",
        gzip.compress(request.SerializeToString()),
        content_type="application/x-protobuf",
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-protobuf"
    answer = ExportLogsServiceResponse.FromString(response.content)
    assert not answer.HasField("partial_success")
    assert len(stored("telemetry.otel_log.v1")) == 1


def test_rate_limited_is_429_with_retry_after_in_the_request_encoding(client, platform_config):
    """The key's rate limit answers 429 with Retry-After, as a protobuf Status for protobuf."""
    key = api_key_create(name="slow", source="control-service", actor=None, rate_limit_per_second=1)
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    records = [log_record() for _ in range(20)]
    request = json_format.ParseDict(logs_request(*records), ExportLogsServiceRequest())
    response = post_otlp(
        client, key.secret, "/v1/logs", request.SerializeToString(),
        content_type="application/x-protobuf",
    )  # fmt: skip
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    status = Status.FromString(response.content)
    assert status.code == 8 and status.message.startswith("rate_limited:")
    assert stored("telemetry.otel_log.v1") == []


def test_store_unavailable_is_503_with_retry_after(client, api_key, monkeypatch):
    """A store failure the client should retry answers 503 with Retry-After, in JSON."""
    from ingest import pipeline

    def unavailable(items, context):
        raise pipeline.RetryableError("the store is unavailable; retry later")

    monkeypatch.setattr(pipeline, "ingest_batch", unavailable)
    response = post_otlp(client, api_key.secret, "/v1/logs", logs_request(log_record()))
    assert response.status_code == 503 and response["Retry-After"]
    assert response.json()["code"] == 14


def test_traces_are_refused_clearly_and_bad_keys_get_401(client, api_key):
    """/v1/traces answers 501 traces_not_accepted; /v1/logs without a valid key is 401."""
    response = post_otlp(client, api_key.secret, "/v1/traces", {"resourceSpans": []})
    assert response.status_code == 501
    assert response.json()["message"].startswith("traces_not_accepted: this platform is not")
    response = post_otlp(client, "tgp_nope_nope", "/v1/logs", logs_request(log_record()))
    assert response.status_code == 401 and response.json()["code"] == 16


def test_an_attribute_filling_an_integer_field_must_be_a_whole_number(client, api_key):
    """Attributes fill integer fields from ints, integral doubles or decimal strings; any
    other value rejects its record (invalid_value at the field), an overflow out_of_range."""
    records = [
        log_record(attributes={"severity_number": "7"}),
        log_record(attributes={"severity_number": "loud secret.person@corp.test"}),
        log_record(attributes={"severity_number": 2**40}),
    ]
    response = post_otlp(client, api_key.secret, "/v1/logs", logs_request(*records))
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "2"
    assert "logRecords[1]: invalid_value at severity_number" in partial["errorMessage"]
    assert "logRecords[2]: out_of_range at severity_number" in partial["errorMessage"]
    assert "secret.person" not in partial["errorMessage"]
    assert [row["payload"]["severity_number"] for row in stored("telemetry.otel_log.v1")] == [7]

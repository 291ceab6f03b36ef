"""What clients rely on: gzip, limits, skew, scopes, expiry, rate limits, trace context, 503."""

from __future__ import annotations

import gzip
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from ingest.models import ApiKey, Event
from ingest.services import api_key_create
from tests.audit_helpers import platform_audit_events
from tests.factories import AUDIT_SCHEMA, IngestClient, audit_event, batch, iso

pytestmark = pytest.mark.django_db


def post_gzip(ingest_client, payload: bytes, **headers):
    return ingest_client.post(None, raw=payload, HTTP_CONTENT_ENCODING="gzip", **headers)


def test_gzip_body_is_accepted(ingest_client):
    """Content-Encoding: gzip bodies are inflated and ingested."""
    body = gzip.compress(json.dumps(batch(audit_event(), audit_event())).encode())
    response = post_gzip(ingest_client, body)
    assert response.status_code == 200
    assert response.json()["accepted"] == 2


def test_gzip_bomb_is_413(ingest_client, settings):
    """A small body that inflates past TELEMETRY_MAX_DECOMPRESSED_BYTES is refused, not inflated."""
    settings.TELEMETRY_MAX_DECOMPRESSED_BYTES = 64 * 1024
    bomb = gzip.compress(b"{" + b" " * (10 * 1024 * 1024) + b"}")
    assert len(bomb) < 20_000
    response = post_gzip(ingest_client, bomb)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


@pytest.mark.parametrize(
    ("payload", "encoding", "code"),
    [
        (b"not gzip at all", "gzip", "malformed_gzip"),
        (gzip.compress(b'{"events": []}')[:-6], "gzip", "malformed_gzip"),
        (b"{}", "br", "unsupported_content_encoding"),
    ],
)
def test_bad_encodings_are_400(ingest_client, payload, encoding, code):
    """Broken or unsupported encodings get a specific 400."""
    response = ingest_client.post(None, raw=payload, HTTP_CONTENT_ENCODING=encoding)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_event_over_the_size_limit_is_rejected_alone(ingest_client, settings):
    """An event larger than TELEMETRY_MAX_EVENT_BYTES is rejected; its neighbours are stored."""
    settings.TELEMETRY_MAX_EVENT_BYTES = 2048
    big = audit_event(attributes={"blob": "x" * 4096})
    results = ingest_client.post(batch(audit_event(), big)).json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert results[1]["code"] == "event_too_large"


def test_clock_skew_and_retention_window(ingest_client, settings):
    """Too far in the future: clock_skew; older than the class retention: expired."""
    settings.TELEMETRY_MAX_FUTURE_SKEW_SECONDS = 60
    now = datetime.now(UTC)
    events = [
        audit_event(occurred_at=iso(now + timedelta(seconds=30))),
        audit_event(occurred_at=iso(now + timedelta(minutes=10))),
        audit_event(occurred_at=iso(now - timedelta(days=401))),
    ]
    results = ingest_client.post(batch(*events)).json()["results"]
    assert [r.get("code", r["status"]) for r in results] == ["accepted", "clock_skew", "expired"]
    assert results[1]["field"] == "occurred_at"


def make_client(client, **scope):
    created = api_key_create(name=f"scoped-{len(scope)}-{id(scope)}", source="web", actor=None)
    ApiKey.objects.filter(pk=created.api_key.pk).update(**scope)
    return IngestClient(client, created.secret)


def test_key_scoped_to_schemas_and_classes(client, platform_config):
    """Outside its schemas/classes a key gets per-event forbidden_schema."""
    scoped = make_client(client, allowed_schemas=["telemetry.client_*"])
    diagnostic = {
        "envelope": {"event_id": "d1", "occurred_at": iso(datetime.now(UTC))},
        "name": "boot",
    }
    body = {
        "events": [
            {"schema": AUDIT_SCHEMA, "event": audit_event()},
            {"schema": "telemetry.client_diagnostic.v1", "event": diagnostic},
        ]
    }
    results = scoped.post(body).json()["results"]
    assert results[0]["code"] == "forbidden_schema"
    assert results[1]["status"] == "accepted"
    by_class = make_client(client, allowed_event_classes=["service_metric"])
    assert by_class.post(batch(audit_event())).json()["results"][0]["code"] == "forbidden_schema"


def test_key_scoped_to_sources_and_surfaces(client, platform_config):
    """An event from a source or surface outside the key's scope is forbidden_source."""
    scoped = make_client(client, allowed_sources=["web"], allowed_surfaces=["CLIENT_SURFACE_WEB"])
    now = iso(datetime.now(UTC))
    events = [
        {"envelope": {"event_id": "a", "occurred_at": now, "surface": "CLIENT_SURFACE_WEB"}},
        {"envelope": {"event_id": "b", "occurred_at": now, "surface": "CLIENT_SURFACE_IOS"}},
        {
            "envelope": {
                "event_id": "c",
                "occurred_at": now,
                "source": "ios-app",
                "surface": "CLIENT_SURFACE_WEB",
            }
        },
    ]
    results = scoped.post(
        {"events": events}, query="?schema=telemetry.client_diagnostic.v1"
    ).json()["results"]
    assert [r.get("code", r["status"]) for r in results] == [
        "accepted",
        "forbidden_source",
        "forbidden_source",
    ]


def test_expired_key_is_401(ingest_client, api_key):
    """A key past its expiry is refused like a revoked one."""
    ApiKey.objects.filter(pk=api_key.api_key.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    response = ingest_client.post(batch(audit_event()))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "expired_api_key"


def test_failed_authentications_are_audited_but_rate_limited(client, platform_config):
    """Bad keys are recorded as platform audit events, once a minute per origin, never the secret."""
    from telemetry_platform.redis_client import redis_client

    redis_client().flushdb()
    secret = "tgp_abcdef012345_not-the-real-secret"
    for _ in range(5):
        response = client.post(
            "/api/v1/events",
            data="{}",
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {secret}",
        )
        assert response.status_code == 401
    records = platform_audit_events("platform.auth.failed")
    assert records.count() == 1
    attributes = records.get().payload["attributes"]
    assert attributes["key_prefix"] == "abcdef012345"
    assert attributes["reason"] == "invalid_api_key"
    assert "not-the-real-secret" not in json.dumps(records.get().payload)


def test_rate_limit_is_429_with_retry_after(client, platform_config):
    """Beyond the key's events/s a batch gets 429 and Retry-After; nothing of it is stored."""
    from telemetry_platform.redis_client import redis_client

    redis_client().flushdb()
    limited = make_client(client, rate_limit_per_second=1.0)
    first = limited.post(batch(*(audit_event() for _ in range(5))))  # the whole 5 s burst
    assert first.status_code == 200
    stored = Event.objects.filter(source="web").count()
    second = limited.post(batch(audit_event(), audit_event(), audit_event()))
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "rate_limited"
    assert int(second["Retry-After"]) >= 1
    assert Event.objects.filter(source="web").count() == stored


def test_bytes_are_rate_limited_as_well_as_events(client, platform_config, settings):
    """A few huge events pass an events/s limit but not the bytes/s one: 429, nothing stored,
    and the events bucket is not charged for the refused batch."""
    from telemetry_platform.redis_client import redis_client

    redis_client().flushdb()
    settings.TELEMETRY_RATE_LIMIT_BYTES_PER_SECOND = 4000  # 20,000 bytes of burst
    limited = make_client(client, rate_limit_per_second=100.0)
    big = [audit_event(attributes={"note": "y" * 6000}) for _ in range(2)]
    assert limited.post(batch(*big)).status_code == 200
    stored = Event.objects.filter(source="web").count()
    refused = limited.post(batch(*(audit_event(attributes={"note": "y" * 6000}) for _ in range(2))))
    assert refused.status_code == 429
    assert "bytes/s" in refused.json()["error"]["message"]
    assert int(refused["Retry-After"]) >= 1
    assert Event.objects.filter(source="web").count() == stored
    # Small batches still go through on the events bucket the refusal did not charge.
    settings.TELEMETRY_RATE_LIMIT_BYTES_PER_SECOND = 0
    assert limited.post(batch(*(audit_event() for _ in range(400)))).status_code == 200


def test_traceparent_header_applies_to_events_without_one(ingest_client):
    """A valid traceparent header gives its trace id to events that carry none of their own."""
    own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = ingest_client.post(
        batch(audit_event(event_name="a"), audit_event(event_name="b", traceparent=own)),
        HTTP_TRACEPARENT=header,
        HTTP_TRACESTATE="rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    )
    assert response.json()["accepted"] == 2
    traces = dict(
        Event.objects.filter(source="control-service").values_list(
            "payload__event_name", "trace_id"
        )
    )
    assert traces == {
        "a": "4bf92f3577b34da6a3ce929d0e0e4736",
        "b": "0af7651916cd43dd8448eb211c80319c",
    }


@pytest.mark.parametrize(
    ("header", "value", "code"),
    [
        (
            "HTTP_TRACEPARENT",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "invalid_traceparent",
        ),
        (
            "HTTP_TRACEPARENT",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "invalid_traceparent",
        ),
        (
            "HTTP_TRACEPARENT",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "invalid_traceparent",
        ),
        (
            "HTTP_TRACEPARENT",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "invalid_traceparent",
        ),
        ("HTTP_TRACEPARENT", "not-a-traceparent", "invalid_traceparent"),
        ("HTTP_TRACESTATE", "no equals sign", "invalid_tracestate"),
        ("HTTP_TRACESTATE", ",".join(f"k{i}=v" for i in range(33)), "invalid_tracestate"),
    ],
)
def test_invalid_trace_context_is_400(ingest_client, header, value, code):
    """Malformed W3C trace context headers are refused with a specific code."""
    response = ingest_client.post(batch(audit_event()), **{header: value})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


@pytest.mark.django_db(transaction=True)
def test_slow_store_answers_503_and_keeps_nothing(ingest_client, settings):
    """With the event table locked beyond the statement timeout: 503 + Retry-After, no rows."""
    settings.TELEMETRY_DB_STATEMENT_TIMEOUT_MS = 300
    locked = threading.Event()
    release = threading.Event()

    def hold_lock():
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute("LOCK TABLE ingest_event IN ACCESS EXCLUSIVE MODE")
                locked.set()
                release.wait(10)
                cursor.execute("ROLLBACK")
        finally:
            other.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        response = ingest_client.post(batch(audit_event(event_name="during.lock")))
    finally:
        release.set()
        holder.join()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "store_unavailable"
    assert response["Retry-After"]
    assert not Event.objects.filter(payload__event_name="during.lock").exists()
    retry = ingest_client.post(batch(audit_event(event_name="after.lock")))
    assert retry.json()["accepted"] == 1
    connection.close()


def test_a_store_refusal_a_retry_cannot_fix_is_not_answered_retry_later(ingest_client):
    """A constraint other than the dedupe key refuses the batch: 500 store_refused, no
    Retry-After (a 503 would have the client resend the same batch for ever), no rows."""
    with connection.cursor() as cursor:
        # A real constraint violation, from PostgreSQL itself (rolled back with the test).
        cursor.execute(
            "ALTER TABLE ingest_event ADD CONSTRAINT test_no_refused_source "
            "CHECK (source <> 'refused-source') NOT VALID"
        )
    response = ingest_client.post(batch(audit_event(source="refused-source")))
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "store_refused"
    assert "Retry-After" not in response
    assert "refused-source" not in response.content.decode()
    assert not Event.objects.filter(source="refused-source").exists()

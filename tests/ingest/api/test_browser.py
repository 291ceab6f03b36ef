"""Publishable keys from pages: origins, key in query or body, text/plain beacons, CORS, limits."""

from __future__ import annotations

import json

import pytest

from ingest.models import ApiKey, Event
from ingest.services import ApiKeyScopeError, api_key_create, api_key_revoke, api_key_rotate
from tests.audit_helpers import platform_audit_events
from tests.factories import (
    AUDIT_SCHEMA,
    CLIENT_TELEMETRY_SCHEMA,
    audit_event,
    batch,
    client_telemetry_events,
    client_telemetry_schema_register,
)

pytestmark = pytest.mark.django_db

PAGE = "https://app.example.test"
EVENTS = "/api/v1/events"


@pytest.fixture
def contract(platform_config):
    return client_telemetry_schema_register()


@pytest.fixture(autouse=True)
def _fresh_buckets():
    from telemetry_platform.redis_client import redis_client

    redis_client().flushdb()


def publishable(*, name: str = "web-page", **scope):
    values = {
        "kind": ApiKey.Kind.PUBLISHABLE,
        "allowed_schemas": [CLIENT_TELEMETRY_SCHEMA],
        "allowed_origins": [PAGE],
        **scope,
    }
    return api_key_create(name=name, source="web-shell", actor=None, **values)


def web_events(count: int = 2) -> list[dict]:
    return [dict(event, surface="CLIENT_SURFACE_WEB") for event in client_telemetry_events(count)]


def beacon(client, body: dict, *, query: str = "", **headers):
    return client.post(
        f"{EVENTS}{query}",
        data=json.dumps(body),
        content_type="text/plain;charset=UTF-8",
        **headers,
    )


def test_beacon_with_key_in_query_is_stored_and_answered_with_cors(client, contract):
    """A text/plain body from an allowed origin, key in ?api_key=, is stored; the answer echoes
    the origin (never *) and allows no credentials."""
    key = publishable()
    body = {"schema": CLIENT_TELEMETRY_SCHEMA, "events": web_events(2)}
    response = beacon(client, body, query=f"?api_key={key.secret}", HTTP_ORIGIN=PAGE)
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 2
    assert response["Access-Control-Allow-Origin"] == PAGE
    assert "Origin" in response["Vary"]
    assert "Access-Control-Allow-Credentials" not in response
    assert "retry-after" in response["Access-Control-Expose-Headers"]
    assert Event.objects.filter(source="web-shell").count() == 2


def test_key_in_text_plain_body_is_accepted(client, contract):
    """The key may travel as "api_key" in the JSON of a text/plain body (sendBeacon)."""
    key = publishable()
    body = {"api_key": key.secret, "schema": CLIENT_TELEMETRY_SCHEMA, "events": web_events(1)}
    response = beacon(client, body, HTTP_ORIGIN=PAGE)
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1


def test_referer_stands_in_for_a_missing_origin(client, contract):
    """Without Origin, the origin of Referer is checked."""
    key = publishable()
    body = {"schema": CLIENT_TELEMETRY_SCHEMA, "events": web_events(1)}
    allowed = beacon(client, body, query=f"?api_key={key.secret}", HTTP_REFERER=f"{PAGE}/a?b=c")
    assert allowed.status_code == 200
    refused = beacon(
        client, body, query=f"?api_key={key.secret}", HTTP_REFERER="https://evil.test/app"
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "origin_not_allowed"


def test_origin_not_allowed_is_403_with_nothing_stored_and_no_cors(client, contract):
    """A page on another origin is refused (origin_not_allowed); nothing is stored, and the
    answer carries no Access-Control-Allow-Origin, so the page cannot read it either."""
    key = publishable()
    body = {"schema": CLIENT_TELEMETRY_SCHEMA, "events": web_events(1)}
    response = beacon(client, body, query=f"?api_key={key.secret}", HTTP_ORIGIN="https://evil.test")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response
    assert not Event.objects.filter(source="web-shell").exists()


def test_no_origin_is_refused_unless_the_key_allows_it(client, contract):
    """A server (no Origin, no Referer) is refused with origin_required; a key configured
    with allow_no_origin accepts it."""
    body = {"schema": CLIENT_TELEMETRY_SCHEMA, "events": web_events(1)}
    key = publishable()
    response = beacon(client, body, query=f"?api_key={key.secret}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_required"
    bearer = client.post(
        EVENTS,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key.secret}",
    )
    assert bearer.status_code == 403
    assert bearer.json()["error"]["code"] == "origin_required"
    native = publishable(name="native-app", allowed_origins=[], allow_no_origin=True)
    assert beacon(client, body, query=f"?api_key={native.secret}").status_code == 200


def test_null_origin_is_not_allowed(client, contract):
    """Origin: null (a sandboxed frame, a file: page) is never an allowed origin."""
    key = publishable()
    body = {"schema": CLIENT_TELEMETRY_SCHEMA, "events": web_events(1)}
    response = beacon(client, body, query=f"?api_key={key.secret}", HTTP_ORIGIN="null")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"


def test_schema_and_surface_outside_the_scope_are_rejected_per_event(client, contract):
    """A publishable key sends only the schemas and surfaces it names (forbidden_schema,
    forbidden_source); nothing of those is stored."""
    key = publishable(allowed_surfaces=["CLIENT_SURFACE_WEB"])
    body = {
        "events": [
            {"schema": AUDIT_SCHEMA, "event": audit_event()},
            {
                "schema": CLIENT_TELEMETRY_SCHEMA,
                "event": dict(web_events(1)[0], surface="CLIENT_SURFACE_IOS"),
            },
        ]
    }
    response = beacon(client, body, query=f"?api_key={key.secret}", HTTP_ORIGIN=PAGE)
    assert response.status_code == 200
    codes = [result["code"] for result in response.json()["results"]]
    assert codes == ["forbidden_schema", "forbidden_source"]
    assert not Event.objects.filter(source="web-shell").exists()


def test_a_publishable_key_cannot_read_check_or_send_artifacts(client, contract):
    """Reads (not a read credential: not_authenticated), schema checks and artifact lanes
    (403, publishable_key_not_allowed) are refused to a publishable key."""
    key = publishable()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key.secret}", "HTTP_ORIGIN": PAGE}
    for path in ("/api/v1/schemas", f"/api/v1/events?api_key={key.secret}"):
        read = client.get(path, **auth)
        assert read.status_code in (401, 403, 405), path
        assert read.status_code != 200
    refused = client.get("/api/v1/schemas", **auth)
    assert refused.json()["error"]["code"] == "not_authenticated"
    artifact = client.post(
        "/api/v1/artifacts/diagnostics", data="{}", content_type="application/json", **auth
    )
    assert artifact.status_code == 403
    assert artifact.json()["error"]["code"] == "publishable_key_not_allowed"
    check = client.post(
        f"/api/v1/schemas/{CLIENT_TELEMETRY_SCHEMA}/check",
        data="{}",
        content_type="application/json",
        **auth,
    )
    assert check.status_code == 403


def test_a_secret_key_in_the_url_is_refused(client, contract, api_key):
    """An ingest key in ?api_key= is refused (key_not_publishable): URLs end up in logs."""
    body = {"schema": AUDIT_SCHEMA, "events": [audit_event()]}
    response = beacon(client, body, query=f"?api_key={api_key.secret}", HTTP_ORIGIN=PAGE)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "key_not_publishable"


def test_text_plain_is_refused_for_ingest_keys(ingest_client):
    """text/plain is the beacon's type, accepted for publishable keys only."""
    response = ingest_client.post(batch(audit_event()), content_type="text/plain")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_content_type"


def test_ingest_keys_get_no_cors_headers(ingest_client):
    """A page cannot read answers made with a secret key: no CORS headers for ingest keys."""
    response = ingest_client.post(batch(audit_event()), HTTP_ORIGIN=PAGE)
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


def preflight(client, origin: str, *, query: str = "", method: str = "POST"):
    return client.options(
        f"{EVENTS}{query}",
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,traceparent,x-request-id",
    )


def test_preflight_from_an_allowed_origin_passes(client, contract, settings):
    """OPTIONS from an origin a publishable key allows: 204, origin echoed, methods, headers
    and max-age; no credentials."""
    settings.TELEMETRY_API_KEY_CACHE_SECONDS = 0
    key = publishable()
    for query in ("", f"?api_key={key.secret}"):
        response = preflight(client, PAGE, query=query)
        assert response.status_code == 204
        assert response["Access-Control-Allow-Origin"] == PAGE
        assert response["Access-Control-Allow-Methods"] == "POST, OPTIONS"
        headers = response["Access-Control-Allow-Headers"]
        for name in ("content-type", "traceparent", "x-request-id", "authorization"):
            assert name in headers
        assert response["Access-Control-Max-Age"] == "7200"
        assert "Access-Control-Allow-Credentials" not in response


def test_preflight_from_another_origin_or_method_is_refused(client, contract, settings):
    """OPTIONS from an origin no key allows is 403 origin_not_allowed without CORS headers;
    a method other than POST is preflight_method_not_allowed; a revoked key's origin is gone."""
    settings.TELEMETRY_API_KEY_CACHE_SECONDS = 0
    key = publishable()
    refused = preflight(client, "https://evil.test")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in refused
    by_key = preflight(client, "https://evil.test", query=f"?api_key={key.secret}")
    assert by_key.status_code == 403
    put = preflight(client, PAGE, method="PUT")
    assert put.json()["error"]["code"] == "preflight_method_not_allowed"
    api_key_revoke(api_key=key.api_key, actor=None)
    assert preflight(client, PAGE).status_code == 403


def test_per_ip_rate_limit_is_429_and_the_ip_is_not_stored(client, contract, settings):
    """Each client IP has its own bucket for a publishable key (429 rate_limited with
    Retry-After, readable by the page); the bucket's name holds no raw IP."""
    from telemetry_platform.redis_client import redis_client

    settings.TELEMETRY_RATE_LIMIT_BURST_SECONDS = 1.0
    key = publishable(rate_limit_per_ip_per_second=2.0)
    body = {"schema": CLIENT_TELEMETRY_SCHEMA, "events": web_events(2)}
    query = f"?api_key={key.secret}"
    first = beacon(client, body, query=query, HTTP_ORIGIN=PAGE, REMOTE_ADDR="203.0.113.7")
    assert first.status_code == 200
    second = beacon(client, body, query=query, HTTP_ORIGIN=PAGE, REMOTE_ADDR="203.0.113.7")
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "rate_limited"
    assert "per client" in second.json()["error"]["message"]
    assert int(second["Retry-After"]) >= 1
    assert second["Access-Control-Allow-Origin"] == PAGE
    other = beacon(client, body, query=query, HTTP_ORIGIN=PAGE, REMOTE_ADDR="198.51.100.9")
    assert other.status_code == 200
    names = [name.decode() for name in redis_client().keys("tgp:ratelimit:*")]
    assert any(name.startswith(f"tgp:ratelimit:ip:{key.api_key.pk}:") for name in names)
    assert not any("203.0.113" in name or "198.51.100" in name for name in names)


def test_publishable_keys_must_name_schemas_and_origins(platform_config):
    """A publishable key open to any schema, or to any origin, is refused at creation."""
    with pytest.raises(ApiKeyScopeError, match="schemas"):
        api_key_create(
            name="open", actor=None, kind=ApiKey.Kind.PUBLISHABLE, allowed_origins=[PAGE]
        )
    with pytest.raises(ApiKeyScopeError, match="origins"):
        api_key_create(
            name="anywhere",
            actor=None,
            kind=ApiKey.Kind.PUBLISHABLE,
            allowed_schemas=[CLIENT_TELEMETRY_SCHEMA],
        )
    with pytest.raises(ApiKeyScopeError, match="scheme://host"):
        publishable(allowed_origins=["https://app.example.test/path"])


def test_rotation_refuses_the_old_secret_and_is_audited(client, contract):
    """Rotating gives a new secret; the old one is refused (invalid_api_key) at once, and
    creation and rotation are audit events."""
    key = publishable()
    rotated = api_key_rotate(api_key=key.api_key, actor=None)
    body = {"schema": CLIENT_TELEMETRY_SCHEMA, "events": web_events(1)}
    old = beacon(client, body, query=f"?api_key={key.secret}", HTTP_ORIGIN=PAGE)
    assert old.status_code == 401
    assert old.json()["error"]["code"] == "invalid_api_key"
    new = beacon(client, body, query=f"?api_key={rotated.secret}", HTTP_ORIGIN=PAGE)
    assert new.status_code == 200
    created = platform_audit_events("platform.api_key.created").get()
    assert created.payload["attributes"]["kind"] == "publishable"
    rotation = platform_audit_events("platform.api_key.rotated").get()
    assert rotation.payload["attributes"]["key_prefix"] == rotated.api_key.prefix

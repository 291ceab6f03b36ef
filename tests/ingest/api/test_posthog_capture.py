"""PostHog's capture format: bodies as posthog-js sends them, mapped onto posthog.capture.v1."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from ingest.models import ApiKey, Event
from ingest.services import api_key_create
from tests.factories import iso

pytestmark = pytest.mark.django_db

PAGE = "https://shop.example.test"
SCHEMA = "posthog.capture.v1"


@pytest.fixture
def token(platform_config):
    from telemetry_platform.redis_client import redis_client

    redis_client().flushdb()
    return api_key_create(
        name="posthog-web",
        source="web-shop",
        actor=None,
        kind=ApiKey.Kind.PUBLISHABLE,
        allowed_schemas=[SCHEMA],
        allowed_origins=[PAGE],
    ).secret


def ph_event(token: str, name: str = "$pageview", **properties) -> dict:
    return {
        "uuid": str(uuid.uuid4()),
        "event": name,
        "timestamp": iso(datetime.now(UTC)),
        "properties": {
            "token": token,
            "distinct_id": "user-42@example.com",
            "$device_id": "0190c1a0-aaaa-7bbb-8ccc-1234567890ab",
            "$session_id": "0190c1a0-bbbb-7ccc-8ddd-1234567890ab",
            "$current_url": f"{PAGE}/checkout?email=jane.doe@example.com&step=2",
            "$ip": "203.0.113.9",
            "$lib": "web",
            "$lib_version": "1.449.2",
            "$screen_height": 900,
            **properties,
        },
        "$set": {"email": "jane.doe@example.com", "name": "Jane Doe"},
    }


def stored() -> list[dict]:
    return [event.payload for event in Event.objects.filter(source="web-shop")]


def test_gzip_js_batch_is_stored_with_ids_hashed_ip_dropped_and_url_scanned(client, token):
    """A gzip-js body (text/plain, as posthog-js sends it) is stored under posthog.capture.v1:
    distinct_id and $device_id hashed, $ip and $set absent, the URL's e-mail redacted."""
    body = gzip.compress(json.dumps([ph_event(token), ph_event(token, "clicked")]).encode())
    response = client.post(
        "/posthog/e/?ver=1.449.2&compression=gzip-js&_=1",
        data=body,
        content_type="text/plain",
        HTTP_ORIGIN=PAGE,
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == 1 and response.json()["accepted"] == 2
    assert response["Access-Control-Allow-Origin"] == PAGE
    payloads = stored()
    assert sorted(p["event"] for p in payloads) == ["$pageview", "clicked"]
    text = json.dumps(payloads)
    for raw in ("user-42@example.com", "0190c1a0-aaaa", "203.0.113.9", "jane.doe", "Jane Doe"):
        assert raw not in text, raw
    payload = payloads[0]
    assert payload["distinct_id"].startswith("k") and ":" in payload["distinct_id"]
    assert "ip" not in payload and "person_properties" not in payload
    assert payload["current_url"].startswith(f"{PAGE}/checkout?email=")
    assert payload["properties"]["$screen_height"] == "900"
    assert "token" not in payload["properties"]
    revision = Event.objects.filter(source="web-shop").first().schema_revision
    assert revision.schema.name == SCHEMA


def test_base64_beacon_body_is_stored(client, token):
    """A data=<base64> form body (compression=base64, posthog-js's beacon) is stored."""
    data = base64.b64encode(json.dumps([ph_event(token)]).encode()).decode()
    response = client.post(
        "/posthog/i/v0/e/?compression=base64&beacon=1",
        data=f"data={quote(data)}",
        content_type="application/x-www-form-urlencoded",
        HTTP_ORIGIN=PAGE,
    )
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1


def test_batch_endpoint_with_api_key_at_the_top(client, token):
    """/batch/ takes {"api_key", "batch": [...]} (PostHog's server-side format)."""
    event = ph_event(token)
    del event["properties"]["token"]
    response = client.post(
        "/posthog/batch/",
        data=json.dumps({"api_key": token, "batch": [event]}),
        content_type="application/json",
        HTTP_ORIGIN=PAGE,
    )
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1


def test_capture_from_another_origin_is_refused_and_nothing_stored(client, token):
    """The token's allowed origins apply: another page is 403 origin_not_allowed."""
    response = client.post(
        "/posthog/e/",
        data=json.dumps(ph_event(token)),
        content_type="application/json",
        HTTP_ORIGIN="https://evil.test",
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response
    assert stored() == []


def test_capture_refusals_have_codes(client, token, api_key):
    """No token (not_authenticated), a secret key as token (key_not_publishable), two tokens
    (mixed_tokens), bad base64 (malformed_base64)."""
    cases = [
        (
            {**ph_event(token), "properties": {"distinct_id": "x"}},
            "application/json",
            "",
            401,
            "not_authenticated",
        ),
        (ph_event(api_key.secret), "application/json", "", 401, "key_not_publishable"),
        ([ph_event(token), ph_event("tgp_other_x")], "application/json", "", 400, "mixed_tokens"),
    ]
    for document, media_type, query, status, code in cases:
        response = client.post(
            f"/posthog/e/{query}",
            data=json.dumps(document),
            content_type=media_type,
            HTTP_ORIGIN=PAGE,
        )
        assert response.status_code == status, (code, response.content)
        assert response.json()["error"]["code"] == code
    bad = client.post(
        "/posthog/e/?compression=base64",
        data="data=%%%",
        HTTP_ORIGIN=PAGE,
        content_type="application/x-www-form-urlencoded",
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "malformed_base64"
    assert stored() == []


def test_flags_and_config_answer_no_flags_no_recording(client, token, settings):
    """/flags, /decide and the remote config answer nothing enabled, readable by the page."""
    settings.TELEMETRY_API_KEY_CACHE_SECONDS = 0
    for path in (
        "/posthog/flags/?v=2&config=true",
        "/posthog/decide/?v=3",
        f"/posthog/array/{token}/config",
    ):
        response = client.get(path, HTTP_ORIGIN=PAGE)
        assert response.status_code == 200, path
        assert response.json()["sessionRecording"] is False
        assert response.json()["featureFlags"] == {}
        assert response["Access-Control-Allow-Origin"] == PAGE
    posted = client.post("/posthog/flags/?v=2", data="{}", content_type="application/json")
    assert posted.json()["flags"] == {}

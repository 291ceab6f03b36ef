"""POST /api/v1/events: authentication, the wire format, per-event answers and bad input."""

from __future__ import annotations

import json

import pytest

from ingest.models import Event
from ingest.services import api_key_revoke
from tests.factories import AUDIT_SCHEMA, audit_event, batch

pytestmark = pytest.mark.django_db


def stored_events(source: str = "control-service"):
    return Event.objects.filter(source=source)


def test_accepted_events_are_stored_and_answered_in_order(ingest_client):
    """Each accepted event is stored in PostgreSQL and reported as accepted, in request order."""
    first, second = audit_event(event_name="auth.login"), audit_event(event_name="auth.logout")
    response = ingest_client.post(batch(first, second))
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2 and body["rejected"] == 0 and body["received"] == 2
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted"]
    assert [r["index"] for r in body["results"]] == [0, 1]
    stored = {e.payload["event_name"]: e for e in stored_events()}
    assert set(stored) == {"auth.login", "auth.logout"}
    login = stored["auth.login"]
    assert login.event_class_id == "audit_event"
    assert login.request_id == first["request_id"]
    assert login.event_id == body["results"][0]["event_id"]
    assert login.ingest_request_id == response["X-Request-Id"]


def test_bare_bodies_with_schema_query_parameter(ingest_client):
    """With ?schema=NAME the items of events are bare event bodies of that schema."""
    response = ingest_client.post({"events": [audit_event()]}, query=f"?schema={AUDIT_SCHEMA}")
    assert response.json()["accepted"] == 1
    assert stored_events().count() == 1


def test_top_level_schema_key_works_like_the_query_parameter(ingest_client):
    """A fixture file shaped {"schema": NAME, "events": [...]} posts unchanged."""
    response = ingest_client.post({"schema": AUDIT_SCHEMA, "events": [audit_event()]})
    assert response.json()["accepted"] == 1


def test_same_event_twice_is_stored_once(ingest_client):
    """A retransmitted event (no event-id field: the id is derived) is answered duplicate."""
    event = audit_event()
    first = ingest_client.post(batch(event)).json()["results"][0]
    again = ingest_client.post(batch(event, event)).json()["results"]
    assert first["status"] == "accepted"
    assert [r["status"] for r in again] == ["duplicate", "duplicate"]
    assert again[0]["event_id"] == first["event_id"]
    assert stored_events().count() == 1


def test_bad_events_are_rejected_without_affecting_the_rest(ingest_client):
    """An invalid event gets code and field; the valid events of the batch are stored."""
    good = audit_event()
    unknown_field = audit_event(password="hunter2-secret")
    wrong_type = audit_event(outcome={"nested": "alice@example.com"})
    response = ingest_client.post(batch(good, unknown_field, wrong_type))
    results = response.json()["results"]
    assert response.status_code == 200
    assert results[0]["status"] == "accepted"
    assert results[1] == {
        "index": 1,
        "status": "rejected",
        "code": "unknown_field",
        "field": "password",
        "message": results[1]["message"],
    }
    assert results[2]["code"] == "wrong_type" and results[2]["field"] == "outcome"
    assert "hunter2" not in response.content.decode()
    assert "alice@example.com" not in response.content.decode()
    assert stored_events().count() == 1


def test_a_nul_character_rejects_its_event_not_the_batch(ingest_client):
    """PostgreSQL stores no NUL: such an event is rejected with the field's path, and the
    rest of the batch is stored (not a 503 that a client would retry for ever)."""
    in_attribute = audit_event(attributes={"note": "before\u0000after"})
    in_request_id = audit_event(request_id="req\u0000x")
    response = ingest_client.post(batch(audit_event(), in_attribute, in_request_id))
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected"]
    assert (results[1]["code"], results[1]["field"]) == ("invalid_value", "attributes.note")
    assert results[2]["code"] == "invalid_value"
    assert "before" not in response.content.decode()
    assert stored_events().count() == 1


def test_unknown_and_missing_schema_are_rejected_per_event(ingest_client):
    """Items naming no schema or an unregistered one are rejected with field 'schema'."""
    body = {"events": [{"schema": "no.such.schema", "event": {}}, {"event_name": "x"}]}
    results = ingest_client.post(body).json()["results"]
    assert [(r["code"], r["field"]) for r in results] == [
        ("unknown_schema", "schema"),
        ("missing_schema", "schema"),
    ]


def test_missing_occurred_at_is_rejected(ingest_client):
    """The occurred-at role is required: an event without it is rejected with its path."""
    event = audit_event()
    del event["occurred_at"]
    result = ingest_client.post(batch(event)).json()["results"][0]
    assert (result["code"], result["field"]) == ("missing_field", "occurred_at")


def test_all_rejected_is_still_200(ingest_client):
    """Like OTLP partial success, a batch whose every event is rejected is answered 200."""
    response = ingest_client.post(batch({"bogus": 1}, {"bogus": 2}))
    assert response.status_code == 200
    assert response.json()["rejected"] == 2


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "malformed_json"),
        (b" ", "malformed_json"),
        (b"\xff\xfe", "invalid_encoding"),
        (b"[1, 2]", "body_not_an_object"),
        (b'{"items": []}', "missing_events"),
        (b'{"events": {"a": 1}}', "events_not_a_list"),
        (b'{"events": []}', "empty_batch"),
        (b'{"schema": 5, "events": [{}]}', "invalid_schema_name"),
    ],
)
def test_unparseable_requests_are_400_with_a_code(ingest_client, raw, code):
    """A request that cannot be parsed at all is refused whole, with a specific code."""
    response = ingest_client.post(None, raw=raw)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_wrong_content_type_is_400(ingest_client):
    """Only application/json is accepted for now; anything else is a specific 400."""
    response = ingest_client.post(None, raw=b"events=1", content_type="text/plain")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_content_type"


def test_too_many_events_is_413(ingest_client, settings):
    """More events than TELEMETRY_MAX_EVENTS_PER_BATCH: 413, nothing stored."""
    settings.TELEMETRY_MAX_EVENTS_PER_BATCH = 2
    response = ingest_client.post(batch(audit_event(), audit_event(), audit_event()))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_many_events"
    assert stored_events().count() == 0


def test_body_over_the_limit_is_413(ingest_client, settings):
    """A body larger than TELEMETRY_MAX_BODY_BYTES is refused before it is parsed."""
    settings.TELEMETRY_MAX_BODY_BYTES = 100
    response = ingest_client.post(batch(audit_event(), audit_event()))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_missing_key_is_401(client, platform_config):
    """No Authorization header: 401 with a JSON error body."""
    response = client.post("/api/v1/events", data="{}", content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "header",
    ["Bearer tgp_000000000000_nope", "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer a b"],
)
def test_unknown_key_is_401(client, api_key, header):
    """A key that does not exist (or a malformed header) is 401, never a 500."""
    response = client.post(
        "/api/v1/events", data="{}", content_type="application/json", HTTP_AUTHORIZATION=header
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"invalid_api_key", "invalid_authorization_header"}


def test_tampered_secret_is_401(client, api_key):
    """The right prefix with a wrong secret is refused: the hash is what proves the key."""
    tampered = api_key.secret[:-2] + ("AA" if not api_key.secret.endswith("AA") else "BB")
    response = client.post(
        "/api/v1/events",
        data="{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {tampered}",
    )
    assert response.status_code == 401


def test_revoked_key_is_401(ingest_client, api_key):
    """After revocation the key no longer works."""
    api_key_revoke(api_key=api_key.api_key, actor=None)
    response = ingest_client.post(batch(audit_event()))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "revoked_api_key"


def test_request_id_is_echoed_or_generated(ingest_client):
    """x-request-id is kept when well-formed, replaced when not, and echoed on every response."""
    kept = ingest_client.post(batch(audit_event()), HTTP_X_REQUEST_ID="client-req-42")
    assert kept["X-Request-Id"] == "client-req-42"
    replaced = ingest_client.post(batch(audit_event()), HTTP_X_REQUEST_ID="bad id <script>")
    assert len(replaced["X-Request-Id"]) == 32 and "<" not in replaced["X-Request-Id"]


def test_source_comes_from_the_key_when_the_schema_has_none(client, platform_config):
    """Events without a source field are recorded under the key's configured source."""
    from ingest.services import api_key_create

    created = api_key_create(name="ios-app", source="ios", actor=None)
    response = client.post(
        "/api/v1/events",
        data=json.dumps(batch(audit_event())),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {created.secret}",
    )
    assert response.json()["accepted"] == 1
    assert Event.objects.filter(source="ios").count() == 1

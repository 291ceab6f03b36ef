"""GET /api/v1/violations: rejections per source, schema, code, field path and app version,
with an hourly (or daily) series; an API key sees only its own source."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from governance.roles import GOVERNANCE_OWNER, SECURITY_ANALYST
from ingest.models import IngestTally
from ingest.pipeline.tally import hour_of
from ingest.services import api_key_create
from tests.factories import (
    CLIENT_TELEMETRY_SCHEMA,
    client_telemetry_events,
    client_telemetry_schema_register,
    user_with_role,
)

pytestmark = pytest.mark.django_db


def _send(client, secret: str, events: list[dict]) -> dict:
    response = client.post(
        f"/api/v1/events?schema={CLIENT_TELEMETRY_SCHEMA}",
        data=json.dumps({"events": events}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 200, response.content
    return response.json()


def _bad(count: int, version: str) -> list[dict]:
    events = client_telemetry_events(count * 4)[::4]  # reconnect members
    return [dict(e, reconnect={"attempt": "x"}, app_version=version) for e in events]


@pytest.fixture
def web_shell(platform_config):
    client_telemetry_schema_register()
    return api_key_create(name="web-shell", source="web-shell", actor=None)


def test_a_key_sees_its_own_rejections_by_field_and_version(client, web_shell):
    """Events sent by web-shell with a wrong type in reconnect.attempt are reported with
    their code, field, claimed version and count; another sender's are not shown to it."""
    other = api_key_create(name="ios", source="ios", actor=None)
    _send(client, web_shell.secret, _bad(3, "1.2.0"))
    _send(client, web_shell.secret, _bad(1, "1.1.9"))
    _send(client, other.secret, _bad(2, "9.0.0"))

    response = client.get(
        "/api/v1/violations?window=1h", HTTP_AUTHORIZATION=f"Bearer {web_shell.secret}"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["bucket"] == "hour" and len(body["buckets"]) == 1
    rows = body["violations"]
    assert [(r["source"], r["app_version"], r["count"]) for r in rows] == [
        ("web-shell", "1.2.0", 3),
        ("web-shell", "1.1.9", 1),
    ]
    top = rows[0]
    assert top["schema"] == CLIENT_TELEMETRY_SCHEMA
    assert top["field"] == "reconnect.attempt" and top["code"] == "wrong_type"
    assert top["last_hour"] == 3 and top["series"] == [3]


def test_users_need_the_role_and_windows_are_checked(client, web_shell):
    """A governance owner sees every sender, daily buckets beyond 24 h; a security analyst
    is refused; an unknown window is a 400 naming the parameter."""
    _send(client, web_shell.secret, _bad(2, "1.2.0"))
    IngestTally.objects.create(
        hour=hour_of(datetime.now(UTC) - timedelta(days=3)),
        source="ios",
        event_class="client_diagnostic",
        schema_name=CLIENT_TELEMETRY_SCHEMA,
        status="rejected",
        code="wrong_type",
        field_path="reconnect.attempt",
        count=5,
    )
    client.force_login(user_with_role("owner", GOVERNANCE_OWNER))
    body = client.get("/api/v1/violations?window=7d").json()
    assert body["bucket"] == "day" and len(body["buckets"]) == 7
    by_source = {row["source"]: row for row in body["violations"]}
    assert by_source["ios"]["count"] == 5 and by_source["ios"]["series"][3] == 5
    assert by_source["ios"]["last_hour"] == 0
    assert by_source["web-shell"]["series"][-1] == 2
    assert client.get("/api/v1/violations?window=1h").json()["violations"][0]["source"] == (
        "web-shell"
    )

    wrong = client.get("/api/v1/violations?window=2y")
    assert wrong.status_code == 400
    assert wrong.json()["error"] == {
        "code": "invalid_window",
        "message": "window is one of 1h, 24h, 7d, 30d",
        "field": "window",
    }

    client.force_login(user_with_role("analyst", SECURITY_ANALYST))
    assert client.get("/api/v1/violations").status_code == 403

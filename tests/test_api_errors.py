"""Every API answers in the platform's error shape: an unreachable store is 503 with
Retry-After (never a 500), unknown URLs and objects are JSON 404s, odd bodies are 4xx."""

from __future__ import annotations

import contextlib
import json

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.authtoken.models import Token

from governance.roles import SECURITY_ANALYST
from governance.services import default_configuration_load
from ingest.services import api_key_create
from tests.factories import audit_event, batch, user_with_role

CLOSED_PORT = 1  # nothing listens there: connecting fails at once


@contextlib.contextmanager
def store_unreachable():
    """Point the default connection at a closed port for the duration (then reconnect)."""
    connection.close()
    saved = connection.settings_dict["PORT"]
    connection.settings_dict["PORT"] = CLOSED_PORT
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved


def assert_store_unavailable(response) -> None:
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert response["Retry-After"].isdigit()
    assert response.json()["error"]["code"] == "store_unavailable"


@pytest.fixture
def analyst_token(transactional_db, platform_config_committed) -> str:
    user = user_with_role("sam", SECURITY_ANALYST)
    return Token.objects.create(user=user).key


@pytest.fixture
def platform_config_committed(transactional_db):
    return default_configuration_load()


@pytest.mark.django_db(transaction=True)
def test_ingest_with_the_store_down_is_503_json(client, platform_config_committed):
    """The API-key lookup runs before the pipeline: with PostgreSQL unreachable it is a 503."""
    key = api_key_create(name="svc", source="svc", actor=None)
    with store_unreachable():
        response = client.post(
            "/api/v1/events",
            data=json.dumps(batch(audit_event())),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key.secret}",
        )
    assert_store_unavailable(response)


@pytest.mark.django_db(transaction=True)
def test_audit_and_schema_apis_with_the_store_down_are_503_json(client, analyst_token):
    """Token authentication reads the database too: audit search and the registry say 503."""
    for path in ("/api/v1/audit-events", "/api/v1/schemas"):
        with store_unreachable():
            response = client.get(path, HTTP_AUTHORIZATION=f"Token {analyst_token}")
        assert_store_unavailable(response)


@pytest.mark.django_db(transaction=True)
def test_admin_with_the_store_down_is_503_not_500(client, platform_config_committed):
    """The admin's session lookup fails with the store: a plain 503 with Retry-After."""
    admin = get_user_model().objects.create_superuser("root-admin", password="pw-123456!")
    client.force_login(admin)
    with store_unreachable():
        response = client.get("/admin/")
    assert response.status_code == 503
    assert response["Retry-After"].isdigit()


@pytest.mark.django_db
def test_an_over_long_integer_is_a_400_not_a_500(ingest_client):
    """A 5,000-digit integer anywhere in the body is refused with a code, not a 500."""
    body = json.dumps(batch(audit_event())).replace(
        '"attributes": {', '"attributes": {"n": ' + "9" * 5000 + ", ", 1
    )
    response = ingest_client.post(None, raw=body.encode())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "number_too_long"


@pytest.mark.django_db
def test_unknown_api_urls_are_json_404s(client):
    """Django's own 404 page is HTML; under /api/ the platform's error shape is used."""
    response = client.get("/api/v1/no-such-endpoint")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no such endpoint"}}


@pytest.mark.django_db
def test_an_unknown_object_is_the_platform_404(client, platform_config):
    """get_object_or_404 in an API view: the platform's shape, not DRF's {"detail"}."""
    client.force_login(user_with_role("sam", SECURITY_ANALYST))
    response = client.get("/api/v1/audit-events/987654321/correlated")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "detail" not in response.json()


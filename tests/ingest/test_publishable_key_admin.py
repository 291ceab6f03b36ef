"""Publishable keys in the admin: created with their scope, refused when open, rotated, revoked."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from ingest.models import ApiKey
from ingest.services import api_key_authenticate
from tests.audit_helpers import platform_audit_events

pytestmark = pytest.mark.django_db

PAGE = "https://app.example.test"


@pytest.fixture
def admin_client(client, platform_config):
    user = get_user_model().objects.create_superuser("root-admin", "a@example.test", "pw-123456!")
    client.force_login(user)
    return client


def add_publishable(admin_client, **fields):
    return admin_client.post(
        "/admin/ingest/apikey/add/",
        {
            "name": "web-page",
            "kind": "publishable",
            "source": "web-shell",
            "allowed_schemas": "openagents.sync.client_telemetry.v1",
            "allowed_surfaces": "CLIENT_SURFACE_WEB",
            "allowed_origins": PAGE,
            "rate_limit_per_ip_per_second": "5",
            **fields,
        },
    )


def test_publishable_key_created_rotated_and_revoked_in_admin(admin_client):
    """The admin creates a scoped publishable key (secret shown once), rotates it (the old
    secret is refused) and revokes it; each change is an audit event."""
    created = add_publishable(admin_client)
    assert created.status_code == 200
    secret = re.search(r'id="api-key-secret"[^>]*>(tgp_[^<]+)<', created.content.decode()).group(1)
    key = ApiKey.objects.get(name="web-page")
    assert key.kind == ApiKey.Kind.PUBLISHABLE
    assert key.allowed_origins == [PAGE]
    assert key.rate_limit_per_ip_per_second == 5
    assert "publishable" in created.content.decode()

    rotated = admin_client.post(
        "/admin/ingest/apikey/", {"action": "rotate_key", "_selected_action": [key.pk]}
    )
    page = rotated.content.decode()
    assert "rotated" in page
    new_secret = re.search(r'id="api-key-secret"[^>]*>(tgp_[^<]+)<', page).group(1)
    assert new_secret != secret
    assert api_key_authenticate(presented=secret).code == "invalid_api_key"
    assert api_key_authenticate(presented=new_secret).api_key.pk == key.pk

    admin_client.post(
        "/admin/ingest/apikey/", {"action": "revoke_keys", "_selected_action": [key.pk]}
    )
    assert api_key_authenticate(presented=new_secret).code == "revoked_api_key"
    for name in ("created", "rotated", "revoked"):
        assert platform_audit_events(f"platform.api_key.{name}").count() == 1, name


def test_scope_changes_of_a_publishable_key_are_audited(admin_client):
    """Changing the origins of a publishable key is recorded with the fields changed."""
    add_publishable(admin_client)
    key = ApiKey.objects.get(name="web-page")
    admin_client.post(
        f"/admin/ingest/apikey/{key.pk}/change/",
        {
            "allowed_schemas": "openagents.sync.client_telemetry.v1",
            "allowed_surfaces": "CLIENT_SURFACE_WEB",
            "allowed_origins": f"{PAGE},https://beta.example.test",
            "rate_limit_per_ip_per_second": "5",
        },
    )
    key.refresh_from_db()
    assert key.allowed_origins == [PAGE, "https://beta.example.test"]
    changed = platform_audit_events("platform.api_key.scope_changed").get()
    assert changed.payload["attributes"]["fields"] == "allowed_origins"


def test_an_open_publishable_key_is_refused_by_the_form(admin_client):
    """A publishable key naming no schema or no origin is not created; the form says why."""
    response = add_publishable(admin_client, allowed_origins="")
    assert response.status_code == 200
    assert "must name its allowed origins" in response.content.decode()
    assert not ApiKey.objects.filter(name="web-page").exists()

"""The admin shows event classes with retention, stored events, and creates API keys."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from ingest.models import ApiKey, Event
from ingest.services import api_key_authenticate
from tests.audit_helpers import platform_audit_events
from tests.factories import audit_event, batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, platform_config):
    user = get_user_model().objects.create_superuser("root-admin", "a@example.test", "pw-123456!")
    client.force_login(user)
    return client


def test_event_classes_are_listed_with_default_retention(admin_client):
    """The four event classes appear with their default retention in days."""
    page = admin_client.get("/admin/governance/eventclass/").content.decode()
    for name, days in [
        ("audit_event", 400),
        ("service_metric", 90),
        ("client_diagnostic", 30),
        ("performance_budget_sample", 365),
    ]:
        assert re.search(rf">{name}</a></th><td class=\"field-retention_days\">{days}<", page), name


def test_changing_retention_in_the_admin_is_audited(admin_client):
    """Proposing a new retention is recorded; approving and applying it updates the class
    and records who changed it."""
    from governance.models import ChangeRequest
    from governance.roles import GOVERNANCE_APPROVER
    from governance.services import change_request_approve
    from tests.factories import user_with_role

    response = admin_client.post(
        "/admin/governance/eventclass/client_diagnostic/change/",
        {
            "retention_days": "45",
            "description": "diagnostics",
            "change_reason": "incident reviews need six weeks",
            "_confirm_retention": "1",
        },
    )
    assert response.status_code == 302
    assert platform_audit_events("platform.change_request.submitted").count() == 1
    assert not platform_audit_events("platform.retention.updated").exists()
    change_request_approve(
        change_request=ChangeRequest.objects.get(),
        actor=user_with_role("approver", GOVERNANCE_APPROVER),
        apply=True,
    )
    change = platform_audit_events("platform.retention.updated").get()
    assert change.payload["attributes"]["new_retention_days"] == "45"
    assert change.actor_hash  # the admin's identity, as a keyed hash or value per field policy


def test_stored_events_appear_in_the_admin(admin_client, ingest_client):
    """An accepted event is listed in the event changelist and its detail page renders."""
    ingest_client.post(batch(audit_event(event_name="auth.password.changed")))
    event = Event.objects.get(source="control-service")
    listing = admin_client.get("/admin/ingest/event/?event_class__name__exact=audit_event")
    assert listing.status_code == 200
    assert event.event_id in listing.content.decode()
    detail = admin_client.get(f"/admin/ingest/event/{event.pk}/change/")
    assert detail.status_code == 200
    assert "auth.password.changed" in detail.content.decode()


def test_api_key_created_in_admin_is_shown_once_and_stored_hashed(admin_client):
    """Adding a key shows its secret on the response page only; the database holds a hash."""
    response = admin_client.post("/admin/ingest/apikey/add/", {"name": "web-shell", "source": ""})
    assert response.status_code == 200
    secret = re.search(r'id="api-key-secret"[^>]*>([^<]+)<', response.content.decode()).group(1)
    stored = ApiKey.objects.get(name="web-shell")
    assert stored.source == "web-shell"
    assert secret not in (stored.secret_hash, stored.prefix)
    assert api_key_authenticate(presented=secret).api_key == stored
    later = admin_client.get(f"/admin/ingest/apikey/{stored.pk}/change/").content.decode()
    assert secret not in later
    assert platform_audit_events("platform.api_key.created").count() == 1


def test_revoke_action(admin_client, api_key):
    """The revoke action makes a key unusable."""
    admin_client.post(
        "/admin/ingest/apikey/",
        {"action": "revoke_keys", "_selected_action": [api_key.api_key.pk]},
    )
    assert api_key_authenticate(presented=api_key.secret).code == "revoked_api_key"


def test_api_key_scopes_set_in_admin(admin_client):
    """Scopes, expiry and rate are set when creating a key and can be changed later (audited)."""
    response = admin_client.post(
        "/admin/ingest/apikey/add/",
        {
            "name": "ios-app",
            "source": "ios",
            "allowed_sources": "ios",
            "allowed_surfaces": "CLIENT_SURFACE_IOS",
            "allowed_event_classes": "client_diagnostic",
            "allowed_schemas": "openagents.sync.*",
            "expires_at_0": "2030-01-01",
            "expires_at_1": "00:00:00",
            "rate_limit_per_second": "50",
        },
    )
    assert response.status_code == 200
    key = ApiKey.objects.get(name="ios-app")
    assert key.allowed_schemas == ["openagents.sync.*"]
    assert key.allowed_surfaces == ["CLIENT_SURFACE_IOS"]
    assert key.rate_limit_per_second == 50
    assert key.expires_at.year == 2030
    changed = admin_client.post(
        f"/admin/ingest/apikey/{key.pk}/change/",
        {
            "allowed_sources": "ios,ipad",
            "allowed_surfaces": "",
            "allowed_event_classes": "",
            "allowed_schemas": "",
            "expires_at_0": "",
            "expires_at_1": "",
            "rate_limit_per_second": "",
        },
    )
    assert changed.status_code == 302
    key.refresh_from_db()
    assert key.allowed_sources == ["ios", "ipad"]
    assert key.allowed_schemas == [] and key.expires_at is None
    assert platform_audit_events("platform.api_key.scope_changed").count() == 1


def test_revoking_a_key_needs_the_change_permission(client, api_key):
    """A read-only auditor sees API keys but the revoke action refuses them: the key works."""
    from governance.roles import READ_ONLY_AUDITOR
    from tests.factories import user_with_role

    client.force_login(user_with_role("audrey", READ_ONLY_AUDITOR))
    assert client.get("/admin/ingest/apikey/").status_code == 200
    client.post(
        "/admin/ingest/apikey/",
        {"action": "revoke_keys", "_selected_action": [api_key.api_key.pk]},
    )
    assert api_key_authenticate(presented=api_key.secret).api_key == api_key.api_key


@pytest.mark.parametrize("role", ["read-only auditor", "governance owner"])
def test_running_a_purge_now_needs_the_purge_permission(client, platform_config, empty_broker, role):
    """Viewing purge runs does not allow enqueueing one: 403, nothing reaches the broker."""
    import redis
    from django.conf import settings

    from tests.factories import user_with_role

    client.force_login(user_with_role("viewer", role))
    assert client.get("/admin/ingest/purgerun/").status_code == 200
    response = client.post("/admin/ingest/purgerun/run-now/", {"event_class": ""})
    assert response.status_code == 403
    assert redis.Redis.from_url(settings.CELERY_BROKER_URL).llen("maintenance") == 0

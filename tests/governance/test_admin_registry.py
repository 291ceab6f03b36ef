"""Registering schemas in the admin, the field catalogue page and lifecycle actions."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from governance.models import SchemaRevision
from tests.factories import (
    CLIENT_TELEMETRY_MESSAGE,
    CLIENT_TELEMETRY_PROTO,
    CLIENT_TELEMETRY_SCHEMA,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, platform_config):
    user = get_user_model().objects.create_superuser("gov", "gov@example.test", "pw-123456!")
    client.force_login(user)
    return client


def register_form(admin_client, proto: str = CLIENT_TELEMETRY_PROTO, **fields):
    data = {
        "name": CLIENT_TELEMETRY_SCHEMA,
        "event_class": "client_diagnostic",
        "message": CLIENT_TELEMETRY_MESSAGE,
        "status": "active",
        "roles": "",
        "files": [SimpleUploadedFile("client_telemetry.proto", proto.encode())],
        **fields,
    }
    return admin_client.post("/admin/governance/schema/add/", data)


def test_register_in_admin_and_see_the_field_catalogue(admin_client):
    """The upload form registers the schema; the revision page lists fields, enums and oneofs."""
    response = register_form(admin_client)
    revision = SchemaRevision.objects.get(schema__name=CLIENT_TELEMETRY_SCHEMA)
    assert response.status_code == 302
    assert response["Location"].endswith(f"/admin/governance/schemarevision/{revision.pk}/change/")
    page = admin_client.get(response["Location"]).content.decode()
    assert 'id="field-catalogue"' in page
    assert "<code>reconnect.reason_code</code>" in page
    assert "<code>replay.status</code>" in page
    assert "<code>CLIENT_SURFACE_IOS</code>=3" in page
    assert "occurred_at" in page


def test_incompatible_upload_shows_each_violation(admin_client):
    """A breaking revision is refused in the form with a table of rule, field, before/after."""
    register_form(admin_client)
    broken = CLIENT_TELEMETRY_PROTO.replace("  string topic_class = 9;\n", "")
    response = register_form(admin_client, proto=broken)
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="violations"' in page
    assert "<code>FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED</code>" in page
    assert "<code>topic_class</code>" in page
    assert SchemaRevision.objects.filter(schema__name=CLIENT_TELEMETRY_SCHEMA).count() == 1


def test_compile_error_is_shown_in_the_form(admin_client):
    """protoc's error lines are shown on the form."""
    page = register_form(
        admin_client, proto='syntax = "proto3";\nmessage X { strin a = 1; }'
    ).content
    assert b"proto_compile_error" in page and b"client_telemetry.proto:2:" in page


def test_lifecycle_actions_propose_changes(admin_client):
    """The changelist actions propose deprecating and retiring revisions; each applies once
    a second person approves it."""
    from governance.models import ChangeRequest
    from governance.roles import GOVERNANCE_APPROVER
    from governance.services import change_request_approve
    from tests.factories import user_with_role

    approver = user_with_role("approver", GOVERNANCE_APPROVER)
    register_form(admin_client)
    revision = SchemaRevision.objects.get(schema__name=CLIENT_TELEMETRY_SCHEMA)
    for action, status in (("make_deprecated", "deprecated"), ("make_retired", "retired")):
        previous = revision.status
        admin_client.post(
            "/admin/governance/schemarevision/",
            {"action": action, "_selected_action": [revision.pk]},
        )
        revision.refresh_from_db()
        assert revision.status == previous
        change_request = ChangeRequest.objects.latest("id")
        assert change_request.payload == {"status": status}
        change_request_approve(change_request=change_request, actor=approver, apply=True)
        revision.refresh_from_db()
        assert revision.status == status


def test_adding_an_event_class_is_a_direct_admin_save(admin_client):
    """A new class needs the add permission (platform admins) and is created at once with
    its partition; an owner, who may only propose changes, cannot add one."""
    from django.contrib.admin.models import LogEntry
    from django.db import connection

    from governance.models import EventClass
    from governance.roles import GOVERNANCE_OWNER
    from tests.factories import user_with_role

    response = admin_client.post(
        "/admin/governance/eventclass/add/",
        {"name": "build_log", "retention_days": "14", "description": "CI logs"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/governance/eventclass/"
    assert EventClass.objects.get(name="build_log").retention_days == 14
    assert LogEntry.objects.filter(object_id="build_log").exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('ingest_event_build_log')")
        assert cursor.fetchone()[0] is not None
    admin_client.force_login(user_with_role("olivia-owner", GOVERNANCE_OWNER))
    refused = admin_client.get("/admin/governance/eventclass/add/")
    assert refused.status_code == 403


@pytest.mark.parametrize("roles", [(), ("security analyst",), ("governance approver",)])
def test_registering_needs_the_add_permission(client, platform_config, roles):
    """Staff without the registry permission (no role, an analyst, an approver) get 403 on
    the register page, GET and POST, and no revision is created."""
    from tests.factories import user_with_role

    client.force_login(user_with_role("staffer", *roles))
    assert client.get("/admin/governance/schema/add/").status_code == 403
    response = register_form(client)
    assert response.status_code == 403
    assert not SchemaRevision.objects.filter(schema__name=CLIENT_TELEMETRY_SCHEMA).exists()


def test_an_owner_may_register(client, platform_config):
    """A governance owner holds the registry permission: the upload registers."""
    from governance.roles import GOVERNANCE_OWNER
    from tests.factories import user_with_role

    client.force_login(user_with_role("olivia-owner", GOVERNANCE_OWNER))
    assert client.get("/admin/governance/schema/add/").status_code == 200
    assert register_form(client).status_code == 302
    assert SchemaRevision.objects.filter(schema__name=CLIENT_TELEMETRY_SCHEMA).count() == 1


def test_the_retention_dry_run_needs_the_change_permission(client, platform_config):
    """Posting a retention change as a staff user who may not propose it shows no dry run
    (403) instead of the purge counts."""
    from governance.roles import READ_ONLY_AUDITOR
    from tests.factories import user_with_role

    client.force_login(user_with_role("audrey", READ_ONLY_AUDITOR))
    response = client.post(
        "/admin/governance/eventclass/client_diagnostic/change/",
        {"retention_days": "45", "description": "", "change_reason": "longer"},
    )
    assert response.status_code == 403


def test_the_admin_says_which_annotations_wait_for_review(client, owner):
    """An owner's upload loosening user_id is registered with a warning naming the field and
    linking the change request that proposes it."""
    from django.contrib.messages import get_messages

    from governance.defaults import PLATFORM_AUDIT_SCHEMA
    from governance.models import ChangeRequest
    from governance.selectors import field_policy_specs
    from tests.governance.test_registration_policies import (
        AUDIT_MESSAGE,
        EVENTS_PROTO,
        USER_ID_HASHED,
        USER_ID_PUBLIC,
        audit_sources,
    )

    client.force_login(owner)
    sources = audit_sources((USER_ID_HASHED, USER_ID_PUBLIC))
    response = client.post(
        "/admin/governance/schema/add/",
        {
            "name": PLATFORM_AUDIT_SCHEMA,
            "event_class": "",
            "message": AUDIT_MESSAGE,
            "status": "active",
            "roles": "",
            # The options file is the platform's own: protoc resolves its import.
            "files": [SimpleUploadedFile("events.proto", sources[EVENTS_PROTO].encode())],
        },
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    revision = SchemaRevision.objects.get(schema__name=PLATFORM_AUDIT_SCHEMA, version=2)
    assert field_policy_specs(revision)["user_id"].action == "hash"
    change_request = ChangeRequest.objects.get()
    warning = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert len(warning) == 1 and "user_id public/keep" in warning[0]
    assert f'/admin/governance/changerequest/{change_request.pk}/">change request' in warning[0]

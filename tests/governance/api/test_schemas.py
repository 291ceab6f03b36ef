"""Schema registry API: register by upload, inspect, lifecycle; refusals are precise."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token

from governance.models import Schema
from tests.factories import (
    CLIENT_TELEMETRY_MESSAGE,
    CLIENT_TELEMETRY_PROTO,
    CLIENT_TELEMETRY_SCHEMA,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(platform_config):
    user = get_user_model().objects.create_user("owner", password="pw-123456!")
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=[
                "view_schema",
                "add_schemarevision",
                "change_schemarevision",
                "propose_changerequest",
            ]
        )
    )
    return user


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def upload(client, proto: str = CLIENT_TELEMETRY_PROTO, **fields):
    data = {
        "name": CLIENT_TELEMETRY_SCHEMA,
        "message": CLIENT_TELEMETRY_MESSAGE,
        "event_class": "client_diagnostic",
        "file": SimpleUploadedFile("client_telemetry.proto", proto.encode()),
        **fields,
    }
    return client.post("/api/v1/schemas", data)


def test_register_by_multipart_upload(owner_client):
    """Uploading the .proto registers v1; the answer lists roles and the field catalogue."""
    response = upload(owner_client)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["schema"], body["version"], body["status"]) == (
        CLIENT_TELEMETRY_SCHEMA,
        1,
        "active",
    )
    assert body["roles"]["occurred_at"] == "occurred_at_unix_ms"
    fields = {f["path"]: f for f in body["catalogue"]}
    assert fields["replay.status"]["type"] == "string"
    assert fields["reconnect"]["oneof"] == "event"
    assert "CLIENT_SURFACE_IOS" in fields["surface"]["enum_values"]
    again = upload(owner_client)
    assert again.status_code == 200 and again.json()["version"] == 1


def test_register_by_json_with_roles(owner_client):
    """JSON bodies carry proto_files and explicit roles."""
    proto = 'syntax = "proto3"; package p; message E { string id = 1; int64 ts = 2; }'
    response = owner_client.post(
        "/api/v1/schemas",
        {
            "name": "p.e.v1",
            "message": "p.E",
            "event_class": "service_metric",
            "proto_files": {"e.proto": proto},
            "roles": {"occurred_at": "ts", "event_id": "id"},
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["roles"] == {"occurred_at": "ts", "event_id": "id"}


def test_token_authentication(client, owner):
    """Tools authenticate with a DRF token (Authorization: Token ...)."""
    token = Token.objects.create(user=owner)
    response = client.get("/api/v1/schemas", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    assert {s["name"] for s in response.json()["schemas"]} >= {"telemetry.audit_event.v1"}


def test_compile_error_is_400_with_protoc_lines(owner_client):
    """A .proto that does not compile: 400 with file:line:col lines, nothing registered."""
    response = upload(owner_client, proto='syntax = "proto3";\nmessage X { strin a = 1; }\n')
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "proto_compile_error"
    assert error["errors"][0].startswith("client_telemetry.proto:2:")
    assert not Schema.objects.filter(name=CLIENT_TELEMETRY_SCHEMA).exists()


def test_unknown_message_is_400(owner_client):
    """A message name not in the file: 400 listing the messages that are."""
    response = upload(owner_client, message="openagents.sync.v1.Nope")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "message_not_found"
    assert CLIENT_TELEMETRY_MESSAGE in error["errors"][0]


def test_upload_over_one_mebibyte_is_413(owner_client):
    """Uploads are limited to 1 MiB."""
    big = CLIENT_TELEMETRY_PROTO + "//" + "x" * (1024 * 1024) + "\n"
    response = upload(owner_client, proto=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "upload_too_large"


def test_breaking_change_lists_violations(owner_client):
    """An incompatible revision: 400 with each violation's rule, path, old and new."""
    upload(owner_client)
    broken = CLIENT_TELEMETRY_PROTO.replace("uint32 attempt = 1;", "string attempt = 1;")
    response = upload(owner_client, proto=broken)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "incompatible_change"
    assert error["violations"] == [
        {
            "rule": "FIELD_WIRE_JSON_COMPATIBLE_TYPE",
            "path": "reconnect.attempt",
            "old": error["violations"][0]["old"],
            "new": error["violations"][0]["new"],
            "against_version": 1,
            "message": error["violations"][0]["message"],
        }
    ]
    assert "uint32" in error["violations"][0]["old"]
    assert "string" in error["violations"][0]["new"]


def test_missing_fields_are_400(owner_client):
    """No file and no proto_files: a field error, never a 500."""
    response = owner_client.post("/api/v1/schemas", {"name": "x"}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_revision_detail_and_status_change_proposal(owner_client, owner):
    """A revision can be inspected; a status change is proposed (202) and applies once a
    second person approves it; a move the lifecycle forbids is 409."""
    from governance.models import ChangeRequest
    from governance.roles import GOVERNANCE_APPROVER
    from governance.services import change_request_approve
    from tests.factories import user_with_role

    upload(owner_client)
    url = f"/api/v1/schemas/{CLIENT_TELEMETRY_SCHEMA}/revisions/1"
    assert owner_client.get(url).json()["message_name"] == CLIENT_TELEMETRY_MESSAGE
    no_reason = owner_client.post(
        f"{url}/status", {"status": "deprecated"}, content_type="application/json"
    )
    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()["error"]["details"]
    proposed = owner_client.post(
        f"{url}/status",
        {"status": "deprecated", "reason": "v2 replaces it"},
        content_type="application/json",
    )
    assert proposed.status_code == 202
    body = proposed.json()
    assert (body["state"], body["proposed_status"]) == ("submitted", "deprecated")
    assert owner_client.get(url).json()["status"] == "active"
    change_request_approve(
        change_request=ChangeRequest.objects.get(pk=body["change_request"]),
        actor=user_with_role("approver", GOVERNANCE_APPROVER),
        apply=True,
    )
    assert owner_client.get(url).json()["status"] == "deprecated"
    revived = owner_client.post(
        f"{url}/status", {"status": "draft", "reason": "oops"}, content_type="application/json"
    )
    assert revived.status_code == 409
    assert revived.json()["error"]["code"] == "invalid_transition"
    assert owner_client.get("/api/v1/schemas/nope").status_code == 404


def test_permissions(client, platform_config):
    """Anonymous: 401/403; a user without registry permissions: 403."""
    assert client.get("/api/v1/schemas").status_code in (401, 403)
    user = get_user_model().objects.create_user("nobody", password="pw-123456!")
    client.force_login(user)
    assert client.get("/api/v1/schemas").status_code == 403
    assert upload(client).status_code == 403


def test_the_answer_names_annotations_not_applied_and_their_change_request(owner_client):
    """Re-registering the audit schema with user_id loosened answers 201 with the reviewed
    policy in force and policy_annotations naming the withheld annotation and the request."""
    from governance.defaults import PLATFORM_AUDIT_SCHEMA
    from governance.models import ChangeRequest
    from tests.governance.test_registration_policies import (
        AUDIT_MESSAGE,
        USER_ID_HASHED,
        USER_ID_PUBLIC,
        audit_sources,
    )

    response = owner_client.post(
        "/api/v1/schemas",
        {
            "name": PLATFORM_AUDIT_SCHEMA,
            "message": AUDIT_MESSAGE,
            "proto_files": audit_sources((USER_ID_HASHED, USER_ID_PUBLIC)),
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    annotations = response.json()["policy_annotations"]
    change_request = ChangeRequest.objects.get()
    assert annotations["change_request"] == {"id": change_request.pk, "state": "submitted"}
    assert annotations["applied_stricter"] == []
    (withheld,) = annotations["not_applied"]
    assert withheld["path"] == "user_id"
    assert withheld["annotated"]["classification"] == "public"
    assert withheld["in_force"] == {
        "classification": "pseudonymous_id",
        "action": "hash",
        "keep_chars": None,
        "scan": False,
    }

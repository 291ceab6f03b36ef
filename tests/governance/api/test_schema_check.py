"""Schema check API: answers violations without registering; only check keys and viewers."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from governance.models import Schema, SchemaRevision
from governance.protoc import compile_protos
from ingest.services import api_key_create
from tests.factories import (
    CLIENT_TELEMETRY_PROTO,
    CLIENT_TELEMETRY_SCHEMA,
    client_telemetry_schema_register,
)

pytestmark = pytest.mark.django_db

URL = f"/api/v1/schemas/{CLIENT_TELEMETRY_SCHEMA}/check"
BROKEN = CLIENT_TELEMETRY_PROTO.replace("uint32 attempt = 1;", "string attempt = 1;")


@pytest.fixture
def registered(platform_config):
    return client_telemetry_schema_register()


@pytest.fixture
def check_key(registered):
    return api_key_create(
        name="ci", kind="schema_check", allowed_schemas=["openagents.sync.*"], actor=None
    ).secret


def post(client, body, key=None, url=URL):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.post(url, body, content_type="application/json", **headers)


def test_compatible_sources_pass_and_nothing_is_registered(client, check_key):
    """The registered sources themselves: compatible under WIRE_JSON, no revision stored."""
    response = post(client, {"proto_files": {"client_telemetry.proto": CLIENT_TELEMETRY_PROTO}},
                    check_key)  # fmt: skip
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["compatible"] is True and answer["violations"] == []
    assert answer["rule_set"]["category"] == "WIRE_JSON"
    assert answer["checked_against"] == [1]
    assert SchemaRevision.objects.filter(schema__name=CLIENT_TELEMETRY_SCHEMA).count() == 1


def test_breaking_sources_answer_violations_with_file_and_line(client, check_key):
    """A type change answers its rule, path, old and new declaration, file and line."""
    response = post(client, {"proto_files": {"client_telemetry.proto": BROKEN}}, check_key)
    assert response.status_code == 200
    (violation,) = response.json()["violations"]
    line = BROKEN.splitlines().index("  string attempt = 1;") + 1
    assert violation == {
        "rule": "FIELD_WIRE_JSON_COMPATIBLE_TYPE",
        "path": "reconnect.attempt",
        "old": "uint32 attempt = 1",
        "new": "string attempt = 1",
        "message": violation["message"],
        "against_version": 1,
        "file": "client_telemetry.proto",
        "line": line,
    }
    assert response.json()["compatible"] is False


def test_the_schema_rule_set_decides(client, check_key, registered):
    """The schema's own category applies: WIRE accepts a widening WIRE_JSON refuses."""
    widened = CLIENT_TELEMETRY_PROTO.replace("uint32 attempt = 1;", "uint64 attempt = 1;")
    body = {"proto_files": {"client_telemetry.proto": widened}}
    assert post(client, body, check_key).json()["compatible"] is False
    Schema.objects.filter(name=CLIENT_TELEMETRY_SCHEMA).update(breaking_category="WIRE")
    assert post(client, body, check_key).json()["compatible"] is True


def test_descriptor_set_input(client, check_key):
    """A base64 FileDescriptorSet (e.g. from buf build) is checked like sources."""
    compiled = compile_protos({"client_telemetry.proto": BROKEN})
    body = {
        "descriptor_set": base64.b64encode(compiled.SerializeToString()).decode(),
        "files": ["client_telemetry.proto"],
    }
    response = post(client, body, check_key)
    assert [v["rule"] for v in response.json()["violations"]] == ["FIELD_WIRE_JSON_COMPATIBLE_TYPE"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"proto_files": {"client_telemetry.proto": "syntax = 'proto3'; message {"}},
         "proto_compile_error"),
        ({"descriptor_set": "not base64!"}, "invalid_descriptor_set"),
    ],
)  # fmt: skip
def test_unusable_input_is_400_with_errors(client, check_key, body, code):
    """Sources that do not compile (or a bad descriptor set) are 400 with the reasons."""
    response = post(client, body, check_key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["errors"]


def test_unknown_schema_is_404(client, check_key):
    """Checking a schema that is not registered is 404."""
    url = "/api/v1/schemas/openagents.sync.nope.v1/check"
    response = post(client, {"proto_files": {"a.proto": CLIENT_TELEMETRY_PROTO}}, check_key, url)
    assert response.status_code == 404


def test_check_key_may_not_send_events_or_register(client, check_key):
    """A schema_check key is refused by ingest (403) and by registration (not authenticated)."""
    events = client.post("/api/v1/events", {"events": []}, content_type="application/json",
                         HTTP_AUTHORIZATION=f"Bearer {check_key}")  # fmt: skip
    assert events.status_code == 403
    register = post(
        client,
        {"name": CLIENT_TELEMETRY_SCHEMA, "proto_files": {"client_telemetry.proto": BROKEN},
         "message": "openagents.sync.v1.ClientTelemetryEvent"},
        check_key, url="/api/v1/schemas",
    )  # fmt: skip
    assert register.status_code in (401, 403)
    assert SchemaRevision.objects.filter(schema__name=CLIENT_TELEMETRY_SCHEMA).count() == 1


def test_ingest_key_and_out_of_scope_key_may_not_check(client, registered):
    """Ingest keys may not check; a check key limited to other schemas may not either."""
    ingest = api_key_create(name="svc", actor=None).secret
    other = api_key_create(
        name="ci-other", kind="schema_check", allowed_schemas=["acme.*"], actor=None
    ).secret
    body = {"proto_files": {"client_telemetry.proto": CLIENT_TELEMETRY_PROTO}}
    assert post(client, body, ingest).status_code == 403
    assert post(client, body, other).status_code == 403
    assert post(client, body).status_code in (401, 403)


def test_a_user_who_may_view_schemas_may_check(client, registered):
    """People check with their session when they hold view_schema."""
    user = get_user_model().objects.create_user("viewer", password="pw-123456!")
    client.force_login(user)
    body = {"proto_files": {"client_telemetry.proto": CLIENT_TELEMETRY_PROTO}}
    assert post(client, body).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_schema"))
    assert post(client, body).status_code == 200

"""Field policies: seeding at registration, policy-as-code YAML, commands and coverage."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from governance.models import FieldPolicy, SchemaRevision
from governance.policies import PolicyDocumentError, policy_yaml_dump, policy_yaml_parse
from governance.redaction import PolicySpec
from governance.selectors import field_policy_specs, policy_coverage
from governance.services import PolicyApplyError, policy_document_apply, schema_register
from tests.audit_helpers import platform_audit_events
from tests.factories import (
    CLIENT_TELEMETRY_MESSAGE,
    CLIENT_TELEMETRY_PROTO,
    CLIENT_TELEMETRY_SCHEMA,
)

pytestmark = pytest.mark.django_db

AUDIT_YAML = """schema: telemetry.audit_event.v1
fields:
  event_name: {classification: internal, action: keep}
  user_id: {classification: pseudonymous_id, action: hash}
  attributes: {classification: internal, action: keep, scan: true}
"""


def register_client_schema():
    return schema_register(
        name=CLIENT_TELEMETRY_SCHEMA,
        proto_files={"client_telemetry.proto": CLIENT_TELEMETRY_PROTO},
        message_name=CLIENT_TELEMETRY_MESSAGE,
        event_class="client_diagnostic",
        actor=None,
    ).revision


def test_annotations_seed_the_platform_schemas(platform_config):
    """The platform's proto options classify every audit field; coverage is complete."""
    revision = SchemaRevision.objects.get(schema__name="telemetry.audit_event.v1")
    specs = field_policy_specs(revision)
    assert specs["user_id"] == PolicySpec("pseudonymous_id", "hash")
    assert specs["attributes"] == PolicySpec("internal", "keep", None, True)
    assert policy_coverage(revision) == []


def test_conventions_seed_a_schema_without_annotations(platform_config):
    """Roles and well-known names are classified; payload fields stay unclassified."""
    revision = register_client_schema()
    specs = field_policy_specs(revision)
    assert specs["session_id"] == PolicySpec("pseudonymous_id", "hash")
    assert specs["actor_scope_hash"] == PolicySpec("pseudonymous_id", "keep")
    assert specs["occurred_at_unix_ms"] == PolicySpec("internal", "keep")
    missing = policy_coverage(revision)
    assert "reconnect.reason_code" in missing and "topic_class" in missing
    assert "event_id" not in missing


def test_a_new_revision_inherits_policies(platform_config):
    """Policies set on v1 carry over to v2 for the same paths."""
    register_client_schema()
    policy_document_apply(
        document=policy_yaml_parse(
            f"schema: {CLIENT_TELEMETRY_SCHEMA}\nfields:\n"
            "  topic_class: {classification: public, action: keep}\n"
        ),
        actor=None,
    )
    additive = CLIENT_TELEMETRY_PROTO.replace(
        "string session_id = 11;", "string session_id = 11;\n  string locale = 12;"
    )
    v2 = schema_register(
        name=CLIENT_TELEMETRY_SCHEMA,
        proto_files={"client_telemetry.proto": additive},
        message_name=CLIENT_TELEMETRY_MESSAGE,
        actor=None,
    ).revision
    assert field_policy_specs(v2)["topic_class"] == PolicySpec("public", "keep")
    assert "locale" in policy_coverage(v2)


def test_yaml_round_trip(platform_config):
    """export then parse gives the same policies; the format is the documented one."""
    revision = SchemaRevision.objects.get(schema__name="telemetry.audit_event.v1")
    text = policy_yaml_dump("telemetry.audit_event.v1", field_policy_specs(revision))
    assert "user_id: {classification: pseudonymous_id, action: hash}" in text
    assert "attributes: {classification: internal, action: keep, scan: true}" in text
    document = policy_yaml_parse(text)
    assert document.fields == field_policy_specs(revision)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "schema: x\nfields:\n  a: {classification: internal, action: keep, colour: red}\n",
            "unknown key(s) colour",
        ),
        (
            "schema: x\nowner: me\nfields:\n  a: {classification: internal, action: keep}\n",
            "unknown key 'owner'",
        ),
        (
            "schema: x\nfields:\n  a: {classification: private, action: keep}\n",
            "classification must be one of",
        ),
        (
            "schema: x\nfields:\n  a: {classification: internal, action: shred}\n",
            "action must be one of",
        ),
        (
            "schema: x\nfields:\n  a: {classification: internal, action: mask, keep_chars: -1}\n",
            "keep_chars",
        ),
        ("schema: x\nfields: [1, 2]\n", "'fields' must map"),
        ("schema: [unclosed\n", "not valid YAML at line"),
        ("- just a list\n", "must be a mapping"),
    ],
)
def test_bad_documents_are_refused_with_reasons(text, fragment):
    """Unknown keys and bad values are errors, each named."""
    with pytest.raises(PolicyDocumentError) as refused:
        policy_yaml_parse(text)
    assert any(fragment in error for error in refused.value.errors), refused.value.errors


def test_apply_refuses_unknown_paths_by_name_and_changes_nothing(platform_config):
    """Paths that do not exist are listed; the valid ones in the same file are not applied."""
    document = policy_yaml_parse(
        "schema: telemetry.audit_event.v1\nfields:\n"
        "  event_name: {classification: public, action: keep}\n"
        "  no_such_field: {classification: internal, action: keep}\n"
        "  attributes.nested: {classification: internal, action: keep}\n"
    )
    with pytest.raises(PolicyApplyError) as refused:
        policy_document_apply(document=document, actor=None)
    assert refused.value.errors == [
        "telemetry.audit_event.v1 has no field 'attributes.nested'",
        "telemetry.audit_event.v1 has no field 'no_such_field'",
    ]
    revision = SchemaRevision.objects.get(schema__name="telemetry.audit_event.v1")
    assert field_policy_specs(revision)["event_name"].classification == "internal"


@pytest.fixture
def owner_and_approver(platform_config):
    from governance.roles import GOVERNANCE_APPROVER, GOVERNANCE_OWNER
    from tests.factories import user_with_role

    return user_with_role("ci-owner", GOVERNANCE_OWNER), user_with_role(
        "ci-bot", GOVERNANCE_APPROVER
    )


def test_apply_policy_command_proposes_and_with_an_approver_applies(
    owner_and_approver, tmp_path, capsys
):
    """apply_policy --author submits a change request and changes nothing; adding --approver
    (someone else, holding the approver permission) approves and applies it, audited."""
    from governance.models import ChangeRequest

    revision = SchemaRevision.objects.get(schema__name="telemetry.audit_event.v1")
    policy = tmp_path / "audit.yaml"
    policy.write_text(
        AUDIT_YAML.replace(
            "event_name: {classification: internal", "event_name: {classification: public"
        )
    )
    call_command("apply_policy", str(policy), "--author", "ci-owner")
    out = capsys.readouterr().out
    assert "submitted" in out
    assert field_policy_specs(revision)["event_name"].classification == "internal"
    proposal = ChangeRequest.objects.get()
    assert (proposal.status, proposal.author.username) == ("submitted", "ci-owner")

    call_command("apply_policy", str(policy), "--author", "ci-owner", "--approver", "ci-bot")
    out = capsys.readouterr().out
    assert "Approved by ci-bot and applied as version 1" in out
    assert field_policy_specs(revision)["event_name"].classification == "public"
    assert platform_audit_events("platform.field_policy.changed").count() == 1
    assert platform_audit_events("platform.change_request.applied").count() == 1
    call_command("apply_policy", str(policy), "--author", "ci-owner", "--approver", "ci-bot")
    assert "Nothing to change" in capsys.readouterr().out
    call_command("export_policy", "telemetry.audit_event.v1")
    exported = capsys.readouterr().out
    assert exported.startswith("schema: telemetry.audit_event.v1\nfields:\n")
    assert "event_name: {classification: public, action: keep}" in exported


def test_apply_policy_command_refuses_self_approval(owner_and_approver, tmp_path):
    """The author cannot approve their own proposal, even from CI: it stays submitted."""
    from governance.models import ChangeRequest

    policy = tmp_path / "audit.yaml"
    policy.write_text(
        AUDIT_YAML.replace(
            "event_name: {classification: internal", "event_name: {classification: public"
        )
    )
    with pytest.raises(CommandError, match="own_change"):
        call_command("apply_policy", str(policy), "--author", "ci-owner", "--approver", "ci-owner")
    assert ChangeRequest.objects.get().status == "submitted"


def test_apply_policy_command_errors(owner_and_approver, tmp_path):
    """A bad file, an unknown user or a missing file exit with the reasons."""
    policy = tmp_path / "bad.yaml"
    policy.write_text(
        "schema: telemetry.audit_event.v1\nfields:\n  nope: {classification: internal, action: keep}\n"
    )
    with pytest.raises(CommandError, match="has no field 'nope'"):
        call_command("apply_policy", str(policy), "--author", "ci-owner")
    with pytest.raises(CommandError, match="no active user 'nobody'"):
        call_command("apply_policy", str(policy), "--author", "nobody")
    with pytest.raises(CommandError, match="no such file"):
        call_command("apply_policy", str(tmp_path / "missing.yaml"), "--author", "ci-owner")


def test_shipped_client_telemetry_policy_classifies_every_field(platform_config):
    """docs/policies' file covers the whole client telemetry contract."""
    from tests.factories import client_telemetry_schema_register

    revision = client_telemetry_schema_register()
    assert policy_coverage(revision) == []
    assert FieldPolicy.objects.filter(revision=revision, path="session_id", action="hash").exists()

"""A new revision inherits reviewed policies: weaker annotations wait for review, stricter apply."""

from __future__ import annotations

import pytest

from governance.choices import ChangeKind, ChangeStatus
from governance.defaults import PLATFORM_AUDIT_SCHEMA, platform_proto_sources
from governance.models import ChangeRequest, SchemaRevision
from governance.policies import policy_loosening
from governance.redaction import PolicySpec
from governance.selectors import field_policy_specs
from governance.services import (
    change_request_approve,
    default_configuration_load,
    schema_register,
)
from ingest.models import Event
from tests.audit_helpers import platform_audit_events
from tests.factories import audit_event, batch

EVENTS_PROTO = "telemetry/v1/events.proto"
AUDIT_MESSAGE = "telemetry.v1.AuditEvent"
USER_ID_HASHED = (
    "string user_id = 5 [(role) = FIELD_ROLE_ACTOR, (policy) = {classification: "
    "CLASSIFICATION_PSEUDONYMOUS_ID, action: REDACTION_ACTION_HASH}];"
)
USER_ID_PUBLIC = (
    "string user_id = 5 [(role) = FIELD_ROLE_ACTOR, (policy) = {classification: "
    "CLASSIFICATION_PUBLIC, action: REDACTION_ACTION_KEEP}];"
)
OUTCOME_KEPT = (
    "string outcome = 3 [(policy) = {classification: CLASSIFICATION_INTERNAL, "
    "action: REDACTION_ACTION_KEEP}];"
)
OUTCOME_HASHED = (
    "string outcome = 3 [(policy) = {classification: CLASSIFICATION_INTERNAL, "
    "action: REDACTION_ACTION_HASH}];"
)
HASHED = PolicySpec("pseudonymous_id", "hash")


def audit_sources(*replacements: tuple[str, str]) -> dict[str, str]:
    """The platform's sources with some annotations of the audit event rewritten."""
    sources = platform_proto_sources()
    text = sources[EVENTS_PROTO]
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    return {**sources, EVENTS_PROTO: text}


def register_audit(sources: dict[str, str], actor):
    return schema_register(
        name=PLATFORM_AUDIT_SCHEMA, proto_files=sources, message_name=AUDIT_MESSAGE, actor=actor
    )


# -- the strength order (pure) --------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "proposed", "loosens"),
    [
        (HASHED, PolicySpec("public", "keep"), True),
        (HASHED, PolicySpec("secret", "keep"), True),  # tighter class, weaker action
        (HASHED, PolicySpec("public", "drop"), True),  # weaker class, tighter action
        (HASHED, PolicySpec("personal", "drop"), False),
        (HASHED, HASHED, False),
        (PolicySpec("internal", "mask", 4), PolicySpec("internal", "mask", 8), True),
        (PolicySpec("internal", "mask", None), PolicySpec("internal", "mask", 2), False),
        (PolicySpec("internal", "keep", scan=True), PolicySpec("internal", "keep"), True),
        (PolicySpec("internal", "keep"), PolicySpec("internal", "keep", scan=True), False),
        (PolicySpec("personal", "generalize"), PolicySpec("personal", "keep"), True),
        (PolicySpec("internal", "drop"), PolicySpec("internal", "reject_event"), False),
    ],
)
def test_loosening_follows_the_strength_order(current, proposed, loosens):
    """A proposal weaker in any respect (class, action, kept characters, scan) loosens."""
    assert bool(policy_loosening(current, proposed)) is loosens


# -- registration ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_weaker_annotation_is_proposed_not_applied(owner, approver, ingest_client):
    """Re-registering the audit schema with user_id annotated public/keep makes v2 with the
    reviewed hash still in force and a submitted change request for the loosening; an
    ingested e-mail in user_id is stored hashed, in the payload and in actor_hash."""
    registered = register_audit(audit_sources((USER_ID_HASHED, USER_ID_PUBLIC)), owner)
    revision = registered.revision
    assert (revision.version, revision.status) == (2, "active")
    assert field_policy_specs(revision)["user_id"] == HASHED
    assert [w.path for w in registered.withheld] == ["user_id"]
    change_request = registered.change_request
    assert change_request.status == ChangeStatus.SUBMITTED
    assert change_request.kind == ChangeKind.FIELD_POLICIES
    assert change_request.author == owner
    assert change_request.payload == {
        "2": {
            "user_id": {
                "classification": "public",
                "action": "keep",
                "keep_chars": None,
                "scan": False,
            }
        }
    }
    recorded = platform_audit_events("platform.schema.registered").latest("id")
    assert recorded.payload["attributes"]["policies_withheld"] == "user_id"
    assert recorded.payload["attributes"]["change_request"] == str(change_request.pk)

    response = ingest_client.post(batch(audit_event(user_id="alice@example.com")))
    assert response.status_code == 200, response.content
    stored = Event.objects.get(source="control-service")
    assert stored.schema_revision_id == revision.pk
    assert stored.payload["user_id"].startswith("k1:")
    assert "alice@example.com" not in str(stored.payload)
    assert stored.actor_hash.startswith("k1:")

    # Approved by a second person, the loosening takes effect like any reviewed change.
    change_request_approve(change_request=change_request, actor=approver, apply=True)
    assert field_policy_specs(revision)["user_id"] == PolicySpec("public", "keep")


@pytest.mark.django_db
def test_a_stricter_annotation_applies_at_once(owner):
    """Annotating outcome hash instead of keep tightens it in v2 at once, no review."""
    registered = register_audit(audit_sources((OUTCOME_KEPT, OUTCOME_HASHED)), owner)
    assert registered.tightened == ("outcome",)
    assert registered.withheld == () and registered.change_request is None
    assert field_policy_specs(registered.revision)["outcome"] == PolicySpec("internal", "hash")
    assert not ChangeRequest.objects.exists()


@pytest.mark.django_db
def test_an_unchanged_annotation_does_not_undo_a_reviewed_change(owner, approver):
    """A reviewed change of v1 (outcome hashed, though annotated keep) carries into v2 even
    though the upload still annotates keep: no new request to loosen it back."""
    from governance.services import change_request_draft

    change_request_approve(
        change_request=change_request_draft(
            kind=ChangeKind.FIELD_POLICIES,
            target=f"schema:{PLATFORM_AUDIT_SCHEMA}",
            payload={"1": {"outcome": {"classification": "internal", "action": "hash"}}},
            reason="outcomes reveal too much",
            actor=owner,
        ),
        actor=approver,
        apply=True,
    )
    added = audit_sources(
        ("string source = 11 [", "string region = 12 [(policy) = {classification: "
         "CLASSIFICATION_INTERNAL, action: REDACTION_ACTION_KEEP}];\n  string source = 11 ["),
    )
    registered = register_audit(added, owner)
    assert registered.revision.version == 2
    assert field_policy_specs(registered.revision)["outcome"] == PolicySpec("internal", "hash")
    assert field_policy_specs(registered.revision)["region"] == PolicySpec("internal", "keep")
    assert registered.withheld == () and registered.tightened == ()
    assert ChangeRequest.objects.count() == 1  # only the reviewed one


@pytest.mark.django_db
def test_bootstrap_never_loosens_a_reviewed_policy(platform_config, monkeypatch):
    """The configuration load re-run with a shipped proto that loosens user_id registers v2
    with the hash still in force and says so; with no person to author it, no request."""
    monkeypatch.setattr(
        "governance.services.registration.platform_proto_sources",
        lambda: audit_sources((USER_ID_HASHED, USER_ID_PUBLIC)),
    )
    changes = default_configuration_load()
    revision = SchemaRevision.objects.get(schema__name=PLATFORM_AUDIT_SCHEMA, version=2)
    assert field_policy_specs(revision)["user_id"] == HASHED
    assert any("not applied" in line and "user_id" in line for line in changes)
    assert not ChangeRequest.objects.exists()

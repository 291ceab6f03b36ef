"""Admin: per-revision policy editor, coverage report, YAML apply/export, scanner rules, preview."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model

from governance.models import ChangeRequest, ScannerRule, SchemaRevision
from governance.selectors import field_policy_specs
from tests.audit_helpers import platform_audit_events
from tests.factories import CLIENT_TELEMETRY_SCHEMA, client_telemetry_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, platform_config):
    user = get_user_model().objects.create_superuser("gov", "gov@example.test", "pw-123456!")
    client.force_login(user)
    return client


@pytest.fixture
def client_revision(platform_config):
    from governance.services import schema_register
    from tests.factories import CLIENT_TELEMETRY_MESSAGE, CLIENT_TELEMETRY_PROTO

    return schema_register(
        name=CLIENT_TELEMETRY_SCHEMA,
        proto_files={"client_telemetry.proto": CLIENT_TELEMETRY_PROTO},
        message_name=CLIENT_TELEMETRY_MESSAGE,
        event_class="client_diagnostic",
        actor=None,
    ).revision


def editor_post_data(page_context, **changes):
    formset = page_context["formset"]
    data = {
        "form-TOTAL_FORMS": str(formset.total_form_count()),
        "form-INITIAL_FORMS": str(formset.initial_form_count()),
    }
    for index, form in enumerate(formset.forms):
        initial = form.initial
        row = {
            "path": initial["path"],
            "classification": initial["classification"],
            "action": initial["action"],
            "keep_chars": initial["keep_chars"] or "",
        }
        row.update(changes.get(initial["path"], {}))
        for key, value in row.items():
            data[f"form-{index}-{key}"] = value
        if changes.get(initial["path"], {}).get("scan", initial["scan"]):
            data[f"form-{index}-scan"] = "on"
    return data


def approve_latest(approver) -> ChangeRequest:
    from governance.services import change_request_approve

    return change_request_approve(
        change_request=ChangeRequest.objects.latest("id"), actor=approver, apply=True
    )


def test_policy_editor_lists_every_field_and_proposes_changes(
    admin_client, client_revision, approver
):
    """Every field appears with its policy; unclassified ones are counted; saving proposes a
    change request that applies only once a second person approves it."""
    url = f"/admin/governance/fieldpolicy/edit/{client_revision.pk}/"
    page = admin_client.get(url)
    html = page.content.decode()
    assert "<code>reconnect.reason_code</code>" in html
    assert 'id="unclassified-count"' in html
    rows = len(page.context["formset"].forms)
    assert rows > 5
    assert f'id="field-path-count">{rows} field paths<' in html  # was always "0 field paths"
    data = editor_post_data(
        page.context,
        topic_class={"classification": "public", "action": "keep"},
        session_id={"classification": "pseudonymous_id", "action": "mask", "keep_chars": "4"},
    )
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()  # the reason
    data["change_reason"] = "classify the reconnect topic"
    response = admin_client.post(url, data)
    change_request = ChangeRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/governance/changerequest/{change_request.pk}/"
    assert set(change_request.payload["1"]) == {"topic_class", "session_id"}
    assert "topic_class" not in field_policy_specs(client_revision)
    approve_latest(approver)
    specs = field_policy_specs(client_revision)
    assert specs["topic_class"].classification == "public"
    assert (specs["session_id"].action, specs["session_id"].keep_chars) == ("mask", 4)
    assert platform_audit_events("platform.field_policy.changed").count() == 1


def test_editor_refuses_half_set_rows(admin_client, client_revision):
    """A classification without an action is a form error; nothing changes."""
    url = f"/admin/governance/fieldpolicy/edit/{client_revision.pk}/"
    page = admin_client.get(url)
    data = editor_post_data(page.context, topic_class={"classification": "public", "action": ""})
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "set both classification and action" in response.content.decode()
    assert "topic_class" not in field_policy_specs(client_revision)


def test_coverage_report_lists_unclassified_fields(admin_client, client_revision):
    """The coverage page names each unclassified path per revision; platform schemas are complete."""
    html = admin_client.get("/admin/governance/fieldpolicy/coverage/").content.decode()
    assert "<code>reconnect.reason_code</code>" in html
    assert "telemetry.audit_event.v1 v1" in html
    assert "✓ complete" in html


def test_yaml_export_and_propose_in_admin(admin_client, client_revision, approver):
    """Export downloads YAML; a pasted document becomes a change request, or lists errors."""
    audit = SchemaRevision.objects.get(schema__name="telemetry.audit_event.v1")
    exported = admin_client.get(f"/admin/governance/fieldpolicy/export/{audit.pk}/")
    assert exported["Content-Type"].startswith("application/yaml")
    assert b"user_id: {classification: pseudonymous_id, action: hash}" in exported.content
    document = exported.content.decode().replace(
        "event_name: {classification: internal", "event_name: {classification: public"
    )
    proposed = admin_client.post(
        "/admin/governance/fieldpolicy/apply/",
        {"document": document, "change_reason": "event names are public"},
    )
    assert proposed.status_code == 302
    assert field_policy_specs(audit)["event_name"].classification == "internal"
    assert list(ChangeRequest.objects.get().payload["1"]) == ["event_name"]
    approve_latest(approver)
    assert field_policy_specs(audit)["event_name"].classification == "public"
    bad = admin_client.post(
        "/admin/governance/fieldpolicy/apply/",
        {
            "document": "schema: telemetry.audit_event.v1\nfields:\n  ghost: {classification: internal, action: keep}\n",
            "change_reason": "ghosts",
        },
    )
    assert "has no field &#x27;ghost&#x27;" in bad.content.decode()


def test_scanner_rule_is_validated_and_proposed_on_save(admin_client, approver):
    """A custom rule that does not compile is refused with a reason; a valid one becomes a
    change request and exists only once approved."""
    response = admin_client.post(
        "/admin/governance/scannerrule/add/",
        {
            "name": "bad",
            "pattern": "(unclosed",
            "action": "replace",
            "keep_chars": "4",
            "enabled": "on",
        },
    )
    assert response.status_code == 200
    assert not ScannerRule.objects.exists()
    response = admin_client.post(
        "/admin/governance/scannerrule/add/",
        {
            "name": "ticket",
            "pattern": r"TICKET-\d{6}",
            "action": "replace",
            "keep_chars": "4",
            "enabled": "on",
            "change_reason": "ticket numbers name customers",
        },
    )
    assert response.status_code == 302
    assert not ScannerRule.objects.exists()
    assert ChangeRequest.objects.get().target == "scanner_rule:ticket"
    approve_latest(approver)
    assert ScannerRule.objects.get().pattern == r"TICKET-\d{6}"
    assert platform_audit_events("platform.scanner_rule.created").count() == 1


def test_custom_rule_applies_at_ingest(ingest_client, platform_config, settings):
    """A rule saved in the admin redacts the next ingested event."""
    from governance.services import scanner_rule_save

    settings.TELEMETRY_PLAN_REFRESH_SECONDS = 0
    scanner_rule_save(rule=ScannerRule(name="ticket", pattern=r"TICKET-\d{6}"), actor=None)
    from tests.factories import audit_event, batch

    ingest_client.post(batch(audit_event(attributes={"ref": "see TICKET-123456"})))
    from ingest.models import Event

    stored = Event.objects.get(source="control-service")
    assert stored.payload["attributes"]["ref"] == "see [ticket]"
    assert ["attributes", "scanner:ticket"] in stored.redactions


def test_preview_shows_before_and_after(admin_client):
    """The preview redacts a sample in memory with a candidate rule; nothing is stored."""
    from tests.factories import client_telemetry_schema_register

    client_revision = client_telemetry_schema_register()
    sample = client_telemetry_events(1)[0]
    sample["reconnect"]["reason_code"] = "mail eli@corp.test ORDER-42"
    response = admin_client.post(
        "/admin/governance/scannerrule/preview/",
        {
            "schema": client_revision.pk,
            "sample": json.dumps(sample),
            "pattern": r"ORDER-\d+",
            "action": "replace",
        },
    )
    html = response.content.decode()
    after = html.split('id="preview-after">')[1].split("</pre>")[0]
    assert "eli@corp.test" not in after
    assert "ORDER-42" not in after
    assert "scanner:candidate" in html
    from ingest.models import Event

    assert not Event.objects.filter(source="control-service").exists()


def test_preview_reports_invalid_samples(admin_client, client_revision):
    """A sample that does not match the schema shows the rejection, not a 500."""
    response = admin_client.post(
        "/admin/governance/scannerrule/preview/",
        {
            "schema": client_revision.pk,
            "sample": '{"bogus": 1}',
            "pattern": "",
            "action": "replace",
        },
    )
    assert 'id="preview-error"' in response.content.decode()
    assert "unknown_field" in response.content.decode()


@pytest.mark.parametrize("sample", ['{"n": ' + "9" * 5000 + "}", "[" * 100_000 + "]" * 100_000])
def test_preview_refuses_numbers_too_long_and_nesting_too_deep(admin_client, client_revision, sample):
    """A sample Python cannot parse (a 5,000-digit integer, deep nesting) is a form error."""
    response = admin_client.post(
        "/admin/governance/scannerrule/preview/",
        {"schema": client_revision.pk, "sample": sample, "pattern": "", "action": "replace"},
    )
    assert response.status_code == 200
    assert "a number too long or nesting too deep" in response.content.decode()


def test_redaction_counters(ingest_client, platform_config, client):
    """Redactions are counted per schema, field and action."""
    from tests.factories import audit_event, batch

    def value() -> float:
        text = client.get("/metrics").content.decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("telemetry_redactions_total{")
            and 'field="user_id"' in line
            and 'action="hash"' in line
            and 'schema="telemetry.audit_event.v1"' in line
        )

    before = value()
    ingest_client.post(batch(audit_event(user_id="user_1"), audit_event(user_id="user_2")))
    assert value() - before == 2

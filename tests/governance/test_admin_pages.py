"""Admin pages read as a product: schema pages, proposing forms, read-only views, refusals."""

from __future__ import annotations

import pytest
from django.test import Client

from governance.models import Schema, SchemaRevision
from governance.roles import SECURITY_ANALYST
from tests.factories import AUDIT_SCHEMA, user_with_role

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_schema_page_lists_roles_readably_and_links_its_policy_pages(approver):
    schema = Schema.objects.get(name=AUDIT_SCHEMA)
    revision = schema.revisions.order_by("-version").first()
    assert revision.roles  # the audit schema names its envelope roles
    html = logged_in(approver).get(f"/admin/governance/schema/{schema.pk}/change/")
    html = html.content.decode()
    role, path = sorted(revision.roles.items())[0]
    assert f"<li>{role}: <code>{path}</code></li>" in html
    assert f"&quot;{role}&quot;: &quot;" not in html  # the raw JSON dict it used to show
    links = html.split('id="schema-links">')[1].split("</span>")[0]
    assert f"/admin/governance/fieldpolicy/edit/{revision.pk}/" in links
    assert f"/admin/governance/changerequest/review/schema/{schema.pk}/" in links
    assert f"/admin/governance/changerequest/schema:{AUDIT_SCHEMA}/history/" in links


def test_revision_page_lists_roles_readably(approver):
    revision = SchemaRevision.objects.filter(schema__name=AUDIT_SCHEMA).first()
    html = logged_in(approver).get(f"/admin/governance/schemarevision/{revision.pk}/change/")
    html = html.content.decode()
    assert 'class="roles-list"' in html
    assert "Review matrix" in html and "Policy history" in html


def test_the_legal_hold_form_proposes(owner):
    html = logged_in(owner).get("/admin/governance/legalhold/add/").content.decode()
    row = html.split('id="propose-row"')[1].split("</div>")[0]
    assert 'value="Propose"' in row
    assert 'value="Save"' not in html and "_addanother" not in html


def test_an_approver_sees_field_policies_read_only(approver):
    revision = SchemaRevision.objects.filter(schema__name=AUDIT_SCHEMA).first()
    html = logged_in(approver).get(f"/admin/governance/fieldpolicy/edit/{revision.pk}/")
    html = html.content.decode()
    assert 'id="read-only-note"' in html
    form = html.split('id="field-policy-form"')[1].split("</form>")[0]
    assert "<select" not in form and 'type="submit"' not in form


def test_a_refusal_is_styled_and_names_the_role_needed(platform_config):
    analyst = logged_in(user_with_role("sam", SECURITY_ANALYST))
    response = analyst.get("/admin/governance/changerequest/review/")
    assert response.status_code == 403
    html = response.content.decode()
    assert 'id="permission-denied"' in html
    needed = html.split('id="role-needed">')[1].split("</p>")[0]
    assert "governance approver" in needed and "platform admin" in needed
    assert "security analyst" in html  # the roles the user has


def test_conformance_shows_a_per_rule_table_with_status(owner):
    from django.core.files.uploadedfile import SimpleUploadedFile

    rules = (
        b"groups:\n- name: g\n  rules:\n"
        b"  - alert: Missing\n    expr: up_nothing_total > 0\n"
        b"  - alert: Fine\n    expr: up > 0\n"
    )
    response = logged_in(owner).post(
        "/admin/governance/metricdefinition/conformance/",
        {"file": SimpleUploadedFile("rules.yaml", rules), "allow_missing": ""},
    )
    html = response.content.decode()
    table = html.split('id="conformance-rules"')[1].split("</table>")[0]
    missing = table.split('class="rule-missing"')[1].split("</tr>")[0]
    assert "MISSING" in missing and "Missing" in missing and "up_nothing_total" in missing
    assert "Fine" not in table
    summary = html.split('id="conformance-summary"')[1].split("</div>\n</div>")[0]
    assert "<strong>2</strong>" in summary and "<strong>1</strong> OK" in summary
    assert "<strong>1</strong> failing" in summary


def test_metric_labels_and_buckets_are_edited_as_lines_and_numbers(platform_config):
    from governance.admin.metrics import BucketsField, LabelLinesField

    labels = LabelLinesField(required=False)
    assert labels.clean("event_type = oneof:event\n\nsurface = field:surface") == [
        {"label": "event_type", "source": "oneof:event"},
        {"label": "surface", "source": "field:surface"},
    ]
    assert labels.prepare_value([{"label": "surface", "source": "field:surface"}]) == (
        "surface = field:surface"
    )
    with pytest.raises(Exception, match="line 1: write it as label = source"):
        labels.clean("surface")
    buckets = BucketsField(required=False)
    assert buckets.clean("0.005, 0.1, 1, 10") == [0.005, 0.1, 1.0, 10.0]
    assert buckets.prepare_value([0.005, 0.1, 1.0]) == "0.005, 0.1, 1"
    with pytest.raises(Exception, match="must increase"):
        buckets.clean("1, 0.5")
    with pytest.raises(Exception, match="is not a number"):
        buckets.clean("1, fast")


def test_the_metric_definition_form_has_no_json_textareas(platform_config):
    from django.contrib.auth import get_user_model

    from governance.models import MetricDefinition

    definition = MetricDefinition.objects.create(
        name="audit_outcomes_total",
        schema=Schema.objects.get(name=AUDIT_SCHEMA),
        labels=[{"label": "outcome", "source": "field:outcome"}],
        buckets=[0.1, 1.0],
    )
    root = get_user_model().objects.create_superuser("root", password="pw-123456!")
    html = (
        logged_in(root)
        .get(f"/admin/governance/metricdefinition/{definition.pk}/change/")
        .content.decode()
    )
    field = html.split('name="labels"')[1].split("</textarea>")[0]
    first = definition.labels[0]
    assert f"{first['label']} = {first['source']}" in field
    assert "[{" not in field and "&quot;label&quot;" not in field
    assert 'name="buckets" ' in html and 'type="text"' in html.split('name="buckets"')[0][-200:]

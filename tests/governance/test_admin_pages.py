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

"""Roles: the groups a migration creates hold exactly what the README's matrix says."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from governance.roles import PLATFORM_ADMIN, ROLE_PERMISSIONS
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parents[2] / "README.md"

# What each capability of the README's matrix needs (all of the permissions).
CAPABILITIES = {
    "view policies, retention, change requests, history": (
        "governance.view_fieldpolicy",
        "governance.view_scannerrule",
        "governance.view_eventclass",
        "governance.view_legalhold",
        "governance.view_changerequest",
        "governance.view_policyversion",
    ),
    "propose changes": ("governance.propose_changerequest",),
    "approve or reject others' changes": ("governance.approve_changerequest",),
    "apply approved changes": ("governance.apply_changerequest",),
    "mark policies reviewed": ("governance.review_policy",),
    "register schemas, edit the metric catalogue": (
        "governance.add_schemarevision",
        "governance.change_schemarevision",
        "governance.add_metricdefinition",
    ),
    "search and export audit events": ("audit.search_auditevent",),
    "view performance trends": ("ingest.view_performancetrend",),
    "view violation reports and ingest totals": ("ingest.view_ingesttally",),
    "view API keys": ("ingest.view_apikey",),
    "run a purge now": ("ingest.add_purgerun",),
    "create and revoke API keys": ("ingest.add_apikey", "ingest.change_apikey"),
    "manage users and roles": ("auth.change_user", "auth.change_group"),
    "submit data-subject requests, approve others' erasures": (
        "privacy.add_subjectrequest",
        "privacy.approve_subjectrequest",
    ),
}


def readme_matrix() -> dict[str, dict[str, bool]]:
    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- role-matrix -->")[1].split("<!-- /role-matrix -->")[0]
    lines = [line for line in table.strip().splitlines() if line.startswith("|")]
    roles = [cell.strip() for cell in lines[0].strip("|").split("|")][1:]
    matrix = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        matrix[cells[0]] = {role: cell == "✓" for role, cell in zip(roles, cells[1:], strict=True)}
    return matrix


def test_the_migration_creates_every_role(db):
    assert set(Group.objects.values_list("name", flat=True)) >= {*ROLE_PERMISSIONS, PLATFORM_ADMIN}


def test_the_readme_matrix_is_what_each_role_can_do(platform_config):
    """Each ✓ in the README is a permission the role's group holds, each blank one it lacks."""
    matrix = readme_matrix()
    assert set(matrix) == set(CAPABILITIES)
    for role in [*ROLE_PERMISSIONS, PLATFORM_ADMIN]:
        user = user_with_role(role.replace(" ", "-"), role)
        for capability, permissions in CAPABILITIES.items():
            allowed = all(user.has_perm(permission) for permission in permissions)
            assert allowed == matrix[capability][role], (role, capability)


def test_every_permission_the_matrix_names_exists(db):
    """A typo in governance/roles.py would otherwise be skipped silently by the sync."""
    from django.contrib.auth.models import Permission

    for names in ROLE_PERMISSIONS.values():
        for name in names:
            app_label, codename = name.split(".")
            assert Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).exists(), name


def test_bootstrap_restores_a_role_someone_edited(platform_config):
    """The configuration load re-syncs the groups to the matrix."""
    group = Group.objects.get(name="security analyst")
    group.permissions.clear()
    call_command("bootstrap", verbosity=0)
    user = user_with_role("sam", "security analyst")
    assert user.has_perm("audit.search_auditevent")


def test_grant_role_creates_a_staff_user_in_the_role(db, capsys):
    call_command("grant_role", "olivia", "governance owner", "--create")
    out = capsys.readouterr().out
    assert "password (shown only this once)" in out
    from django.contrib.auth import get_user_model

    olivia = get_user_model().objects.get(username="olivia")
    assert olivia.is_staff and olivia.has_perm("governance.propose_changerequest")
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("grant_role", "nobody", "governance owner")

"""The platform's roles: groups and the permissions each holds (the README's matrix)."""

from __future__ import annotations

from typing import Any

GOVERNANCE_OWNER = "governance owner"
GOVERNANCE_APPROVER = "governance approver"
SECURITY_ANALYST = "security analyst"
READ_ONLY_AUDITOR = "read-only auditor"
PRIVACY_OFFICER = "privacy officer"
PLATFORM_ADMIN = "platform admin"

_GOVERNANCE_MODELS = (
    "eventclass",
    "schema",
    "schemarevision",
    "fieldpolicy",
    "scannerrule",
    "retentionoverride",
    "legalhold",
    "metricdefinition",
    "otlplogroute",
    "changerequest",
    "policyversion",
    "policyreview",
)
GOVERNANCE_VIEW = tuple(f"governance.view_{model}" for model in _GOVERNANCE_MODELS)
AUDIT_SEARCH = ("audit.view_auditevent", "audit.search_auditevent")

# "app_label.codename" per role. Platform admins hold every permission of these apps.
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    GOVERNANCE_OWNER: (
        *GOVERNANCE_VIEW,
        "governance.propose_changerequest",
        "governance.apply_changerequest",
        "governance.add_schemarevision",
        "governance.change_schemarevision",
        "governance.add_metricdefinition",
        "governance.change_metricdefinition",
        "ingest.view_purgerun",
        "ingest.view_performancetrend",
        "ingest.view_ingesttally",
    ),
    GOVERNANCE_APPROVER: (
        *GOVERNANCE_VIEW,
        "governance.approve_changerequest",
        "governance.apply_changerequest",
        "governance.review_policy",
        "ingest.view_purgerun",
        "ingest.view_performancetrend",
        "ingest.view_ingesttally",
    ),
    SECURITY_ANALYST: AUDIT_SEARCH,
    # Submits data-subject requests and approves others' erasures (never their own).
    PRIVACY_OFFICER: (
        "privacy.view_subjectrequest",
        "privacy.add_subjectrequest",
        "privacy.approve_subjectrequest",
        "governance.view_legalhold",
    ),
    READ_ONLY_AUDITOR: (
        *GOVERNANCE_VIEW,
        *AUDIT_SEARCH,
        "ingest.view_purgerun",
        "ingest.view_apikey",
        "ingest.view_performancetrend",
        "ingest.view_ingesttally",
    ),
}
PLATFORM_ADMIN_APPS = (
    "governance",
    "ingest",
    "audit",
    "privacy",
    "auth",
    "django_celery_beat",
    "authtoken",
)


def roles_sync(*, group_model: Any, permission_model: Any) -> list[str]:
    """Create the role groups and set their permissions to the matrix; return what changed.

    Takes the models so a migration can pass its historical ones.
    """
    changes = []
    for role, wanted in [*ROLE_PERMISSIONS.items(), (PLATFORM_ADMIN, None)]:
        group, created = group_model.objects.get_or_create(name=role)
        if wanted is None:
            permissions = permission_model.objects.filter(
                content_type__app_label__in=PLATFORM_ADMIN_APPS
            )
        else:
            permissions = [
                permission
                for name in wanted
                if (permission := _permission(permission_model, name)) is not None
            ]
        before = set(group.permissions.values_list("pk", flat=True))
        group.permissions.set(permissions)
        if created or before != set(group.permissions.values_list("pk", flat=True)):
            changes.append(f"role {role!r}: {'created' if created else 'permissions updated'}")
    return changes


def _permission(permission_model: Any, name: str) -> Any:
    """The permission, or None while its model's migration has not run (bootstrap re-syncs)."""
    app_label, codename = name.split(".")
    return permission_model.objects.filter(
        content_type__app_label=app_label, codename=codename
    ).first()

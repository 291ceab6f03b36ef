"""Refusals that say which role would open the page (bare 403s left users guessing)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from ..roles import PLATFORM_ADMIN, ROLE_PERMISSIONS


def roles_with(permission: str) -> list[str]:
    """The roles granting ``permission`` ("app_label.codename"); platform admins hold all."""
    roles = [role for role, granted in ROLE_PERMISSIONS.items() if permission in granted]
    return [*roles, PLATFORM_ADMIN]


def denied(permission: str) -> PermissionDenied:
    """A PermissionDenied whose message (shown on the 403 page) names the roles needed."""
    roles = roles_with(permission)
    return PermissionDenied(
        "This page needs the " + " or ".join(f"“{role}”" for role in roles) + " role."
    )

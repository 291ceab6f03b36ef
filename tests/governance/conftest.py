"""Fixtures of the governance tests: people in the workflow's roles."""

from __future__ import annotations

import pytest

from governance.roles import GOVERNANCE_APPROVER, GOVERNANCE_OWNER
from tests.factories import user_with_role


@pytest.fixture
def owner(platform_config):
    """A governance owner: proposes changes."""
    return user_with_role("olivia", GOVERNANCE_OWNER)


@pytest.fixture
def approver(platform_config):
    """A governance approver: approves others' changes."""
    return user_with_role("arthur", GOVERNANCE_APPROVER)

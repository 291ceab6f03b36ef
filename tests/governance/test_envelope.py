"""Compiled role getters read exactly what walking the role's path by name reads."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.choices import FieldRole
from governance.envelope import TEXT_ROLES, envelope_reader_compile, role_text, role_value
from tests.governance.test_fastjson import _everything, _message, _reference

# Field paths of fastjson.v1.Everything of every shape a role can point at.
PATHS = [
    "f_string",
    "f_int64",
    "f_int32",
    "f_bool",
    "f_double",
    "color",
    "maybe_color",
    "choice_color",
    "maybe_name",
    "budget",
    "inner.label_text",
    "inner.num",
    "inner.child.num",
    "inner.child.label_text",
    "maybe_inner.label_text",
    "choice_inner.child.label_text",
    "r_string",
    "occurred_at",
]


def _plan(path: str, occurred_path: str = "f_int64") -> SimpleNamespace:
    schema, _ = _everything()
    roles = {role: path for role in TEXT_ROLES}
    roles[FieldRole.OCCURRED_AT] = occurred_path
    return SimpleNamespace(compiled=SimpleNamespace(descriptor=schema.descriptor), roles=roles)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.deferred(lambda: _message(_everything()[0].descriptor, valid=True)))
def test_compiled_getters_read_what_the_path_walk_reads(data):
    """For every path shape (top level, nested, through oneofs and optionals, enums,
    numbers, repeated), set or unset, the compiled text getter equals role_text and the
    occurred-at getter equals role_value."""
    schema, _ = _everything()
    message = _reference(schema, data)
    if message is None:
        return
    for path in PATHS:
        plan = _plan(path, occurred_path=path)
        reader = envelope_reader_compile(plan.compiled.descriptor, plan.roles)
        for role in TEXT_ROLES:
            assert reader.text[role](message) == role_text(message, path), path
        assert reader.occurred_at(message) == role_value(message, path), path


@pytest.mark.parametrize(
    ("assign", "path", "expected"),
    [
        ({"color": 1}, "color", "COLOR_RED"),
        ({"color": 9}, "color", "9"),  # no name for the number: its digits
        ({}, "color", "COLOR_UNSPECIFIED"),
        ({"f_bool": True}, "f_bool", "True"),
        ({"f_int64": -3}, "f_int64", "-3"),
        ({}, "inner.label_text", ""),  # parent not set
        ({}, "inner.child.num", ""),
    ],
)
def test_role_text_cases(assign, path, expected):
    """Enum roles read as value names (digits when unnamed), numbers as digits, and a
    path through an unset message reads as empty."""
    schema, _ = _everything()
    message = schema.message_class(**assign)
    plan = _plan(path)
    reader = envelope_reader_compile(plan.compiled.descriptor, plan.roles)
    assert reader.text[FieldRole.SURFACE](message) == expected
    assert role_text(message, path) == expected


def test_missing_roles_read_empty():
    """A role the schema does not name reads as ""."""
    schema, _ = _everything()
    plan = _plan("f_string")
    plan.roles = {FieldRole.OCCURRED_AT: "f_int64"}
    reader = envelope_reader_compile(plan.compiled.descriptor, plan.roles)
    message = schema.message_class(f_string="x")
    assert all(reader.text[role](message) == "" for role in TEXT_ROLES)

"""The platform protos evolve additively: bootstrap on an existing database adds revisions."""

from __future__ import annotations

import re

import pytest

from governance.defaults import (
    DEFAULT_EVENT_CLASSES,
    PLATFORM_SCHEMAS,
    platform_proto_sources,
)
from governance.models import FieldPolicy, SchemaRevision
from governance.services import default_configuration_load, event_class_ensure, schema_register

pytestmark = pytest.mark.django_db


def previous_sources() -> dict[str, str]:
    """The platform protos as they were before `temporality` and `budget_name`."""
    sources = platform_proto_sources()
    text = sources["telemetry/v1/events.proto"]
    text = re.sub(r"  // How a counter's value.*?temporality = 9[^\n]*\n", "", text, flags=re.S)
    text = re.sub(r"  // Name of the budget.*?budget_name = 9[^\n]*\n", "", text, flags=re.S)
    assert "temporality" not in text and "budget_name" not in text
    sources["telemetry/v1/events.proto"] = text
    return sources


def test_bootstrap_on_a_database_seeded_with_the_previous_protos_adds_revision_2():
    """Every platform schema gets a compatible v2 with policies for the new fields; a second
    load changes nothing."""
    for default in DEFAULT_EVENT_CLASSES:
        event_class_ensure(
            name=default.name,
            retention_days=default.retention_days,
            description=default.description,
        )
    old = previous_sources()
    # Schemas of their own files (posthog.capture.v1) did not change.
    evolved = [schema for schema in PLATFORM_SCHEMAS if schema.proto_files is None]
    for schema in evolved:
        schema_register(
            name=schema.name,
            event_class=schema.event_class,
            proto_files=old,
            message_name=schema.message_name,
            actor=None,
        )
    changes = default_configuration_load()
    assert {f"schema {schema.name} v2" for schema in evolved} <= set(changes)
    policies = dict(
        FieldPolicy.objects.filter(
            revision__version=2, path__in=["temporality", "budget_name"]
        ).values_list("path", "classification")
    )
    assert policies == {"temporality": "internal", "budget_name": "public"}
    assert not [c for c in default_configuration_load() if c.startswith("schema ")]
    assert SchemaRevision.objects.filter(version=2, status="active").count() == 4

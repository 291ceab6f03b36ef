"""Generic JSONL artifacts: each line an event of the named schema, answered by line number."""

from __future__ import annotations

import json

import pytest

from ingest.artifacts import ArtifactError, jsonl_artifact_ingest
from ingest.artifacts.jsonl import jsonl_parse
from ingest.models import Event
from ingest.pipeline import IngestContext
from tests.factories import AUDIT_SCHEMA, audit_event

pytestmark = pytest.mark.django_db


def lines(*rows: object) -> bytes:
    return "\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows).encode()


def ingest(content: bytes, schema: str = AUDIT_SCHEMA):
    return jsonl_artifact_ingest(
        content=content, schema=schema, context=IngestContext(source="smoke-test")
    )


def test_lines_are_ingested_and_bad_lines_rejected_by_line_number(platform_config):
    """Good lines land; a broken line, a wrongly typed event, a non-object and a truncated
    last line are rejected with their line numbers and reasons; blank lines are skipped."""
    content = lines(
        audit_event(event_name="smoke.start"),
        "",
        "{not json",
        audit_event(event_name="smoke.step", outcome=7),
        "[1, 2]",
        audit_event(event_name="smoke.end"),
        json.dumps(audit_event(event_name="smoke.cut"))[:25],
    )
    report = ingest(content)
    assert report.totals() == {"received": 6, "accepted": 2, "duplicate": 0, "rejected": 4}
    rejected = {r.line: (r.code, r.field) for r in report.rejected}
    assert rejected == {
        3: ("malformed_json", ""),
        4: ("wrong_type", "outcome"),
        5: ("not_an_object", ""),
        7: ("malformed_json", ""),
    }
    assert report.rejected[0].ref == "line 3"
    stored = {e.payload["event_name"] for e in Event.objects.filter(source="smoke-test")}
    assert stored == {"smoke.start", "smoke.end"}


def test_reingesting_the_file_answers_duplicates(platform_config):
    """The same file again: every good line is a duplicate (derived ids), nothing stored twice."""
    content = lines(audit_event(), audit_event())
    assert ingest(content).totals()["accepted"] == 2
    assert ingest(content).totals()["duplicate"] == 2
    assert Event.objects.filter(source="smoke-test").count() == 2


def test_lines_are_redacted_like_any_event(platform_config):
    """Redaction applies: a raw user id is hashed and an e-mail in attributes scrubbed."""
    event = audit_event(user_id="user_929583699", attributes={"note": "mail eli.898485@corp.test"})
    ingest(lines(event))
    stored = Event.objects.get(source="smoke-test")
    text = json.dumps(stored.payload)
    assert "user_929583699" not in text and "eli.898485@corp.test" not in text


def test_unknown_schema_is_refused_before_any_line(platform_config):
    """An unregistered --schema refuses the file as a whole."""
    with pytest.raises(ArtifactError) as refused:
        ingest(lines(audit_event()), schema="telemetry.nope.v1")
    assert refused.value.code == "unknown_schema"


def test_invalid_utf8_line_is_rejected_alone():
    """A line that is not UTF-8 is rejected by number; the next line still parses."""
    parsed = jsonl_parse(b'{"a": 1}\n\xff\xfe\n{"b": 2}\n', schema=AUDIT_SCHEMA)
    assert [(r.line, r.code) for r in parsed.rejections] == [(2, "invalid_encoding")]
    assert [item.line for item in parsed.items] == [1, 3]


def test_line_with_a_nul_character_is_rejected_alone(platform_config):
    """U+0000 cannot be stored: that line is rejected by number, the others land."""
    report = ingest(lines(audit_event(event_name="a\u0000b"), audit_event()))
    assert [(r.line, r.code) for r in report.rejected] == [(1, "invalid_value")]
    assert report.totals()["accepted"] == 1

"""Tamper evidence: edits, deletions and reorderings in SQL are all reported; purges are not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from audit.models import AuditChainHead
from ingest import pipeline
from ingest.services import events_purge_expired
from tests.factories import AUDIT_SCHEMA, iso

pytestmark = pytest.mark.django_db
DAY = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def store(count: int, *, when: datetime = DAY, source: str = "control-service") -> None:
    items = [
        pipeline.RawItem(
            AUDIT_SCHEMA,
            {
                "event_name": f"auth.step.{n}",
                "outcome": "success",
                "occurred_at": iso(when + timedelta(minutes=n)),
                "user_id": f"user_{n}",
            },
        )
        for n in range(count)
    ]
    context = pipeline.IngestContext(source=source, received_at=when + timedelta(hours=2))
    assert pipeline.ingest_batch(items, context).totals()["accepted"] == count


def verify(capsys) -> tuple[int, str]:
    try:
        call_command("verify_audit_chain")
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().out


def sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


def test_events_are_chained_in_order(platform_config, capsys):
    """Each audit event gets the next link of its (source, day) chain; the head follows."""
    store(5)
    store(2, source="billing")
    head = AuditChainHead.objects.get(source="control-service", day=DAY.date())
    assert head.last_seq == 5
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT chain_seq, chain_prev, chain_link FROM ingest_event "
            "WHERE source = 'control-service' ORDER BY chain_seq"
        )
        rows = cursor.fetchall()
    assert [row[0] for row in rows] == [1, 2, 3, 4, 5]
    assert rows[0][1] == "genesis"
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, 5))
    assert head.last_link == rows[-1][2]
    code, out = verify(capsys)
    assert code == 0 and "Audit chains intact" in out


def test_duplicates_take_no_link(platform_config):
    """A retransmitted audit event is a duplicate and does not extend the chain."""
    store(3)
    item = pipeline.RawItem(
        AUDIT_SCHEMA,
        {
            "event_name": "auth.step.0",
            "outcome": "success",
            "occurred_at": iso(DAY),
            "user_id": "user_0",
        },
    )
    result = pipeline.ingest_batch(
        [item], pipeline.IngestContext(source="control-service", received_at=DAY)
    )
    assert result.results[0].status == "duplicate"
    assert AuditChainHead.objects.get(source="control-service").last_seq == 3


def test_an_edited_row_is_reported(platform_config, capsys):
    """Changing a stored payload in SQL breaks that link."""
    store(4)
    sql(
        "UPDATE ingest_event SET payload = jsonb_set(payload, '{outcome}', '\"failure\"') "
        "WHERE chain_seq = 2 AND source = 'control-service'"
    )
    code, out = verify(capsys)
    assert code == 1
    assert "at link 2: altered" in out


def test_a_deleted_row_is_reported(platform_config, capsys):
    """Deleting a row leaves a gap: reported as missing."""
    store(4)
    sql("DELETE FROM ingest_event WHERE chain_seq = 3 AND source = 'control-service'")
    code, out = verify(capsys)
    assert code == 1
    assert "missing (links 3..3 absent)" in out


def test_deleting_the_last_rows_is_reported(platform_config, capsys):
    """Cutting the end of a chain is caught by the head."""
    store(4)
    sql("DELETE FROM ingest_event WHERE chain_seq >= 3 AND source = 'control-service'")
    code, out = verify(capsys)
    assert code == 1
    assert "truncated" in out


def test_reordered_rows_are_reported(platform_config, capsys):
    """Swapping the positions of two rows is reported as reordered."""
    store(4)
    sql(
        "UPDATE ingest_event SET chain_seq = CASE chain_seq WHEN 2 THEN 3 ELSE 2 END "
        "WHERE chain_seq IN (2, 3) AND source = 'control-service'"
    )
    code, out = verify(capsys)
    assert code == 1
    assert "reordered" in out


def test_a_forged_link_needs_the_key(platform_config, capsys, settings):
    """Recomputing a link with another key is still caught."""
    from audit.chain import canonical_content, chain_link

    store(2)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT chain_prev, event_id, source, occurred_at, payload::text "
            "FROM ingest_event WHERE chain_seq = 2 AND source = 'control-service'"
        )
        prev, event_id, source, occurred_at, payload = cursor.fetchone()
    import json

    forged_payload = {**json.loads(payload), "outcome": "failure"}
    forged = chain_link(
        prev,
        canonical_content(
            event_id=event_id, source=source, occurred_at=occurred_at, payload=forged_payload
        ),
        key_id="k1",
        key="attacker-guess",
    )
    sql(
        "UPDATE ingest_event SET payload = %s::jsonb, chain_link = %s WHERE chain_seq = 2 "
        "AND source = 'control-service'",
        [json.dumps(forged_payload), forged],
    )
    code, out = verify(capsys)
    assert code == 1 and "altered" in out


def test_purged_days_still_verify(platform_config, capsys):
    """After retention drops or deletes a day's chain, verification of the rest still holds."""
    old = datetime.now(UTC) - timedelta(days=450)
    store(3, when=old)
    store(2, when=datetime.now(UTC) - timedelta(days=1))
    events_purge_expired(event_class="audit_event")
    head = AuditChainHead.objects.get(day=old.date())
    assert head.purged_at is not None and head.last_seq == 3
    code, out = verify(capsys)
    assert code == 0, out
    assert "1 partly or wholly purged" in out

"""Tamper evidence: edits, deletions and reorderings in SQL are all reported; purges are not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from ingest import pipeline
from ingest.models import AuditChainHead
from ingest.pipeline import store as store_module
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


def fetch(statement: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        return cursor.fetchall()


def _rows_read(plan: dict) -> int:
    """Rows the table and index scans of a plan (EXPLAIN ANALYZE, JSON) produced or
    filtered away (the probe's own unnest is not counted)."""
    own = 0
    if "Relation Name" in plan:
        own = (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * plan.get(
            "Actual Loops", 1
        )
    return own + sum(_rows_read(child) for child in plan.get("Plans", []))


@pytest.mark.parametrize("stale_statistics", [True, False])
def test_the_duplicate_probe_reads_only_the_probed_keys(platform_config, stale_statistics):
    """Deduplicating a batch against its chain's day probes each event by its unique key, so
    the work does not grow with the day's rows: with statistics taken while the day was
    young, an `event_id = ANY(...)` probe scanned every row of the source's day."""
    store(1)
    ((revision,),) = fetch(
        "SELECT schema_revision_id FROM ingest_event WHERE source = 'control-service'"
    )
    if stale_statistics:
        sql("ANALYZE ingest_event")  # taken now, while the day holds one row
    sql(
        "INSERT INTO ingest_event (event_class, schema_revision_id, source, event_id, "
        "occurred_at, received_at, request_id, trace_id, actor_hash, ingest_request_id, "
        "payload, redactions) SELECT 'audit_event', %s, 'control-service', 'old-' || g, "
        "%s::timestamptz + g * interval '1 second', %s, '', '', '', 'r', '{}', '[]' "
        "FROM generate_series(1, 20000) g",
        [revision, DAY, DAY],
    )
    if not stale_statistics:
        sql("ANALYZE ingest_event")
    day = DAY.replace(hour=0)
    probed = [f"new-{n}" for n in range(200)] + ["old-7"]
    moments = [DAY + timedelta(seconds=n) for n in range(200)] + [DAY + timedelta(seconds=7)]

    ((plan,),) = fetch(
        "EXPLAIN (ANALYZE, FORMAT JSON) " + store_module.DUPLICATE_PROBE_SQL,
        [probed, moments, "control-service", day, day + timedelta(days=1)],
    )
    found = fetch(store_module.DUPLICATE_PROBE_SQL,
                  [probed, moments, "control-service", day, day + timedelta(days=1)])

    assert [(row[0], row[1]) for row in found] == [("old-7", DAY + timedelta(seconds=7))]
    assert _rows_read(plan[0]["Plan"]) <= len(probed)  # at most a row per probe


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
    from ingest.chain import canonical_content, chain_link

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


def test_deleting_the_last_row_and_stepping_the_head_back_is_reported(platform_config, capsys):
    """Removing the last row and decrementing the head's last_seq breaks the head."""
    store(4)
    sql("DELETE FROM ingest_event WHERE chain_seq = 4 AND source = 'control-service'")
    sql("UPDATE audit_auditchainhead SET last_seq = 3 WHERE source = 'control-service'")
    code, out = verify(capsys)
    assert code == 1, out
    assert "head_mismatch" in out


def test_marking_a_chain_purged_does_not_excuse_a_deleted_row(platform_config, capsys):
    """Setting purged_at on a head by hand, then deleting a middle row, is still reported."""
    store(4)
    sql("UPDATE audit_auditchainhead SET purged_at = now() WHERE source = 'control-service'")
    sql("DELETE FROM ingest_event WHERE chain_seq = 2 AND source = 'control-service'")
    code, out = verify(capsys)
    assert code == 1, out
    assert "head_altered" in out


def test_a_row_deleted_after_a_partial_purge_is_reported(platform_config, capsys):
    """A purge that kept held rows of a chain excuses its own gaps, not a later deletion."""
    from django.contrib.auth import get_user_model

    from governance.services import legal_hold_create

    owner = get_user_model().objects.create_user("counsel", password="pw-123456!")
    old = datetime.now(UTC) - timedelta(days=450)
    store(4, when=old)  # users user_0..user_3 at links 1..4
    for user in ("user_1", "user_3"):
        legal_hold_create(reason="case 7", owner=owner, actor_identifier=user)
    events_purge_expired(event_class="audit_event")
    head = AuditChainHead.objects.get(day=old.date())
    assert head.purged_at is not None and head.rows_purged == 2
    code, out = verify(capsys)
    assert code == 0, out
    sql("DELETE FROM ingest_event WHERE chain_seq = 2 AND source = 'control-service'")
    code, out = verify(capsys)
    assert code == 1, out
    assert "missing (3 links absent, the purge removed 2)" in out


@pytest.mark.parametrize("column", ["actor_hash", "request_id", "trace_id"])
def test_an_edited_search_column_is_reported(platform_config, capsys, column):
    """The columns audit search filters on are covered by the link: editing one is caught."""
    store(3)
    sql(
        f"UPDATE ingest_event SET {column} = 'forged' "  # noqa: S608 (a fixed column name)
        "WHERE chain_seq = 2 AND source = 'control-service'"
    )
    code, out = verify(capsys)
    assert code == 1, out
    assert "at link 2: altered" in out


def test_a_chain_deleted_with_its_head_is_caught_by_the_digest_files(
    platform_config, capsys, tmp_path
):
    """Deleting a closed day's chain together with its head is caught against the digest file."""
    store(3)
    store(2, source="billing")
    call_command("export_audit_digests", "--dir", str(tmp_path))
    assert (tmp_path / f"audit-digest-{DAY.date()}.json").exists()
    sql("DELETE FROM ingest_event WHERE source = 'billing'")
    sql("DELETE FROM audit_auditchainhead WHERE source = 'billing'")
    code, out = verify(capsys)
    assert code == 0, out  # the database alone no longer knows the chain existed
    try:
        call_command("verify_audit_chain", "--digests", str(tmp_path))
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"billing {DAY.date()}: deleted_chain" in out


def test_rows_linked_before_the_upgrade_still_verify(platform_config, capsys):
    """Rows linked under the first content version (bare ``k1:`` links) verify as they are."""
    import json

    from ingest.chain import GENESIS, canonical_content, chain_link
    from telemetry_platform.conf import telemetry_settings

    store(3)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, event_id, source, occurred_at, payload::text FROM ingest_event "
            "WHERE source = 'control-service' ORDER BY chain_seq"
        )
        rows = cursor.fetchall()
    previous = GENESIS
    for row_id, event_id, source, occurred_at, payload in rows:
        content = canonical_content(
            event_id=event_id, source=source, occurred_at=occurred_at, payload=json.loads(payload)
        )
        link = chain_link(previous, content, key_id="k1", key=telemetry_settings.HASH_KEYS["k1"])
        sql(
            "UPDATE ingest_event SET chain_prev = %s, chain_link = %s WHERE id = %s",
            [previous, link, row_id],
        )
        previous = link
    head = AuditChainHead.objects.get(source="control-service")
    head.last_link = previous
    head.seal(key_id="d1", key=telemetry_settings.AUDIT_DIGEST_KEYS["d1"])
    head.save()
    assert not previous.startswith("v2.")
    code, out = verify(capsys)
    assert code == 0, out
    sql(
        "UPDATE ingest_event SET payload = jsonb_set(payload, '{outcome}', '\"failure\"') "
        "WHERE chain_seq = 2 AND source = 'control-service'"
    )
    code, out = verify(capsys)
    assert code == 1 and "at link 2: altered" in out


def test_a_head_sealed_under_another_key_is_reported(platform_config, capsys):
    """Without the digest key, a head cannot be re-sealed: one sealed under a guess is caught."""
    store(2)
    head = AuditChainHead.objects.get(source="control-service")
    head.last_seq = 1
    head.seal(key_id="d1", key="attacker-guess")
    head.save()
    code, out = verify(capsys)
    assert code == 1 and "head_altered" in out


def test_rows_a_shorter_schema_override_purged_still_verify(platform_config, capsys):
    """An override shorter than the class retention purges rows after the class cutoff:
    the purge records them on their heads too, so the chain still verifies."""
    from governance.models import EventClass, Schema
    from governance.services import retention_override_set

    EventClass.objects.filter(name="audit_event").update(retention_days=400)
    retention_override_set(
        schema=Schema.objects.get(name=AUDIT_SCHEMA), retention_days=90, reason="x", actor=None
    )
    old = datetime.now(UTC) - timedelta(days=200)
    store(3, when=old)
    events_purge_expired(event_class="audit_event")
    head = AuditChainHead.objects.get(day=old.date())
    assert head.rows_purged == 3
    code, out = verify(capsys)
    assert code == 0, out


def test_since_limits_verification_to_later_days(platform_config, capsys):
    """--since skips the chains of earlier days (and still checks the later ones)."""
    store(3)
    store(2, when=DAY + timedelta(days=2))
    sql("DELETE FROM ingest_event WHERE chain_seq = 2 AND occurred_at < %s", [DAY + timedelta(days=1)])
    try:
        call_command("verify_audit_chain", "--since", str((DAY + timedelta(days=1)).date()))
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr().out
    assert code == 0 and "2 chains" in out, out
    code, out = verify(capsys)
    assert code == 1 and "missing" in out

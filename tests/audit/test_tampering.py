"""The tampering matrix: thirteen kinds of SQL tampering with the audit log, each detected."""

# ruff: noqa: S608 (the statements are built from constants: they are the tampering itself)

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from ingest import pipeline
from tests.factories import AUDIT_SCHEMA, iso

pytestmark = pytest.mark.django_db
DAY = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # a closed day: its digest file is exported
CHAIN = "source = 'control-service' AND event_class = 'audit_event'"
HEAD = "UPDATE audit_auditchainhead SET {} WHERE source = 'control-service'"
FORGED_LINK = "'v2.k1:' || repeat('0', 64)"

# name -> (SQL statements, a kind of problem the verification must report, whether the
# database alone (without the digest files) is enough to see it)
TAMPERING: dict[str, tuple[list[str], str, bool]] = {
    "edit payload": (
        [
            "UPDATE ingest_event SET payload = jsonb_set(payload, '{outcome}', '\"failure\"') "
            f"WHERE {CHAIN} AND chain_seq = 2"
        ],
        "at link 2: altered",
        True,
    ),
    "edit event_id": (
        [f"UPDATE ingest_event SET event_id = 'forged' WHERE {CHAIN} AND chain_seq = 2"],
        "at link 2: altered",
        True,
    ),
    "edit occurred_at": (
        [
            "UPDATE ingest_event SET occurred_at = occurred_at + interval '1 second' "
            f"WHERE {CHAIN} AND chain_seq = 2"
        ],
        "at link 2: altered",
        True,
    ),
    "edit actor_hash": (
        [f"UPDATE ingest_event SET actor_hash = 'h1:forged' WHERE {CHAIN} AND chain_seq = 2"],
        "at link 2: altered",
        True,
    ),
    "edit request_id": (
        [f"UPDATE ingest_event SET request_id = 'req_forged' WHERE {CHAIN} AND chain_seq = 2"],
        "at link 2: altered",
        True,
    ),
    "delete a middle row": (
        [f"DELETE FROM ingest_event WHERE {CHAIN} AND chain_seq = 2"],
        "missing (links 2..2 absent)",
        True,
    ),
    "delete the last row": (
        [f"DELETE FROM ingest_event WHERE {CHAIN} AND chain_seq = 4"],
        "truncated",
        True,
    ),
    "delete the last row and decrement the head": (
        [
            f"DELETE FROM ingest_event WHERE {CHAIN} AND chain_seq = 4",
            HEAD.format("last_seq = 3"),
        ],
        "head_altered",
        True,
    ),
    "swap two rows' seq": (
        [
            "UPDATE ingest_event SET chain_seq = CASE chain_seq WHEN 2 THEN 3 ELSE 2 END "
            f"WHERE {CHAIN} AND chain_seq IN (2, 3)"
        ],
        "reordered",
        True,
    ),
    "insert a forged row": (
        [
            "INSERT INTO ingest_event (event_class, schema_revision_id, source, event_id, "
            "occurred_at, received_at, request_id, trace_id, actor_hash, ingest_request_id, "
            "payload, redactions, chain_seq, chain_prev, chain_link) "
            "SELECT event_class, schema_revision_id, source, 'forged-' || event_id, "
            "occurred_at, received_at, request_id, trace_id, actor_hash, ingest_request_id, "
            f"payload, redactions, chain_seq + 1, chain_link, {FORGED_LINK} "
            f"FROM ingest_event WHERE {CHAIN} AND chain_seq = 4"
        ],
        "at link 5: altered",
        True,
    ),
    "forge the head's last_link": (
        [HEAD.format(f"last_link = {FORGED_LINK}")],
        "head_altered",
        True,
    ),
    "set purged_at, then delete a middle row": (
        [
            HEAD.format("purged_at = now()"),
            f"DELETE FROM ingest_event WHERE {CHAIN} AND chain_seq = 2",
        ],
        "head_altered",
        True,
    ),
    "delete a whole chain with its head": (
        [
            f"DELETE FROM ingest_event WHERE {CHAIN}",
            "DELETE FROM audit_auditchainhead WHERE source = 'control-service'",
        ],
        f"control-service {DAY.date()}: deleted_chain",
        False,
    ),
}


def store(count: int, *, source: str) -> None:
    items = [
        pipeline.RawItem(
            AUDIT_SCHEMA,
            {
                "event_name": f"auth.step.{n}",
                "outcome": "success",
                "occurred_at": iso(DAY + timedelta(minutes=n)),
                "user_id": f"user_{n}",
                "request_id": f"req_{n}",
            },
        )
        for n in range(count)
    ]
    context = pipeline.IngestContext(source=source, received_at=DAY + timedelta(hours=2))
    assert pipeline.ingest_batch(items, context).totals()["accepted"] == count


def verify(capsys, *args: str) -> tuple[int, str]:
    try:
        call_command("verify_audit_chain", *args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().out


@pytest.fixture
def exported(platform_config, tmp_path, capsys):
    """Two chains of a closed day (4 and 2 links), its digest file exported to tmp_path."""
    store(4, source="control-service")
    store(2, source="billing")
    call_command("export_audit_digests", "--dir", str(tmp_path))
    assert (tmp_path / f"audit-digest-{DAY.date()}.json").exists()
    capsys.readouterr()
    return tmp_path


def test_the_untouched_log_verifies_clean(exported, capsys):
    """Control: with nothing tampered, the database and the digest files verify clean."""
    code, out = verify(capsys)
    assert code == 0, out
    code, out = verify(capsys, "--digests", str(exported))
    assert code == 0, out
    assert "Audit chains intact" in out and "digest file(s)" in out


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_tampering_is_detected(exported, capsys, kind):
    """Each kind of SQL tampering is reported (exit 1); all but deleting a chain with its
    head are visible in the database alone, that one against the digest files."""
    statements, reported, database_alone = TAMPERING[kind]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
            assert cursor.rowcount >= 1, statement
    code, out = verify(capsys, "--digests", str(exported))
    assert code == 1, out
    assert reported in out
    code, out = verify(capsys)
    assert (code == 1) is database_alone, out


def test_the_matrix_has_thirteen_kinds():
    """The matrix covers the thirteen kinds of the security review."""
    assert len(TAMPERING) == 13


def test_an_edited_digest_file_is_reported(exported, capsys):
    """A digest file edited by hand (a chain taken out of it) no longer matches its HMAC."""
    import json

    path = exported / f"audit-digest-{DAY.date()}.json"
    document = json.loads(path.read_text())
    document["chains"] = [c for c in document["chains"] if c["source"] != "billing"]
    path.write_text(json.dumps(document, indent=2, sort_keys=True))
    code, out = verify(capsys, "--digests", str(exported))
    assert code == 1, out
    assert "signature does not match" in out


def test_a_deleted_digest_file_is_reported(exported, capsys):
    """Removing one day's file breaks the chain of files: the next one names it."""
    (exported / f"audit-digest-{(DAY + timedelta(days=1)).date()}.json").unlink()
    code, out = verify(capsys, "--digests", str(exported))
    assert code == 1, out
    assert "does not follow the file before it" in out


def test_a_chain_missing_from_its_days_file_is_reported(exported, capsys):
    """A chain that appears for an exported day after the export is reported, not trusted."""
    store(1, source="late-sender")
    code, out = verify(capsys, "--digests", str(exported))
    assert code == 1, out
    assert f"late-sender {DAY.date()}: not_in_digest" in out


def test_late_events_of_an_exported_chain_still_verify(exported, capsys):
    """A chain that grew after its day was exported keeps the exported link where it was."""
    item = pipeline.RawItem(
        AUDIT_SCHEMA,
        {"event_name": "late", "outcome": "success", "occurred_at": iso(DAY + timedelta(hours=3))},
    )
    context = pipeline.IngestContext(source="control-service", received_at=DAY + timedelta(days=3))
    assert pipeline.ingest_batch([item], context).totals()["accepted"] == 1
    code, out = verify(capsys, "--digests", str(exported))
    assert code == 0, out


def test_export_writes_each_closed_day_once_and_chains_the_files(exported):
    """A second export writes nothing; the next closed day's file names the last one's hash."""
    import hashlib
    import json

    from audit.digests import audit_digests_export

    assert audit_digests_export(directory=exported) == []
    last = sorted(exported.glob("audit-digest-*.json"))[-1]
    last_day = datetime.fromisoformat(last.stem.removeprefix("audit-digest-")).date()
    before = last.read_bytes()
    later = datetime.combine(last_day + timedelta(days=2), datetime.min.time(), tzinfo=UTC)
    written = audit_digests_export(directory=exported, now=later + timedelta(hours=1))
    assert [path.name for path in written] == [f"audit-digest-{last_day + timedelta(days=1)}.json"]
    assert last.read_bytes() == before
    document = json.loads(written[0].read_text())
    assert document["previous"] == {
        "day": last_day.isoformat(),
        "sha256": hashlib.sha256(before).hexdigest(),
    }
    assert not list(exported.glob(".*.tmp"))


def test_the_beat_task_exports_to_the_configured_directory(platform_config, settings, tmp_path):
    """The beat task writes to TELEMETRY_AUDIT_DIGEST_DIR, and does nothing when it is empty."""
    from audit.tasks import export_audit_digests
    from telemetry_platform.beat import BEAT_SCHEDULE

    assert BEAT_SCHEDULE["export audit digests"][0] == export_audit_digests.name
    store(1, source="control-service")
    settings.TELEMETRY_AUDIT_DIGEST_DIR = ""
    assert export_audit_digests() == []
    settings.TELEMETRY_AUDIT_DIGEST_DIR = str(tmp_path / "digests")
    names = export_audit_digests()
    assert names[0] == f"audit-digest-{DAY.date()}.json"
    assert sorted(path.name for path in (tmp_path / "digests").iterdir()) == sorted(names)

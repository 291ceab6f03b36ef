"""Batch tallies: the store raises hourly counters per sender, schema, code, field path and
claimed app version in the batch's transaction, and never keeps an event's values."""

from __future__ import annotations

import pytest

from governance.selectors import schema_plans
from ingest import pipeline
from ingest.models import Event, IngestTally
from ingest.pipeline.tally import app_version_of, field_path_key, hour_of
from tests.factories import (
    CLIENT_TELEMETRY_SCHEMA,
    client_telemetry_events,
    client_telemetry_schema_register,
)


class _Plan:
    roles = {"app_version": "app_version"}


def test_a_version_is_kept_only_when_it_looks_like_one():
    """The claimed app version of a rejected body is read by its role; free text, an
    e-mail or a long string is not a version and is not kept."""
    assert app_version_of(_Plan(), {"app_version": "1.2.0"}) == "1.2.0"
    assert app_version_of(_Plan(), {"appVersion": "1.2.0-rc.1"}) == "1.2.0-rc.1"
    assert app_version_of(_Plan(), {"app_version": "ann@example.com"}) == ""
    assert app_version_of(_Plan(), {"app_version": "1." * 30}) == ""
    assert app_version_of(_Plan(), {"app_version": 12}) == ""
    assert app_version_of(_Plan(), ["not", "a", "dict"]) == ""
    assert app_version_of(None, {"app_version": "1.2.0"}) == ""


def test_list_indices_are_folded_in_field_paths():
    """items[3].name and items[7].name are one counter, and paths are bounded."""
    assert field_path_key("items[3].name") == "items[].name"
    assert field_path_key("a[10][2]") == "a[][]"
    assert len(field_path_key("x" * 500)) == 200


def _rows() -> dict[tuple, int]:
    return {
        (row.status, row.schema_name, row.code, row.field_path, row.app_version): row.count
        for row in IngestTally.objects.filter(source="web-shell")
    }


@pytest.mark.django_db
def test_a_batch_is_tallied_per_outcome_code_and_field_in_its_hour(platform_config):
    """Three valid events (one sent twice in the batch), two with a wrong type in
    reconnect.attempt and one of an unknown schema: accepted 3, duplicate 1, and the
    rejections by code, field path and claimed version. Sending it again adds to the same
    rows: all four prepared events are now duplicates."""
    client_telemetry_schema_register()
    schema_plans.refresh(force=True)
    good = client_telemetry_events(3)
    reconnects = client_telemetry_events(5)[::4]  # the reconnect members
    bad = [dict(event, reconnect={"attempt": "many"}) for event in reconnects]
    bad[0]["app_version"] = "1.2.0"
    bad[1]["app_version"] = "jane@example.com"
    items = [pipeline.RawItem(CLIENT_TELEMETRY_SCHEMA, body) for body in [*good, good[0], *bad]]
    items.append(pipeline.RawItem("no.such.schema", {"x": 1}))
    context = pipeline.IngestContext(source="web-shell")

    result = pipeline.ingest_batch(items, context)

    assert result.totals() == {"received": 7, "accepted": 3, "duplicate": 1, "rejected": 3}
    code = result.results[4].code
    field = result.results[4].field
    assert field == "reconnect.attempt"
    expected = {
        ("accepted", CLIENT_TELEMETRY_SCHEMA, "", "", ""): 3,
        ("duplicate", CLIENT_TELEMETRY_SCHEMA, "", "", ""): 1,
        ("rejected", CLIENT_TELEMETRY_SCHEMA, code, field, "1.2.0"): 1,
        ("rejected", CLIENT_TELEMETRY_SCHEMA, code, field, ""): 1,
        ("rejected", "unknown", "unknown_schema", "schema", ""): 1,
    }
    assert _rows() == expected
    hours = set(IngestTally.objects.values_list("hour", flat=True))
    assert hours == {hour_of(context.received_at)}

    pipeline.ingest_batch(items, pipeline.IngestContext(source="web-shell"))

    again = _rows()
    assert again[("accepted", CLIENT_TELEMETRY_SCHEMA, "", "", "")] == 3
    assert again[("duplicate", CLIENT_TELEMETRY_SCHEMA, "", "", "")] == 1 + 4
    assert again[("rejected", CLIENT_TELEMETRY_SCHEMA, code, field, "1.2.0")] == 2
    # No value of any event is kept: only names, codes and counts.
    stored = " ".join(str(row.__dict__) for row in IngestTally.objects.all())
    assert "jane@example.com" not in stored and "many" not in stored


@pytest.mark.django_db
def test_a_batch_the_store_refuses_is_not_tallied(platform_config, monkeypatch):
    """Tally and events commit together: when raising the counters fails, the batch's
    events are not stored either, and the client is told to retry."""
    from django.db import OperationalError

    client_telemetry_schema_register()
    schema_plans.refresh(force=True)

    def broken(*args, **kwargs):
        raise OperationalError("down")

    monkeypatch.setattr(pipeline.store, "tally_upsert", broken)
    items = [pipeline.RawItem(CLIENT_TELEMETRY_SCHEMA, body) for body in client_telemetry_events(2)]
    with pytest.raises(pipeline.RetryableError):
        pipeline.ingest_batch(items, pipeline.IngestContext(source="web-shell"))
    assert not IngestTally.objects.exists()
    assert not Event.objects.filter(source="web-shell").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_of_one_counter_do_not_wait_on_each_other(platform_config):
    """Two transactions raising the same sender's counter on different shards: the second
    commits while the first still holds its row lock (one shared row made every
    single-event request of a sender wait for the previous one's commit), and the
    readers sum the shards."""
    import threading
    from datetime import UTC, datetime

    from django.db import connection, transaction

    from ingest.pipeline.store import TALLY_SHARDS, _tally_shard, tally_upsert
    from ingest.pipeline.tally import TallyRow
    from ingest.violations import ingest_totals

    hour = hour_of(datetime.now(UTC))
    row = TallyRow(hour, "web-shell", "client_diagnostic", "s.v1", "accepted", "", "", "", 2)
    holding, release, failures = threading.Event(), threading.Event(), []

    def first_writer() -> None:
        try:
            with transaction.atomic():
                tally_upsert([row], shard=0)
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    writer = threading.Thread(target=first_writer)
    writer.start()
    assert holding.wait(10)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '500ms'")
            tally_upsert([row], shard=1)  # would time out on one shared row
    except Exception as exc:  # reported once the first writer is released
        failures.append(exc)
    finally:
        release.set()
        writer.join(10)
    assert not failures
    assert IngestTally.objects.filter(source="web-shell").count() == 2
    (totals,) = ingest_totals()
    assert (totals.source, totals.accepted) == ("web-shell", 4)
    assert 0 <= _tally_shard() < TALLY_SHARDS and _tally_shard() == _tally_shard()

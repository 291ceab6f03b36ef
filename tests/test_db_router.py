"""The database router and pooling settings, without a replica (tests/cluster has one)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from telemetry_platform import db_router
from telemetry_platform.locks import session_alias
from telemetry_platform.parameters import ParameterError, read_all

AS_OF = datetime(2026, 12, 3, 12, 0, 1, tzinfo=UTC)


def test_transaction_pooling_needs_a_session_connection():
    """DATABASE_POOL_MODE=transaction without DATABASE_SESSION_URL is refused at start-up."""
    with pytest.raises(ParameterError, match="DATABASE_SESSION_URL"):
        read_all({"DATABASE_POOL_MODE": "transaction"})
    values = read_all(
        {"DATABASE_POOL_MODE": "transaction", "DATABASE_SESSION_URL": "postgres://h/db"}
    )
    assert values["DATABASE_POOL_MODE"] == "transaction"
    with pytest.raises(ParameterError, match="DATABASE_POOL_MODE"):
        read_all({"DATABASE_POOL_MODE": "statement"})


def test_freshness_says_where_and_how_old():
    """The header and the page line name the source, the lag and a fallback's reason."""
    replica = db_router.ReadSource("replica", AS_OF, lag_seconds=0.42)
    assert replica.header() == "replica; lag=0.4; as-of=2026-12-03T12:00:01Z"
    assert replica.describe() == "data as of 2026-12-03 12:00:01 UTC (replica, lag 0.4 s)"
    fallback = db_router.ReadSource("default", AS_OF, reason="lagging")
    assert fallback.header() == "primary; as-of=2026-12-03T12:00:01Z; fallback=lagging"
    assert fallback.describe() == "data as of 2026-12-03 12:00:01 UTC (primary: the replica is lagging)"


def test_without_a_replica_reads_stay_on_the_primary_and_writes_always_do():
    """No DATABASE_REPLICA_URL: a replica block reads the primary; the router never writes
    elsewhere and migrates only the primary; session locks use the default connection."""
    router = db_router.ReplicaRouter()
    assert router.db_for_read(object) is None
    with db_router.replica_reads() as source:
        assert source.alias == "default" and not source.on_replica
        assert router.db_for_read(object) == "default"
        assert router.db_for_write(object) == "default"
    assert router.db_for_read(object) is None
    assert router.allow_migrate("default", "ingest") and not router.allow_migrate("replica", "x")
    assert session_alias() == "default"


def test_primary_reads_inside_a_replica_block_go_to_the_primary(monkeypatch):
    """Within a block that chose the replica, ``primary_reads()`` sends its reads to the
    primary (the holds a dry run respects), and the block's choice returns after it."""
    monkeypatch.setattr(
        db_router, "read_source", lambda: db_router.ReadSource("replica", AS_OF, lag_seconds=0.1)
    )
    router = db_router.ReplicaRouter()
    with db_router.replica_reads() as source:
        assert source.on_replica and router.db_for_read(object) == "replica"
        with db_router.primary_reads():
            assert router.db_for_read(object) is None
            assert db_router.read_connection().alias == "default"
        assert router.db_for_read(object) == "replica"
    assert router.db_for_read(object) is None


@pytest.mark.django_db
def test_an_audit_search_answer_says_how_fresh_it_is(client):
    """The API's audit search carries X-Data-Freshness (the primary here: no replica)."""
    from tests.factories import user_with_role

    client.force_login(user_with_role("analyst", "security analyst"))
    response = client.get("/api/v1/audit-events")
    assert response.status_code == 200
    assert response["X-Data-Freshness"].startswith("primary; as-of=")


@pytest.mark.django_db(transaction=True)
def test_under_transaction_pooling_the_staging_table_lives_in_its_transaction(settings):
    """DATABASE_POOL_MODE=transaction: a staged batch (and a second one on the same
    connection) is stored, and no staging table is left on the session afterwards."""
    from django.db import connection

    from governance.services import default_configuration_load
    from ingest import pipeline
    from tests.factories import AUDIT_SCHEMA, audit_event

    default_configuration_load()
    settings.DATABASE_POOL_MODE = "transaction"
    for _ in range(2):
        items = [pipeline.RawItem(AUDIT_SCHEMA, audit_event()) for _ in range(20)]
        result = pipeline.ingest_batch(items, pipeline.IngestContext(source="control-service"))
        assert [item.status for item in result.results] == ["accepted"] * 20
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('pg_temp.ingest_event_stage')")
            assert cursor.fetchone()[0] is None

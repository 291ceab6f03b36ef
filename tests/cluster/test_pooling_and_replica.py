"""Through PgBouncer in transaction mode and a streaming replica: ingest, purge, audit search,
and the fallback to the primary when the replica lags or is down."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import pytest
from google.protobuf import json_format

from governance.platform_protos import event_batch_class
from governance.protoc import PLATFORM_PROTO_ROOT, compile_protos_serialized
from governance.schemas import load_schema
from tests.cluster.conftest import CHECK_SECONDS, MAX_LAG_SECONDS, PG_BIN, Cluster

AUDIT_SCHEMA = "telemetry.audit_event.v1"
DIAGNOSTIC_SCHEMA = "telemetry.client_diagnostic.v1"
STAGED_BATCH = 20  # more than VALUES_MAX_ROWS: the COPY staging path


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _audit(name: str, **fields: str) -> dict:
    return {
        "event_name": name,
        "outcome": "success",
        "request_id": f"req_{uuid.uuid4().hex}",
        "occurred_at": _iso(datetime.now(UTC) - timedelta(minutes=1)),
        "session_id": f"sess_{uuid.uuid4().hex[:8]}",
        **fields,
    }


def _diagnostic(event_id: str) -> dict:
    return {
        "envelope": {"event_id": event_id, "occurred_at": _iso(datetime.now(UTC))},
        "name": "slow.render",
    }


@lru_cache(maxsize=1)
def _audit_message_class():
    path = "telemetry/v1/events.proto"
    serialized = compile_protos_serialized({path: (PLATFORM_PROTO_ROOT / path).read_text()})
    return load_schema(serialized, "telemetry.v1.AuditEvent").message_class


def _protobuf_batch(events: list[dict]) -> bytes:
    batch = event_batch_class()()
    for event in events:
        item = batch.events.add()
        item.schema = AUDIT_SCHEMA
        item.event = json_format.ParseDict(event, _audit_message_class()()).SerializeToString()
    return batch.SerializeToString()


def _request(
    cluster: Cluster, path: str, *, body: bytes | None = None, content_type: str = "",
    auth: str = "",
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": auth} if auth else {}
    if content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(
        f"http://127.0.0.1:{cluster.web_port}{path}", data=body, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _ingest_json(cluster: Cluster, events: list[dict], schema: str = AUDIT_SCHEMA) -> dict:
    body = json.dumps({"events": [{"schema": schema, "event": event} for event in events]})
    status, _, answer = _request(
        cluster, "/api/v1/events", body=body.encode(), content_type="application/json",
        auth=f"Bearer {cluster.secrets['ingest']}",
    )
    assert status == 200, answer[:500]
    return json.loads(answer)


def _search(cluster: Cluster, query: str) -> tuple[dict[str, str], dict]:
    status, headers, body = _request(
        cluster, f"/api/v1/audit-events?{query}", auth=f"Token {cluster.secrets['token']}"
    )
    assert status == 200, body[:500]
    return headers, json.loads(body)


def _names(found: dict) -> set[str]:
    return {row["payload"]["event_name"] for row in found["results"]}


def _bouncer_stat(cluster: Cluster, column: str) -> int:
    """A figure of PgBouncer's SHOW STATS for the platform's database (admin console)."""
    output = subprocess.run(
        [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(cluster.bouncer_port), "-U", "root",
         "-d", "pgbouncer", "-AF", "\t", "-c", "SHOW STATS"],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout.splitlines()
    names = output[0].split("\t")
    for line in output[1:]:
        values = dict(zip(names, line.split("\t"), strict=False))
        if values.get("database") == "tgp_cluster":
            return int(values[column])
    raise AssertionError(f"no stats for tgp_cluster in {output}")


def test_ingest_through_pgbouncer_transaction_pooling_json_and_protobuf(cluster):
    """Staged (COPY) JSON and protobuf batches from 8 client connections over 4 server
    sessions are all stored: no batch relies on a staging table of another transaction."""
    transactions_before = _bouncer_stat(cluster, "total_xact_count")
    tag = uuid.uuid4().hex[:8]

    def json_batch(number: int) -> dict:
        return _ingest_json(
            cluster, [_audit(f"pool.json.{tag}", user_id=f"u{number}-{i}") for i in range(20)]
        )

    def protobuf_batch(number: int) -> dict:
        body = _protobuf_batch(
            [_audit(f"pool.proto.{tag}", user_id=f"p{number}-{i}") for i in range(STAGED_BATCH)]
        )
        status, _, answer = _request(
            cluster, "/api/v1/events", body=body, content_type="application/x-protobuf",
            auth=f"Bearer {cluster.secrets['ingest']}",
        )
        assert status == 200, answer[:500]
        return json.loads(answer)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(json_batch, range(12))) + list(
            pool.map(protobuf_batch, range(12))
        )
    assert [answer["accepted"] for answer in answers] == [STAGED_BATCH] * 24
    stored = cluster.sql(
        cluster.primary_port,
        "SELECT payload->>'event_name', count(*) FROM ingest_event "
        "WHERE payload->>'event_name' LIKE %s GROUP BY 1 ORDER BY 1",
        (f"pool.%.{tag}",),
    )
    assert stored == [(f"pool.json.{tag}", 240), (f"pool.proto.{tag}", 240)]
    # Every batch went through PgBouncer (the platform knows no other way to the primary
    # for its writes), and the staging table never outlived its transaction.
    assert _bouncer_stat(cluster, "total_xact_count") - transactions_before >= 24
    assert cluster.sql(
        cluster.primary_port,
        "SELECT count(*) FROM pg_class WHERE relname = 'ingest_event_stage'",
    ) == [(0,)]


def test_a_purge_runs_through_pgbouncer_in_transaction_mode(cluster):
    """manage.py purge_expired in transaction mode removes an expired diagnostic and keeps
    the fresh one; its class lock is taken on the session connection."""
    fresh, expired = f"d-{uuid.uuid4().hex[:8]}", f"x-{uuid.uuid4().hex[:8]}"
    assert _ingest_json(cluster, [_diagnostic(fresh)], schema=DIAGNOSTIC_SCHEMA)["accepted"] == 1
    # An event from 40 days ago (the class keeps 30), as if it had been stored then.
    cluster.sql(
        cluster.primary_port,
        "INSERT INTO ingest_event (event_class, schema_revision_id, source, event_id, "
        "occurred_at, received_at, payload, redactions) "
        "SELECT event_class, schema_revision_id, source, %s, occurred_at - interval '40 days', "
        "received_at - interval '40 days', payload, redactions FROM ingest_event "
        "WHERE event_id = %s",
        (expired, fresh),
    )
    purged = cluster.manage("purge_expired", "--event-class", "client_diagnostic")
    assert purged.returncode == 0, purged.stderr[-3000:]
    assert "Purged" in purged.stdout
    left = cluster.sql(
        cluster.primary_port,
        "SELECT event_id FROM ingest_event WHERE event_id IN (%s, %s)", (fresh, expired),
    )
    assert left == [(fresh,)]
    # The lock was released on the session connection: no advisory lock is left behind.
    assert cluster.sql(
        cluster.primary_port, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
    ) == [(0,)]


def test_audit_search_is_served_by_the_replica(cluster):
    """Audit search reads on the replica (its pg_stat_statements count the query; the
    primary's do not) and says so in X-Data-Freshness."""
    tag = uuid.uuid4().hex[:8]
    _ingest_json(cluster, [_audit(f"replica.search.{tag}")])
    cluster.replica_caught_up()
    for port in (cluster.primary_port, cluster.replica_port):
        cluster.sql(port, "SELECT pg_stat_statements_reset()")
    time.sleep(CHECK_SECONDS * 2)

    headers, found = _search(cluster, f"event_name=replica.search.{tag}")

    assert _names(found) == {f"replica.search.{tag}"}
    assert headers["X-Data-Freshness"].startswith("replica; lag=")
    query = "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE %s"
    pattern = '%FROM "ingest_event"%'
    assert cluster.sql(cluster.replica_port, query, (pattern,))[0][0] >= 1
    assert cluster.sql(cluster.primary_port, query, (pattern,))[0][0] == 0


def test_a_lagging_replica_sends_audit_search_to_the_primary(cluster):
    """With replay paused and new writes on the primary, the replica's lag passes the bound:
    the search answers from the primary (the new event is found) and says why."""
    tag = uuid.uuid4().hex[:8]
    cluster.sql(cluster.replica_port, "SELECT pg_wal_replay_pause()")
    try:
        _ingest_json(cluster, [_audit(f"lagging.{tag}")])
        time.sleep(MAX_LAG_SECONDS + CHECK_SECONDS + 0.5)
        headers, found = _search(cluster, f"event_name=lagging.{tag}")
        assert _names(found) == {f"lagging.{tag}"}
        assert headers["X-Data-Freshness"].startswith("primary; as-of=")
        assert headers["X-Data-Freshness"].endswith("fallback=lagging")
        assert cluster.sql(cluster.replica_port, "SELECT count(*) FROM ingest_event "
                           "WHERE payload->>'event_name' = %s", (f"lagging.{tag}",)) == [(0,)]
    finally:
        cluster.sql(cluster.replica_port, "SELECT pg_wal_replay_resume()")
    cluster.replica_caught_up()
    time.sleep(CHECK_SECONDS * 2)
    headers, _ = _search(cluster, f"event_name=lagging.{tag}")
    assert headers["X-Data-Freshness"].startswith("replica; lag=")


@pytest.mark.parametrize("path", ["/api/v1/audit-events", "/api/v1/audit-events/export.jsonl"])
def test_a_stopped_replica_sends_reads_to_the_primary_without_an_error(cluster, path):
    """Replica down: search and export answer 200 from the primary, marked unreachable."""
    tag = uuid.uuid4().hex[:8]
    _ingest_json(cluster, [_audit(f"down.{tag}")])
    cluster.pg_ctl("replica", "stop")
    try:
        time.sleep(CHECK_SECONDS * 2)
        status, headers, body = _request(
            cluster, f"{path}?event_name=down.{tag}", auth=f"Token {cluster.secrets['token']}"
        )
        assert status == 200, body[:500]
        assert f"down.{tag}".encode() in body
        assert headers["X-Data-Freshness"].endswith("fallback=unreachable")
    finally:
        cluster.pg_ctl("replica", "start")
    cluster.replica_caught_up()

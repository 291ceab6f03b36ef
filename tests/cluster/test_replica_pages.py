"""The pages that show data read on the replica (admin and API), say so, and an event the
replica has not replayed yet is read on the primary."""

from __future__ import annotations

import json
import time
import uuid

import requests

from tests.cluster.conftest import CHECK_SECONDS, Cluster
from tests.cluster.test_pooling_and_replica import _audit, _ingest_json

INGEST_EVENT_READS = (
    "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
    "WHERE query LIKE '%%FROM \"ingest_event\"%%'"
)


def _admin(cluster: Cluster) -> tuple[str, requests.Session]:
    node = f"http://127.0.0.1:{cluster.web_port}"
    username, password = cluster.secrets["admin"]
    session = requests.Session()
    session.get(f"{node}/admin/login/", timeout=30)
    answer = session.post(
        f"{node}/admin/login/?next=/admin/",
        data={"username": username, "password": password, "next": "/admin/",
              "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{node}/admin/login/"},
        timeout=30,
    )
    assert answer.status_code == 200 and "sessionid" in session.cookies, answer.text[:300]
    return node, session


def _correlated_pair(cluster: Cluster, tag: str) -> int:
    """Two audit events sharing a request id; the id of the first."""
    request_id = f"req_{uuid.uuid4().hex}"
    _ingest_json(cluster, [_audit(f"pair.{tag}.{n}", request_id=request_id) for n in (1, 2)])
    ((pk,),) = cluster.sql(
        cluster.primary_port,
        "SELECT id FROM ingest_event WHERE payload->>'event_name' = %s", (f"pair.{tag}.1",),
    )
    return pk


def _replica_fresh(cluster: Cluster) -> None:
    cluster.replica_caught_up()
    for port in (cluster.primary_port, cluster.replica_port):
        cluster.sql(port, "SELECT pg_stat_statements_reset()")
    time.sleep(CHECK_SECONDS * 2)


def test_admin_pages_that_show_data_read_on_the_replica(cluster):
    """Home figures, audit search, an event's correlation page, trends and the purge dry run:
    each read on the replica and says so; none reads the event table on the primary."""
    tag = uuid.uuid4().hex[:8]
    pk = _correlated_pair(cluster, tag)
    node, session = _admin(cluster)
    _replica_fresh(cluster)

    pages = {
        "audit search": f"/admin/audit/auditevent/?event_name=pair.{tag}.1",
        "correlation": f"/admin/audit/auditevent/{pk}/correlation/",
        "trends": "/admin/ingest/performancetrend/",
        "purge dry run": "/admin/ingest/purgerun/dry-run/",
    }
    served = {}
    for name, path in pages.items():
        answer = session.get(f"{node}{path}", timeout=30)
        assert answer.status_code == 200, (name, answer.text[:300])
        served[name] = answer.headers.get("X-Data-Freshness", "")
        assert 'id="data-freshness"' in answer.text, name
        assert "(replica, lag" in answer.text, name
    assert all(header.startswith("replica; lag=") for header in served.values()), served
    home = session.get(f"{node}/admin/", timeout=30)
    assert "Figures: data as of" in home.text and "(replica, lag" in home.text
    correlation = session.get(f"{node}{pages['correlation']}", timeout=30).text
    assert f"pair.{tag}.1" in correlation and f"pair.{tag}.2" in correlation

    assert cluster.sql(cluster.replica_port, INGEST_EVENT_READS)[0][0] >= 3
    assert cluster.sql(cluster.primary_port, INGEST_EVENT_READS)[0][0] == 0


def test_the_correlation_api_is_served_by_the_replica(cluster):
    tag = uuid.uuid4().hex[:8]
    pk = _correlated_pair(cluster, tag)
    _replica_fresh(cluster)

    answer = requests.get(
        f"http://127.0.0.1:{cluster.web_port}/api/v1/audit-events/{pk}/correlated",
        headers={"Authorization": f"Token {cluster.secrets['token']}"},
        timeout=30,
    )

    assert answer.status_code == 200, answer.text[:300]
    assert answer.headers["X-Data-Freshness"].startswith("replica; lag=")
    names = [item["payload"]["event_name"] for item in answer.json()["timeline"]]
    assert names == [f"pair.{tag}.1", f"pair.{tag}.2"]
    assert cluster.sql(cluster.primary_port, INGEST_EVENT_READS)[0][0] == 0


CORRELATE_SCRIPT = """
import json
from audit.selectors import correlation_get
found = [correlation_get(int(pk)) for pk in {pks!r}]
print(json.dumps([None if f is None else [f.source.header(), len(f.timeline)] for f in found]))
"""


def test_an_event_the_replica_has_not_replayed_is_correlated_on_the_primary(cluster):
    """Replay paused, lag bound wide: the replica is chosen but lacks the new event, so its
    correlation is read on the primary (fallback=behind); a replayed one stays on the replica."""
    tag = uuid.uuid4().hex[:8]
    replayed = _correlated_pair(cluster, f"{tag}.old")
    cluster.replica_caught_up()
    cluster.sql(cluster.replica_port, "SELECT pg_wal_replay_pause()")
    try:
        fresh = _correlated_pair(cluster, f"{tag}.new")
        assert cluster.sql(
            cluster.replica_port, "SELECT count(*) FROM ingest_event WHERE id = %s", (fresh,)
        ) == [(0,)]
        ran = cluster.manage(
            "shell", "-c", CORRELATE_SCRIPT.format(pks=[replayed, fresh, 2**62]),
            DATABASE_REPLICA_MAX_LAG_SECONDS="3600",
        )
    finally:
        cluster.sql(cluster.replica_port, "SELECT pg_wal_replay_resume()")
    assert ran.returncode == 0, ran.stderr[-2000:]
    old, new, missing = json.loads(ran.stdout.strip().splitlines()[-1])
    assert old[0].startswith("replica; lag=") and old[1] == 2
    assert new[0].startswith("primary; as-of=") and new[0].endswith("fallback=behind")
    assert new[1] == 2
    assert missing is None

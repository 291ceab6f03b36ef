"""Two web nodes and two Celery workers on one database and Redis behave as one platform.

Two gunicorn instances of the project (its config file, as the Procfile runs them, each with
its own PROMETHEUS_MULTIPROC_DIR as on its own host) on two ports, and two Celery workers
(their own hostnames), all on this test database and Redis: API-key revocation, rate
limits, plan changes and purges act across them; /metrics is per node and the Redis
aggregates are served once.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from django.db import connection
from rest_framework.authtoken.models import Token

from governance.models import SchemaRevision
from governance.roles import (
    GOVERNANCE_APPROVER,
    GOVERNANCE_OWNER,
    PLATFORM_ADMIN,
    PRIVACY_OFFICER,
)
from ingest.models import ApiKey, Event, PurgeRun
from ingest.services import api_key_create
from ingest.tasks import purge_expired_events
from privacy.models import SubjectRequest
from privacy.services import subject_request_approve, subject_request_submit
from privacy.tasks import erase_subject
from tests.factories import AUDIT_SCHEMA, SERVICE_METRIC_SCHEMA, audit_event, iso, user_with_role
from tests.ingest.test_retention_worker import store_old
from tests.privacy.test_erasure import ALICE, store_subject

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)

CACHE_SECONDS = 1.0  # TELEMETRY_API_KEY_CACHE_SECONDS and TELEMETRY_PLAN_REFRESH_SECONDS
DIAGNOSTIC = "telemetry.client_diagnostic.v1"
PASSWORD = "pw-123456!"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    """A node's environment: this test database and Redis, the caches' bounds."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    name = connection.settings_dict["NAME"]
    env.update(
        DJANGO_SETTINGS_MODULE="telemetry_platform.test_settings",
        DATABASE_URL=f"postgres://root@127.0.0.1:5432/{name}",
        TEST_DATABASE_NAME=name,
        TELEMETRY_API_KEY_CACHE_SECONDS=str(CACHE_SECONDS),
        TELEMETRY_PLAN_REFRESH_SECONDS=str(CACHE_SECONDS),
        METRICS_NODE_AGGREGATES="false",
        TELEMETRY_PURGE_BATCH_SIZE="100",
        TELEMETRY_PURGE_BATCH_PAUSE_SECONDS="0.2",
    )
    env.update(extra)
    return env


@contextmanager
def _gunicorn(name: str, workdir: Path) -> Iterator[str]:
    """One web node: the project's gunicorn, 2 workers, its own multiprocess metrics dir."""
    port = _free_port()
    metrics_dir = workdir / f"{name}-prometheus"
    metrics_dir.mkdir()
    log = (workdir / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "telemetry_platform.wsgi",
            "--config",
            "telemetry_platform/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--timeout",
            "30",
        ],
        cwd=ROOT,
        env=_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"gunicorn {name} exited"
            try:
                if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, f"gunicorn {name} did not come up"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@contextmanager
def _worker(name: str, workdir: Path) -> Iterator[Path]:
    """One Celery worker of the maintenance queue (solo pool, prefetch 1, acks late)."""
    log_path = workdir / f"{name}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "telemetry_platform",
            "worker",
            "--pool",
            "solo",
            "--queues",
            "maintenance",
            "--hostname",
            f"{name}@%h",
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while b"ready." not in log_path.read_bytes():
            assert process.poll() is None, f"worker {name} exited"
            assert time.monotonic() < deadline, f"worker {name} did not come up"
            time.sleep(0.2)
        yield log_path
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker, tmp_path_factory):
    """Nodes A and B (base URLs) and two workers' log files, started once for the module."""
    workdir = tmp_path_factory.mktemp("multinode")
    with django_db_blocker.unblock(), ExitStack() as stack:
        nodes = [stack.enter_context(_gunicorn(name, workdir)) for name in ("node-a", "node-b")]
        workers = [stack.enter_context(_worker(name, workdir)) for name in ("worker-a", "worker-b")]
        yield {"a": nodes[0], "b": nodes[1], "workers": workers}


@pytest.fixture
def fresh(platform_config):
    """This test's configuration, announced to the nodes: each test's database starts
    anew (new revision ids), so the policy epoch is moved to a value no node has seen and
    the nodes' plan caches reload on their next request after the refresh bound."""
    from governance.models import PolicyEpoch

    PolicyEpoch.objects.update_or_create(pk=1, defaults={"value": time.time_ns()})
    time.sleep(CACHE_SECONDS + 0.2)
    return platform_config


def post_events(node: str, secret: str, events: list[dict], schema: str = "") -> requests.Response:
    query = f"?schema={schema}" if schema else ""
    return requests.post(
        f"{node}/api/v1/events{query}",
        json={"events": events},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    )


def admin_session(node: str, username: str) -> requests.Session:
    """A browser-like session logged in to ``node``'s admin (CSRF token included)."""
    session = requests.Session()
    session.get(f"{node}/admin/login/", timeout=30)
    response = session.post(
        f"{node}/admin/login/?next=/admin/",
        data={
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        headers={"Referer": f"{node}/admin/login/"},
        timeout=30,
    )
    assert response.status_code == 200 and "sessionid" in session.cookies, response.text[:300]
    return session


def admin_post(session: requests.Session, node: str, path: str, data: dict) -> requests.Response:
    response = session.post(
        f"{node}{path}",
        data={**data, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{node}{path}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text[:300]
    return response


def within(seconds: float, check: Callable[[], bool], *, every: float = 0.1) -> float:
    """Poll ``check`` until true; return how long it took (fails after ``seconds``)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"not within {seconds:g}s"
        time.sleep(every)
    return time.monotonic() - started


def after_bound(changed: float) -> None:
    """Wait until the cache bound (plus a request's time) has passed since ``changed``:
    from then on no process of any node may act on the old state."""
    time.sleep(max(0.0, changed + CACHE_SECONDS + 0.3 - time.monotonic()))


def test_a_key_revoked_on_node_a_is_refused_by_node_b_within_the_cache_bound(cluster, fresh):
    """Node B has the key cached; it is revoked through node A's admin; node B refuses it
    (401) within TELEMETRY_API_KEY_CACHE_SECONDS (plus a request's time)."""
    key = api_key_create(name="mobile", source="mobile", actor=None)
    user_with_role("pat", PLATFORM_ADMIN)
    for node in (cluster["a"], cluster["b"]):
        assert post_events(node, key.secret, [audit_event()]).status_code == 200
    session = admin_session(cluster["a"], "pat")
    admin_post(
        session,
        cluster["a"],
        "/admin/ingest/apikey/",
        {"action": "revoke_keys", "_selected_action": [key.api_key.pk]},
    )
    revoked = time.monotonic()
    assert ApiKey.objects.get(pk=key.api_key.pk).revoked_at is not None

    def refused_on(node: str) -> bool:
        return post_events(node, key.secret, [audit_event()]).status_code == 401

    # Each worker process of each node caches keys for the bound, node A's included (the
    # process that served the revocation is not necessarily the one asked next).
    within(CACHE_SECONDS + 2, lambda: refused_on(cluster["b"]))
    after_bound(revoked)
    for _ in range(6):  # every worker process of both nodes, not only the first to notice
        assert refused_on(cluster["b"]) and refused_on(cluster["a"])


def test_a_burst_split_across_nodes_is_limited_as_one(cluster, fresh):
    """A key allowed 2 events/s with a 5 s burst (10 events) sends 20 one-event requests
    alternating between the nodes within a second: about 10 pass in all, not 10 per node."""
    key = api_key_create(name="burst", source="burst", actor=None, rate_limit_per_second=2)
    statuses = []
    for number in range(20):
        node = cluster["a"] if number % 2 == 0 else cluster["b"]
        statuses.append(post_events(node, key.secret, [audit_event()]).status_code)
    accepted = statuses.count(200)
    assert set(statuses) == {200, 429}
    assert 10 <= accepted <= 12, statuses  # 10 of burst, at most 2 refilled meanwhile
    assert 200 in statuses[1::2] and 429 in statuses[::2] and 429 in statuses[1::2]
    refused = post_events(cluster["b"], key.secret, [audit_event()])
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1


def test_a_plan_change_applied_via_node_a_is_enforced_on_node_b(cluster, fresh):
    """The diagnostic schema's revision is retired: proposed through node A's API (token),
    approved and applied in node A's admin by someone else; node B, which had the plan
    cached, refuses the schema's events within TELEMETRY_PLAN_REFRESH_SECONDS."""
    key = api_key_create(name="diag", source="diag", actor=None)
    owner = user_with_role("olivia", GOVERNANCE_OWNER)
    user_with_role("arthur", GOVERNANCE_APPROVER)
    token = Token.objects.create(user=owner)
    revision = SchemaRevision.objects.filter(schema__name=DIAGNOSTIC).order_by("-version").first()

    def diagnostic_event(n: int) -> dict:
        now = iso(datetime.now(UTC))
        return {"envelope": {"event_id": f"diag-{n}", "occurred_at": now}, "name": "x"}

    answer = post_events(cluster["b"], key.secret, [diagnostic_event(0)], DIAGNOSTIC)
    assert answer.json()["accepted"] == 1, answer.text
    proposed = requests.post(
        f"{cluster['a']}/api/v1/schemas/{DIAGNOSTIC}/revisions/{revision.version}/status",
        json={"status": "retired", "reason": "replaced by v2"},
        headers={"Authorization": f"Token {token.key}"},
        timeout=30,
    )
    assert proposed.status_code == 202, proposed.text
    change_request = proposed.json()["change_request"]
    approver = admin_session(cluster["a"], "arthur")
    admin_post(
        approver,
        cluster["a"],
        f"/admin/governance/changerequest/{change_request}/",
        {"step": "approve_apply", "comment": "agreed"},
    )
    applied = time.monotonic()
    revision.refresh_from_db()
    assert revision.status == "retired"
    numbers = iter(range(1, 1000))

    def refused_on_b() -> bool:
        body = post_events(cluster["b"], key.secret, [diagnostic_event(next(numbers))], DIAGNOSTIC)
        return body.status_code == 200 and body.json()["accepted"] == 0

    within(CACHE_SECONDS + 2, refused_on_b)
    after_bound(applied)
    for _ in range(6):  # every worker process of node B
        assert refused_on_b()


def test_one_purge_runs_once_when_both_workers_get_it(cluster, fresh):
    """The same purge sent twice is taken by both workers at once; the class's advisory
    lock lets one run it (1,200 rows, one PurgeRun) and the other skip it."""
    store_old(1200)
    first = purge_expired_events.delay("audit_event", "multinode")
    second = purge_expired_events.delay("audit_event", "multinode")
    results = [first.get(timeout=120), second.get(timeout=120)]
    assert sorted(result.get("audit_event", 0) for result in results) == [0, 1200]
    runs = PurgeRun.objects.filter(triggered_by="multinode")
    assert [(run.status, run.rows_deleted) for run in runs] == [("succeeded", 1200)]
    for log in cluster["workers"]:  # each worker took one of the two
        text = log.read_text(errors="replace")
        assert len(re.findall(r"purge_expired_events\[[^\]]+\] received", text)) >= 1, text[-2000:]


def test_one_erasure_runs_once_when_both_workers_get_it(cluster, fresh):
    """An approved erasure (queued by the approval) queued once more: the other worker takes
    the duplicate while the first holds the request's lock (it waits out the race margin),
    so the duplicate erases nothing; one certificate counts every row of the subject."""
    olga, pete = user_with_role("olga", PRIVACY_OFFICER), user_with_role("pete", PRIVACY_OFFICER)
    stored = store_subject("alice", days=2)
    request = subject_request_submit(kind="erasure", identifiers=ALICE, reason="r", actor=olga)
    subject_request_approve(request=request, actor=pete)  # queued on commit
    duplicate = erase_subject.delay(request.pk)

    assert duplicate.get(timeout=120) in ("locked", "completed")
    within(120, lambda: SubjectRequest.objects.get(pk=request.pk).status == "completed",
           every=0.5)
    request.refresh_from_db()
    assert request.certificate["rows_erased"] == sum(stored.values())
    assert request.rows_erased == sum(stored.values())
    certified = Event.objects.filter(payload__event_name="privacy.erasure.certified")
    assert certified.count() == 1
    for log in cluster["workers"]:  # each worker took one of the two
        text = log.read_text(errors="replace")
        assert len(re.findall(r"erase_subject\[[^\]]+\] received", text)) >= 1, text[-2000:]


def test_metrics_are_per_node_and_the_redis_aggregates_are_served_once(cluster, fresh):
    """With METRICS_NODE_AGGREGATES=false each node's /metrics has its own process counters
    (its multiprocess dir) and no Redis aggregates; /metrics/aggregates on any node serves
    the aggregates, the same figures whichever node is scraped."""
    key = api_key_create(name="metrics", source="metrics", actor=None)
    now = iso(datetime.now(UTC) - timedelta(minutes=5))
    metric = {
        "envelope": {"event_id": "metric-1", "occurred_at": now},
        "name": "auth.verify.completed",
        "kind": "KIND_COUNTER",
        "value": 3,
        "labels": {"route": "/verify"},
        "service": "control",
        "instance": "control-0",
    }
    answer = post_events(cluster["a"], key.secret, [metric], SERVICE_METRIC_SCHEMA)
    assert answer.json()["accepted"] == 1, answer.text
    post_events(cluster["b"], key.secret, [audit_event(), audit_event()], AUDIT_SCHEMA)

    def scrape(node: str, path: str) -> str:
        return requests.get(f"{node}{path}", timeout=30).text

    def accepted_audit(text: str) -> float:
        pattern = r'^telemetry_ingest_events_total\{[^}]*outcome="accepted"[^}]*\} (\S+)$'
        values = [float(v) for v in re.findall(pattern, text, re.MULTILINE)]
        return sum(values)

    node_a, node_b = scrape(cluster["a"], "/metrics"), scrape(cluster["b"], "/metrics")
    assert "auth_verify_completed" not in node_a and "auth_verify_completed" not in node_b
    assert accepted_audit(node_b) >= 2  # node B's own counters, from its multiprocess dir
    for node in (cluster["a"], cluster["b"]):
        aggregates = scrape(node, "/metrics/aggregates")
        assert re.search(
            r'^auth_verify_completed\{[^}]*service="control"[^}]*\} 3\.0$', aggregates, re.MULTILINE
        ), aggregates[:2000]
        assert "telemetry_ingest_events_total" not in aggregates

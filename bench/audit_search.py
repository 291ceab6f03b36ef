"""Audit search at scale: latency of GET /api/v1/audit-events (and the admin) over 10M events.

What is measured, all in one run against a dedicated database (``telemetry_audit_bench``,
created, bootstrapped with ``manage.py bootstrap`` and dropped by this script) and Redis
db 11 (flushed before and after):

1. **load**: ``--rows`` (10,000,000) audit events spread evenly over the last 90 days are
   COPYed into the ``audit_event`` class partition of ``ingest_event``, one day partition per
   UTC day (91 of them: the first and the last are partial). Rows are in the stored shape:
   ``telemetry.audit_event.v1`` revision, event class ``audit_event``, unique
   ``sha256:<hex>`` event ids, ids from the event sequence in time order, and a payload as
   the pipeline stores it (``event_name``, ``outcome``, ``occurred_at``, ``source``,
   ``user_id``/``session_id``/``org_id`` as keyed hashes, ``request_id``, ``traceparent``,
   ``attributes``), ``redactions``, and chain columns (``chain_seq`` per (source, day), a
   ``chain_prev``/``chain_link`` of the stored length; the links are not real HMACs).
   Distribution: 42 event names with Zipf frequencies (``auth.*`` about half), 5 sources
   (by event family), outcome success 90% / rejected 6% / failure 4%, 200,000 actors
   (``user_<n>``, Zipf-Mandelbrot weights 1/(n+10), so ``user_1`` has ~1% of the events;
   3% of events have no actor) stored as ``actor_hash`` = ``payload.user_id`` = the keyed
   hash (``k1:`` HMAC-SHA256 under ``TELEMETRY_HASH_KEYS``, the development key by
   default), ~800k sessions, 5,000 orgs, request ids ``req_<16 hex>`` shared by pairs of
   consecutive events (~4.75M distinct; 5% of events have none), a trace id on 30% of the
   requests, and 2-4 string attributes (client, IP prefix, a family attribute, and on ~40%
   of events a free-text ``reason``/``detail`` of 2-6 words drawn with Zipf frequencies from
   a 3,000-word vocabulary).

   How (``--load-mode bulk``, the default): today's partition and the partitions ahead
   are made by ``ingest.retention.day_partition_create`` / ``partitions_maintain`` in a
   ``manage.py shell -c`` subprocess; every earlier day partition is made with the SQL
   ``day_partition_create`` runs (``CREATE TABLE ... (LIKE ingest_event INCLUDING
   DEFAULTS)`` then ``ATTACH PARTITION ... FOR VALUES FROM (day) TO (day + 1)``), but with
   the rows COPYed (``COPY ... WITH (FREEZE)``, psycopg 3 ``cursor.copy``) and the class
   partition's indexes (``ingest.partitions.CLASS_INDEXES`` and the shared ones, read from
   the catalogue) built *before* the ATTACH, by ``--workers`` processes in parallel; ATTACH
   then adopts those indexes. Those past-day tables are UNLOGGED unless ``--logged``: no
   WAL for 10M rows and their indexes (the machine's disk does ~160 MB/s); reads, the
   only thing measured on them, take the same path through shared buffers. Today's rows
   (and every row with ``--load-mode indexed``, where all partitions come from
   ``day_partition_create``) are COPYed through ``ingest_event`` into the attached,
   indexed, logged partitions. Then ``VACUUM (ANALYZE)`` of the partitions loaded through
   the parent and ``ANALYZE ingest_event`` (which recurses into every partition).
2. **server**: gunicorn as the Procfile runs it (``telemetry_platform.wsgi``, the gunicorn
   config, 2 sync workers, access log) with ``DEBUG=false``, Redis db 11 and a
   ``PROMETHEUS_MULTIPROC_DIR``. An analyst user (staff, role "security analyst") with a DRF token
   is created in a ``manage.py shell -c`` subprocess.
3. **latency**: per query, 3 warm-up then ``--runs`` (30) sequential requests (one
   client, new connection per request as gunicorn's sync workers close them); p50/p95 of
   the client wall time, and the CPU time per request of gunicorn (arbiter + workers) and
   of the bench database's backends (/proc), with the machine's CPU use meanwhile.
   Targets: p95 < 100 ms for (a) actor ``user_1`` + last 7 days, (b) a request id of the
   last 24 hours (default window), (c) ``event_name=auth.`` + ``outcome=rejected`` (default
   window: last 24 hours), (e) the first page of ``/admin/audit/auditevent/`` (logged in
   through the admin login form with CSRF) without filter, or the API without filter when
   that page is not there (said so); p95 < 300 ms for (d) ``q=<word>`` + last 7 days, a
   word on ~0.7% of events. Extra rows (no target of their own, shown against the target
   of their letter): a rare actor, an old request id over 90 days, a common word, a word
   on ~0.3% of events (where the planner's choice between walking the time index and the
   full-text index turns), a rare word, and the API without filter. The requests of all
   queries are interleaved (round after round), so a change in the machine's load is
   shared by every query.
4. **where the time goes**: in a ``manage.py shell -c`` subprocess each query is run
   ``--capture-repeat`` (6) times through the same code as the server (the API view via
   DRF ``APIRequestFactory`` as the analyst, the admin page via ``django.test.Client``)
   under ``CaptureQueriesContext``: the median view time is split into the page query,
   the recorded search's duplicate lookup and the rest of ``record_search`` (lock, schema
   plans, insert, chain head), auth queries and Python. The page query (first run's exact
   SQL) and the duplicate lookup are run with ``EXPLAIN (ANALYZE, BUFFERS)`` over psycopg
   (twice: first and warm; the warm plan is printed for (a)-(e), every plan is in the
   JSON). Each plan is summarised (indexes used per partition, rows removed by filters,
   sorts, JIT, planning and execution time) and, for a query over its target, a diagnosis
   is printed. Read-only what-ifs on the same data: each page query fetched with and
   without the ``governance_schemarevision`` blobs its ``select_related`` joins in, the
   duplicate lookup with and without a bound to the chain's day, and each ``q`` query
   planned under ``random_page_cost`` 4 and 1.1.

PostgreSQL, gunicorn and this client share the machine's cores (2 on the reference
machine) with whatever else runs; the load average is reported with the latencies.

Prints a table and writes ``bench/results/audit_search.json``.

``--keep-db`` keeps the loaded database; a later ``--reuse-db`` run (the same UTC day)
measures again on it without reloading (e.g. after a fix): ~3 minutes instead of ~15.

Run: /work/main/.venv/bin/python bench/audit_search.py [--rows N] [--workers N]
     [--load-mode bulk|indexed] [--logged] [--runs N] [--capture-repeat N]
     [--keep-db] [--reuse-db]
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import hashlib
import hmac
import json
import math
import multiprocessing
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import support  # noqa: E402 (needs the repo on sys.path)

PG_SERVER = support.PG_SERVER
BENCH_DB = "telemetry_audit_bench"
DATABASE_URL = f"{PG_SERVER}/{BENCH_DB}"
REDIS_URL = "redis://127.0.0.1:6379/11"
RESULTS = ROOT / "bench" / "results" / "audit_search.json"

CLASS = "audit_event"
SCHEMA = "telemetry.audit_event.v1"
CLASS_TABLE = f"ingest_event_{CLASS}"
HASH_KEY_ID = "k1"
HASH_KEY = "dev-insecure-hash-key-change-me"
DATA_DAYS = 90
API_PATH = "/api/v1/audit-events"
ADMIN_PATH = "/admin/audit/auditevent/"
PAGE_LIMIT = 51  # the API's page size (50) + 1: what CursorPagination fetches
WARMUP = 3
FAST_TARGET_MS = 100.0
TEXT_TARGET_MS = 300.0
COPY_CHUNK = 10_000
ANALYST = "audit-analyst"
SEED = 20261125

COPY_COLUMNS = (
    "id",
    "event_class",
    "schema_revision_id",
    "source",
    "event_id",
    "occurred_at",
    "received_at",
    "request_id",
    "trace_id",
    "actor_hash",
    "ingest_request_id",
    "payload",
    "redactions",
    "chain_seq",
    "chain_prev",
    "chain_link",
)

# -- the data: names, actors, words ----------------------------------------------------------

# (event name, source) in Zipf rank order: weight 1/rank. auth.* is about half the events.
EVENT_NAMES = (
    ("auth.login", "auth-service"),
    ("auth.token.refreshed", "auth-service"),
    ("sync.token.issued", "sync-gateway"),
    ("auth.logout", "auth-service"),
    ("autopilot.updated", "control-service"),
    ("auth.session.created", "auth-service"),
    ("sync.replay.requested", "sync-gateway"),
    ("project.created", "control-service"),
    ("auth.mfa.challenged", "auth-service"),
    ("secret.read", "control-service"),
    ("auth.mfa.verified", "auth-service"),
    ("autopilot.run.started", "control-service"),
    ("autopilot.run.completed", "control-service"),
    ("billing.invoice.created", "billing-service"),
    ("webhook.delivery.failed", "control-service"),
    ("auth.session.revoked", "auth-service"),
    ("sync.cursor.reset", "sync-gateway"),
    ("billing.invoice.paid", "billing-service"),
    ("org.member.invited", "admin-console"),
    ("auth.password.changed", "auth-service"),
    ("export.requested", "control-service"),
    ("secret.created", "control-service"),
    ("auth.password.reset_requested", "auth-service"),
    ("org.role.changed", "admin-console"),
    ("billing.payment_method.updated", "billing-service"),
    ("sync.token.revoked", "sync-gateway"),
    ("autopilot.enabled", "control-service"),
    ("project.archived", "control-service"),
    ("secret.rotated", "control-service"),
    ("auth.api_key.created", "auth-service"),
    ("org.settings.updated", "admin-console"),
    ("billing.plan.changed", "billing-service"),
    ("webhook.created", "control-service"),
    ("autopilot.disabled", "control-service"),
    ("org.member.removed", "admin-console"),
    ("auth.api_key.revoked", "auth-service"),
    ("policy.updated", "admin-console"),
    ("project.deleted", "control-service"),
    ("billing.subscription.cancelled", "billing-service"),
    ("secret.deleted", "control-service"),
    ("admin.impersonation.started", "admin-console"),
    ("admin.impersonation.ended", "admin-console"),
)
FAMILY_ATTRIBUTES = {
    "auth": ("method", ("password", "sso", "passkey", "api_key", "magic_link")),
    "sync": ("scopes", ("runtime.read", "runtime.read sync.write", "sync.write", "sync.admin")),
    "billing": ("plan", ("free", "pro", "team", "enterprise")),
    "autopilot": ("field", ("schedule", "budget", "model", "target", "notifications")),
}
CLIENTS = ("web", "ios", "android", "desktop", "cli")
ACTORS = 200_000
ACTOR_OFFSET = 10  # Zipf-Mandelbrot: weight 1 / (rank + 10)
NO_ACTOR = 0.03
SESSIONS_PER_ACTOR = 4
ORGS = 5_000
TEXT_ON_SUCCESS = 0.35  # share of successful events with a free-text detail (all others have)

COMMON_WORDS_TEXT = """
token expired invalid password session device unknown location login attempt failed
blocked mfa challenge timeout network error retry user admin policy denied granted scope
missing signature mismatch rate limit exceeded suspicious address browser mobile desktop
new account locked reset email verified unverified sso provider saml oidc callback state
nonce replay detected refresh revoked key rotated secret webhook delivery endpoint
unreachable certificate tls handshake proxy firewall region europe america asia payment
card declined insufficient funds invoice overdue plan upgrade downgrade trial ended seat
quota storage project archived deleted restored export download report schedule budget
autopilot run paused resumed throttled cursor stale conflict merge branch deploy release
rollback approval pending manual review escalated ticket support impersonation audit
compliance gdpr retention hold legal request origin header malformed payload schema
version client outdated required maintenance window degraded service unavailable
dependency database queue backlog worker crashed restart healthy recovered
"""
COMMON_WORDS = tuple(COMMON_WORDS_TEXT.split())
SYLLABLES_TEXT = "ka lo mi ra ven tor sel din qua bri no zu fel mar ost pel gri tam vo ix"
SYLLABLES = tuple(SYLLABLES_TEXT.split())
VOCABULARY_SIZE = 3_000
# 1-based Zipf ranks of the q words. "crossover": a word on ~0.3% of events, where the planner
# still walks the time index (filtering every row through jsonb_to_tsvector) though the
# full-text index would be cheaper (found by EXPLAINing the words around it).
WORD_RANKS = {"common": 1, "mid": 26, "crossover": 60, "rare": 2_500}


def _vocabulary() -> list[str]:
    words = list(dict.fromkeys(COMMON_WORDS))
    made = [a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES if a != b != c]
    made = sorted(made, key=lambda w: hashlib.sha256(w.encode()).digest())
    seen = set(words)
    for word in made:
        if len(words) >= VOCABULARY_SIZE:
            break
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def keyed_hasher(key_id: str, key: str):
    """HMAC-SHA256 hex with the key id prefix: governance.hashing.keyed_hash (checked at setup)."""
    secret = key.encode()

    def hash_value(value: str) -> str:
        return f"{key_id}:{hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()}"

    return hash_value


def actor_name(rank: int) -> str:
    return f"user_{rank}"


def request_id_of(pair: int) -> str:
    # Multiplication by an odd constant is a bijection mod 2**64: distinct pairs, distinct ids.
    return f"req_{(pair * 0x9E3779B97F4A7C15 + 0x5BD1E995) & 0xFFFFFFFFFFFFFFFF:016x}"


def trace_id_of(pair: int) -> str:
    high = (pair * 0xD6E8FEB86659FD93 + 0x632BE5AB) & 0xFFFFFFFFFFFFFFFF
    low = (pair * 0xA0761D6478BD642F + 0xE7037ED1) & 0xFFFFFFFFFFFFFFFF
    return f"{high:016x}{low:016x}"


def pair_has_request(pair: int) -> bool:
    return (pair * 2654435761) % 100 >= 5


def pair_has_trace(pair: int) -> bool:
    return (pair * 40503 + 7) % 10 < 3


class Generator:
    """Everything a worker needs to write rows; built once in the parent, inherited by fork."""

    def __init__(self, seed: int, tag: str, revision_id: int) -> None:
        self.seed = seed
        self.tag = tag
        self.revision_id = revision_id
        hasher = keyed_hasher(HASH_KEY_ID, HASH_KEY)
        self.hasher = hasher
        self.actor_hashes = [hasher(actor_name(rank)) for rank in range(1, ACTORS + 1)]
        self.org_hashes = [hasher(f"org_{n}") for n in range(ORGS)]
        self.actor_cum = _cumulative([1.0 / (rank + ACTOR_OFFSET) for rank in range(1, ACTORS + 1)])
        self.name_cum = _cumulative([1.0 / rank for rank in range(1, len(EVENT_NAMES) + 1)])
        self.vocabulary = _vocabulary()
        self.word_cum = _cumulative([1.0 / rank for rank in range(1, len(self.vocabulary) + 1)])
        self.events = []
        for name, source in EVENT_NAMES:
            family = name.split(".", 1)[0]
            self.events.append((name, source, FAMILY_ATTRIBUTES.get(family)))
        self.ip_prefixes = [f"10.{n // 256}.{n % 256}.0/24" for n in range(0, 4096, 4)] + [
            f"203.0.{n}.0/24" for n in range(113, 140)
        ]

    def words_by_rank(self) -> dict[str, str]:
        return {label: self.vocabulary[rank - 1] for label, rank in WORD_RANKS.items()}

    def lines(self, task: DayTask) -> Any:
        """COPY text of the task's rows, in chunks (rows k0..k1 of the whole load)."""
        rng = random.Random(f"{self.seed}:{task.day.isoformat()}")
        rand, randint, choices = rng.random, rng.randint, rng.choices
        actor_hashes, org_hashes, actor_cum = self.actor_hashes, self.org_hashes, self.actor_cum
        actor_total = actor_cum[-1]
        name_cum, name_total, events = self.name_cum, self.name_cum[-1], self.events
        vocabulary, word_cum = self.vocabulary, self.word_cum
        ip_prefixes, hasher, tag = self.ip_prefixes, self.hasher, self.tag
        sha256 = hashlib.sha256
        sessions: dict[int, str] = {}
        chain: dict[str, tuple[int, str]] = {}
        day_start = task.day_start
        day_end = day_start + 86400 - 1e-6
        day_text = task.day.isoformat()
        revision = self.revision_id
        chunk: list[str] = []
        actor_part = actor_hash = ""
        redactions = "[]"
        request_id = trace_id = ""
        traceparent_part = request_part = ""
        ingest_request = ""
        for k in range(task.k0, task.k1):
            ts = min(max(task.t0 + k * task.step, day_start), day_end)
            if k == task.k0 or k % 2 == 0:
                pair = k // 2
                if rand() < NO_ACTOR:
                    actor_part, actor_hash = "", ""
                    redactions = "[]"
                else:
                    index = bisect.bisect_left(actor_cum, rand() * actor_total)
                    index = min(index, ACTORS - 1)
                    actor_hash = actor_hashes[index]
                    session_key = index * SESSIONS_PER_ACTOR + randint(0, SESSIONS_PER_ACTOR - 1)
                    session = sessions.get(session_key)
                    if session is None:
                        session = sessions[session_key] = hasher(f"sess_{session_key}")
                    actor_part = (
                        f'"user_id":"{actor_hash}","session_id":"{session}",'
                        f'"org_id":"{org_hashes[index % ORGS]}",'
                    )
                    redactions = '[["user_id","hash"],["session_id","hash"],["org_id","hash"]]'
                if pair_has_request(pair):
                    request_id = request_id_of(pair)
                    request_part = f'"request_id":"{request_id}",'
                else:
                    request_id, request_part = "", ""
                if pair_has_trace(pair):
                    trace_id = trace_id_of(pair)
                    traceparent_part = f'"traceparent":"00-{trace_id}-{pair & 0xFFFFFFFF:016x}-01",'
                else:
                    trace_id, traceparent_part = "", ""
                ingest_request = f"ing_{(pair // 50) * 0x2545F4914F6CDD1D & 0xFFFFFFFFFFFF:012x}"
            name, source, family = events[bisect.bisect_left(name_cum, rand() * name_total)]
            u = rand()
            outcome = "success" if u < 0.90 else "rejected" if u < 0.96 else "failure"
            attributes = (
                f'"client":"{CLIENTS[int(rand() * 5)]}",'
                f'"ip_prefix":"{ip_prefixes[int(rand() * len(ip_prefixes))]}"'
            )
            if rand() < 0.6:
                if family is not None:
                    key, values = family
                    attributes += f',"{key}":"{values[int(rand() * len(values))]}"'
                else:
                    attributes += f',"resource":"prj_{int(rand() * 50000)}"'
            if outcome != "success" or rand() < TEXT_ON_SUCCESS:
                words = " ".join(choices(vocabulary, cum_weights=word_cum, k=randint(2, 6)))
                key = "detail" if outcome == "success" else "reason"
                attributes += f',"{key}":"{words}"'
            second = int(ts)
            micro = int((ts - second) * 1_000_000)
            rest = second - int(day_start)
            clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}.{micro:06d}"
            received = ts + 0.05 + rand() * 2.0
            if received < day_end:
                r_rest = received - day_start
                r_second = int(r_rest)
                r_micro = int((r_rest - r_second) * 1_000_000)
                received_text = (
                    f"{day_text} {r_second // 3600:02d}:{r_second % 3600 // 60:02d}:"
                    f"{r_second % 60:02d}.{r_micro:06d}+00"
                )
            else:
                received_text = datetime.fromtimestamp(received, UTC).isoformat()
            digest = sha256(f"{tag}:{k}".encode()).hexdigest()
            event_id = f"sha256:{digest}"
            link = f"k1:{digest[::-1]}"  # the stored length; not a real HMAC chain
            seq, previous = chain.get(source, (0, "genesis"))
            chain[source] = (seq + 1, link)
            payload = (
                f'{{"event_name":"{name}","outcome":"{outcome}",'
                f'"occurred_at":"{day_text}T{clock}Z","source":"{source}",'
                f"{actor_part}{request_part}{traceparent_part}"
                f'"attributes":{{{attributes}}}}}'
            )
            chunk.append(
                f"{task.first_id + k}\t{CLASS}\t{revision}\t{source}\t{event_id}\t"
                f"{day_text} {clock}+00\t{received_text}\t{request_id}\t"
                f"{trace_id}\t{actor_hash}\t{ingest_request}\t{payload}\t{redactions}\t"
                f"{seq + 1}\t{previous}\t{link}\n"
            )
            if len(chunk) >= COPY_CHUNK:
                yield "".join(chunk)
                chunk = []
        if chunk:
            yield "".join(chunk)


@dataclass(frozen=True)
class DayTask:
    day: date
    day_start: float  # epoch seconds of the day's 00:00 UTC
    k0: int
    k1: int
    t0: float
    step: float
    first_id: int
    mode: str  # "bulk": own table, indexes, attach later; "parent": COPY through ingest_event
    table: str
    unlogged: bool
    index_ddl: tuple[str, ...]

    @property
    def rows(self) -> int:
        return self.k1 - self.k0


GENERATOR: Generator | None = None  # set in the parent before the pool forks
_WORKER_CONN: Any = None


def _worker_conn() -> Any:
    global _WORKER_CONN
    if _WORKER_CONN is None:
        _WORKER_CONN = support.connect(DATABASE_URL)
        _WORKER_CONN.execute("SET synchronous_commit = off")
        _WORKER_CONN.execute("SET maintenance_work_mem = '256MB'")
    return _WORKER_CONN


def day_task_run(task: DayTask) -> dict[str, Any]:
    """Load one day: COPY (and for bulk days, the bounds check and every index)."""
    assert GENERATOR is not None
    conn = _worker_conn()
    started = time.perf_counter()
    columns = ", ".join(COPY_COLUMNS)
    copied = 0
    with conn.transaction(), conn.cursor() as cursor:
        if task.mode == "bulk":
            kind = "UNLOGGED TABLE" if task.unlogged else "TABLE"
            cursor.execute(f'CREATE {kind} "{task.table}" (LIKE ingest_event INCLUDING DEFAULTS)')
            sql = f'COPY "{task.table}" ({columns}) FROM STDIN WITH (FREEZE)'
        else:
            sql = f"COPY ingest_event ({columns}) FROM STDIN"
        with cursor.copy(sql) as copy:
            for text in GENERATOR.lines(task):
                copy.write(text)
        copied = cursor.rowcount
    copy_seconds = time.perf_counter() - started
    index_seconds = 0.0
    if task.mode == "bulk":
        t = time.perf_counter()
        start = datetime.fromtimestamp(task.day_start, UTC).isoformat()
        end = datetime.fromtimestamp(task.day_start + 86400, UTC).isoformat()
        # Lets ATTACH skip its validation scan; dropped after the ATTACH.
        conn.execute(
            f'ALTER TABLE "{task.table}" ADD CONSTRAINT "{task.table}_bounds" CHECK '
            f"(event_class = '{CLASS}' AND occurred_at >= '{start}'::timestamptz "
            f"AND occurred_at < '{end}'::timestamptz)"
        )
        for number, ddl in enumerate(task.index_ddl):
            name = f'"{task.table}_i{number}"'
            conn.execute(ddl.replace("{table}", f'"{task.table}"').replace("{name}", name))
        index_seconds = time.perf_counter() - t
    return {
        "day": task.day.isoformat(),
        "rows": copied,
        "mode": task.mode,
        "copy_seconds": round(copy_seconds, 2),
        "index_seconds": round(index_seconds, 2),
    }


# -- environment, database, subprocesses -------------------------------------------------------


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of every Django process: the bench database and Redis db 11."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_RESULT_BACKEND=REDIS_URL,
        DEBUG="false",
        TELEMETRY_HASH_KEYS=f"{HASH_KEY_ID}:{HASH_KEY}",
        TELEMETRY_HASH_KEY_ID=HASH_KEY_ID,
        PYTHONPATH=str(ROOT),
        PYTHONWARNINGS="ignore",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def django_shell(code: str, env: dict[str, str], data: dict[str, Any]) -> dict[str, Any]:
    """Run ``code`` with ``manage.py shell -c``; input in $AUDIT_BENCH_INPUT, output: last line."""
    env = {**env, "AUDIT_BENCH_INPUT": json.dumps(data, default=str)}
    stdout = support.manage("shell", "-c", code, env=env)
    return json.loads(stdout.strip().splitlines()[-1])


class Gunicorn(support.Service):
    """gunicorn as the Procfile's ``web`` line runs it, on a free port, logging to a file."""

    def __init__(self, env: dict[str, str], logdir: Path, workers: int = 2) -> None:
        self.port = support.free_port()
        argv = support.gunicorn_argv(self.port, workers=workers, timeout="60")
        super().__init__("gunicorn", argv, env, logdir)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        import requests

        self.wait_until(
            lambda: requests.get(f"{self.base}/healthz", timeout=5).status_code == 200, timeout
        )


# -- set-up and load ---------------------------------------------------------------------------

SETUP_CODE = """
import json, os
from datetime import date
from governance.models import SchemaRevision
from ingest.retention import day_partition_create, partitions_maintain
cfg = json.loads(os.environ["AUDIT_BENCH_INPUT"])
moved = 0
for day in cfg["days"]:
    moved += day_partition_create("audit_event", date.fromisoformat(day))
ahead = partitions_maintain(event_class="audit_event")
revision = (
    SchemaRevision.objects.filter(schema__name=cfg["schema"]).order_by("-id")
    .values_list("id", flat=True).first()
)
print(json.dumps({"created_by_day_partition_create": len(cfg["days"]), "rows_moved": moved,
                  "partitions_maintain": ahead, "revision_id": revision}))
"""

USER_CODE = """
import json, os
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from audit.filtersets import hashed
cfg = json.loads(os.environ["AUDIT_BENCH_INPUT"])
user, _ = get_user_model().objects.get_or_create(username=cfg["username"])
user.set_password(cfg["password"])
user.is_staff = True
user.save()
user.groups.add(Group.objects.get(name="security analyst"))
token, _ = Token.objects.get_or_create(user=user)
print(json.dumps({"token": token.key, "actor_hashes": {a: hashed(a) for a in cfg["actors"]},
                  "can_search": get_user_model().objects.get(pk=user.pk).has_perm(
                      "audit.search_auditevent")}))
"""

CAPTURE_CODE = """
import json, os, time
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIRequestFactory, force_authenticate
from audit.api.views import AuditEventListApi
cfg = json.loads(os.environ["AUDIT_BENCH_INPUT"])
user = get_user_model().objects.get(username=cfg["username"])
factory = APIRequestFactory()
view = AuditEventListApi.as_view()
out = {}
for name, spec in cfg["scenarios"].items():
    runs = []
    for attempt in range(cfg["repeat"]):
        if spec["kind"] == "admin":
            client = Client(HTTP_HOST="127.0.0.1")
            client.force_login(user)
            with CaptureQueriesContext(connection) as ctx:
                began = time.perf_counter()
                response = client.get(spec["path"], spec["params"])
                elapsed = time.perf_counter() - began
        else:
            request = factory.get(spec["path"], spec["params"], HTTP_HOST="127.0.0.1")
            force_authenticate(request, user=user)
            with CaptureQueriesContext(connection) as ctx:
                began = time.perf_counter()
                response = view(request)
                response.render()
                elapsed = time.perf_counter() - began
        runs.append({
            "status": response.status_code,
            "view_ms": round(elapsed * 1000, 1),
            "queries": [{"sql": q["sql"] if attempt == 0 else q["sql"][:200],
                         "ms": round(float(q["time"]) * 1000, 1)}
                        for q in ctx.captured_queries],
        })
    out[name] = runs
print(json.dumps(out))
"""


def reusable_load() -> dict[str, Any] | None:
    """The load summary a previous run kept in the bench database, if it is still usable."""
    import psycopg

    try:
        conn = support.connect(DATABASE_URL, connect_timeout=5)
    except psycopg.OperationalError:
        return None
    with conn:
        if conn.execute("SELECT to_regclass('audit_bench_meta')").fetchone()[0] is None:
            return None
        load = conn.execute("SELECT load FROM audit_bench_meta").fetchone()[0]
    loaded = datetime.fromisoformat(load["now"])
    if loaded.date() != datetime.now(UTC).date():
        print(f"the kept data was loaded on {loaded.date()}, not today: loading again")
        return None
    return {**load, "reused": True}


def index_ddl_for_day_tables(conn: Any) -> list[str]:
    """DDL building, on a day table, every index its class partition has (for ATTACH to adopt).

    Constraint indexes (primary key, dedupe unique) become the same constraints, as ATTACH
    only adopts a constraint index for a constraint. ``{table}`` and ``{name}`` are the
    placeholders: every index is named after its day table, because PostgreSQL's own
    names truncate to the same prefix for every day and then race between loader processes.
    """
    rows = conn.execute(
        """
        SELECT pg_get_indexdef(i.indexrelid), c.contype, pg_get_constraintdef(c.oid)
        FROM pg_index i
        LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
        WHERE i.indrelid = %s::regclass
        ORDER BY i.indexrelid
        """,
        [CLASS_TABLE],
    ).fetchall()
    ddl = []
    pattern = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON ONLY \S+ (USING .+)$")
    for definition, contype, constraint in rows:
        if contype in ("p", "u"):
            ddl.append(f"ALTER TABLE {{table}} ADD CONSTRAINT {{name}} {constraint}")
            continue
        match = pattern.match(definition)
        if not match:
            raise RuntimeError(f"unexpected index definition: {definition}")
        ddl.append(f"CREATE {match.group(1) or ''}INDEX {{name}} ON {{table}} {match.group(2)}")
    return ddl


def day_partition_name(day: date) -> str:
    return f"{CLASS_TABLE}_p{day:%Y%m%d}"


def plan_days(
    rows: int, t_end: float, first_id: int, mode: str, unlogged: bool, ddl: list[str]
) -> list[DayTask]:
    """Split rows 0..rows (evenly spaced over the 90 days before ``t_end``) into day tasks."""
    t0 = t_end - DATA_DAYS * 86400
    step = (t_end - t0) / rows
    tasks = []
    today = datetime.fromtimestamp(t_end, UTC).date()
    day = datetime.fromtimestamp(t0, UTC).date()
    while day <= today:
        start = datetime.combine(day, datetime.min.time(), tzinfo=UTC).timestamp()
        k0 = max(0, math.ceil((start - t0) / step))
        k1 = min(rows, math.ceil((start + 86400 - t0) / step))
        if k1 > k0:
            task_mode = "parent" if (mode == "indexed" or day == today) else "bulk"
            tasks.append(
                DayTask(
                    day=day,
                    day_start=start,
                    k0=k0,
                    k1=k1,
                    t0=t0,
                    step=step,
                    first_id=first_id,
                    mode=task_mode,
                    table=day_partition_name(day),
                    unlogged=unlogged,
                    index_ddl=tuple(ddl),
                )
            )
        day += timedelta(days=1)
    return tasks


def load(
    conn: Any, args: argparse.Namespace, generator: Generator, t_end: float, ddl: list[str]
) -> dict[str, Any]:
    """COPY the rows with ``args.workers`` processes, attach the bulk days, analyze."""
    global GENERATOR
    first_id = support.ids_reserve(conn, args.rows)
    tasks = plan_days(args.rows, t_end, first_id, args.load_mode, not args.logged, ddl)
    GENERATOR = generator
    started = time.perf_counter()
    results = []
    done = 0
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=context) as pool:
        for result in pool.map(day_task_run, tasks):
            results.append(result)
            done += result["rows"]
            if len(results) % 10 == 0 or len(results) == len(tasks):
                elapsed = time.perf_counter() - started
                print(
                    f"  {len(results)}/{len(tasks)} days, {done:,} rows, {elapsed:.0f} s "
                    f"({done / elapsed:,.0f} rows/s incl. index builds)",
                    flush=True,
                )
    copy_wall = time.perf_counter() - started
    t = time.perf_counter()
    bulk = [task for task in tasks if task.mode == "bulk"]
    for task in bulk:
        start = datetime.fromtimestamp(task.day_start, UTC).isoformat()
        end = datetime.fromtimestamp(task.day_start + 86400, UTC).isoformat()
        conn.execute(
            f'ALTER TABLE {CLASS_TABLE} ATTACH PARTITION "{task.table}" '
            f"FOR VALUES FROM ('{start}') TO ('{end}')"
        )
        conn.execute(f'ALTER TABLE "{task.table}" DROP CONSTRAINT "{task.table}_bounds"')
    attach_seconds = time.perf_counter() - t
    t = time.perf_counter()
    for task in tasks:
        if task.mode == "parent":
            conn.execute(f'VACUUM (ANALYZE) "{task.table}"')
    conn.execute("ANALYZE ingest_event")
    analyze_seconds = time.perf_counter() - t
    total = time.perf_counter() - started
    loaded = sum(r["rows"] for r in results)
    sizes = conn.execute(
        """
        SELECT count(*), sum(pg_table_size(inhrelid)), sum(pg_indexes_size(inhrelid))
        FROM pg_inherits WHERE inhparent = %s::regclass
        """,
        [CLASS_TABLE],
    ).fetchone()
    return {
        "rows": loaded,
        "mode": args.load_mode,
        "workers": args.workers,
        "past_days_unlogged": bool(bulk) and not args.logged,
        "days": len(tasks),
        "bulk_days": len(bulk),
        "days_through_parent": len(tasks) - len(bulk),
        "copy_and_index_seconds": round(copy_wall, 1),
        "attach_seconds": round(attach_seconds, 1),
        "vacuum_analyze_seconds": round(analyze_seconds, 1),
        "wall_seconds": round(total, 1),
        "rows_per_s": round(loaded / total),
        "copy_seconds_sum": round(sum(r["copy_seconds"] for r in results), 1),
        "index_seconds_sum": round(sum(r["index_seconds"] for r in results), 1),
        "partitions": sizes[0],
        "heap_gb": round(float(sizes[1]) / 2**30, 2),
        "indexes_gb": round(float(sizes[2]) / 2**30, 2),
        "per_day": results,
    }


# -- picking the searched values ---------------------------------------------------------------


def pick_values(conn: Any, generator: Generator, now: datetime) -> dict[str, Any]:
    """The searched values, and how many rows each matches (from the indexes)."""
    words = generator.words_by_rank()
    today_table = day_partition_name(now.date())
    recent_request = conn.execute(
        f'SELECT request_id, occurred_at FROM "{today_table}" '
        "WHERE request_id <> '' AND source <> 'platform' ORDER BY occurred_at DESC "
        "LIMIT 1 OFFSET 500"
    ).fetchone()
    if recent_request is None or recent_request[1] < now - timedelta(hours=23):
        recent_request = conn.execute(
            f"SELECT request_id, occurred_at FROM {CLASS_TABLE} WHERE request_id <> '' "
            "AND occurred_at >= %s AND source <> 'platform' ORDER BY occurred_at DESC "
            "LIMIT 1 OFFSET 500",
            [now - timedelta(hours=23)],
        ).fetchone()
    old_day = day_partition_name((now - timedelta(days=45)).date())
    old_request = conn.execute(
        f"SELECT request_id, occurred_at FROM \"{old_day}\" WHERE request_id <> '' LIMIT 1"
    ).fetchone()
    return {
        "frequent_actor": actor_name(1),
        "rare_actor": actor_name(150_000),
        "recent_request_id": recent_request[0],
        "recent_request_at": recent_request[1].isoformat(),
        "old_request_id": old_request[0],
        "old_request_at": old_request[1].isoformat(),
        "words": words,
    }


def match_counts(conn: Any, values: dict[str, Any], hashes: dict[str, str], since: dict) -> dict:
    """Rows each searched value matches in its window (counted with the indexes)."""
    tsv = "jsonb_to_tsvector('simple', coalesce(payload->'attributes', '{}'), '[\"string\"]')"
    counts: dict[str, int] = {}
    queries = {
        "frequent_actor_7d": (
            f"SELECT count(*) FROM {CLASS_TABLE} WHERE actor_hash = %s AND occurred_at >= %s",
            [hashes[values["frequent_actor"]], since["7d"]],
        ),
        "rare_actor_7d": (
            f"SELECT count(*) FROM {CLASS_TABLE} WHERE actor_hash = %s AND occurred_at >= %s",
            [hashes[values["rare_actor"]], since["7d"]],
        ),
        "rare_actor_90d": (
            f"SELECT count(*) FROM {CLASS_TABLE} WHERE actor_hash = %s",
            [hashes[values["rare_actor"]]],
        ),
        "auth_rejected_24h": (
            f"SELECT count(*) FROM {CLASS_TABLE} WHERE payload->>'outcome' = 'rejected' "
            "AND payload->>'event_name' LIKE 'auth.%%' AND occurred_at >= %s",
            [since["24h"]],
        ),
        "events_24h": (
            f"SELECT count(*) FROM {CLASS_TABLE} WHERE occurred_at >= %s",
            [since["24h"]],
        ),
        "events_7d": (
            f"SELECT count(*) FROM {CLASS_TABLE} WHERE occurred_at >= %s",
            [since["7d"]],
        ),
    }
    for label, word in values["words"].items():
        queries[f"word_{label}_7d"] = (
            f"SELECT count(*) FROM {CLASS_TABLE} WHERE {tsv} @@ plainto_tsquery('simple', %s) "
            "AND occurred_at >= %s",
            [word, since["7d"]],
        )
    for label, (sql, params) in queries.items():
        counts[label] = conn.execute(sql, params).fetchone()[0]
    return counts


# -- latency -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    kind: str  # "api" or "admin"
    params: dict[str, str]
    target_ms: float
    is_target: bool  # counts toward PASS/FAIL (the brief's a-e), or an extra


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def admin_login(session: Any, base: str, username: str, password: str) -> int:
    """Log in through the admin login form (CSRF cookie + token); return the final status."""
    login_url = f"{base}/admin/login/?next=/admin/"
    session.get(login_url, timeout=60)
    token = session.cookies.get("csrftoken", "")
    response = session.post(
        login_url,
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": token,
            "next": "/admin/",
        },
        headers={"Referer": login_url},
        allow_redirects=False,
        timeout=60,
    )
    return response.status_code


def process_cpu_seconds(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / support.CLK_TCK


def children_of(parent: int) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(entry.path, "stat").read_text()
                if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
                    pids.append(int(entry.name))
    return pids


class CpuMeter:
    """CPU seconds of gunicorn (arbiter + workers) and of the bench database's backends."""

    def __init__(self, conn: Any, arbiter: int) -> None:
        self.conn = conn
        self.arbiter = arbiter
        self.server_pids: list[int] = []
        self.refresh()

    def refresh(self) -> None:
        """Find gunicorn's workers again (a worker may have been restarted)."""
        self.server_pids = [self.arbiter, *children_of(self.arbiter)]

    def snapshot(self) -> dict[str, Any]:
        backends = [
            row[0]
            for row in self.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [BENCH_DB],
            ).fetchall()
        ]
        return {
            "at": time.perf_counter(),
            "busy": support.system_busy_seconds(),
            "server": {pid: process_cpu_seconds(pid) or 0.0 for pid in self.server_pids},
            "postgres": {pid: process_cpu_seconds(pid) or 0.0 for pid in backends},
        }

    @staticmethod
    def used(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
        """CPU seconds used between two snapshots, by group, and the wall/busy seconds."""
        used = {"wall": after["at"] - before["at"], "busy": after["busy"] - before["busy"]}
        for group in ("server", "postgres"):
            used[group] = sum(
                cpu - before[group].get(pid, 0.0) for pid, cpu in after[group].items()
            )
        return used


class Series:
    """The requests of one scenario: latencies, statuses, CPU, the last page seen."""

    def __init__(self, scenario: Scenario, session: Any, url: str, headers: dict) -> None:
        self.scenario = scenario
        self.session = session
        self.url = url
        self.headers = headers
        self.samples: list[float] = []
        self.statuses: Counter = Counter()
        self.cpu = Counter()
        self.results: int | None = None
        self.more: bool | None = None
        self.size = 0

    def request(self, meter: CpuMeter | None = None) -> None:
        before = meter.snapshot() if meter else None
        began = time.perf_counter()
        response = self.session.get(
            self.url, params=self.scenario.params, headers=self.headers, timeout=120
        )
        body = response.content
        elapsed = time.perf_counter() - began
        if meter is None:
            return  # a warm-up
        self.cpu.update(CpuMeter.used(before, meter.snapshot()))
        self.samples.append(elapsed)
        self.statuses[str(response.status_code)] += 1
        self.size = len(body)
        content_type = response.headers.get("Content-Type", "")
        if response.status_code == 200 and content_type.startswith("application/json"):
            data = json.loads(body)
            self.results = len(data.get("results", []))
            self.more = bool(data.get("next"))

    def summary(self) -> dict[str, Any]:
        count = max(1, len(self.samples))
        cores = os.cpu_count() or 1
        wall, busy = self.cpu["wall"], self.cpu["busy"]
        ours = self.cpu["server"] + self.cpu["postgres"]
        passed = (
            bool(self.samples)
            and percentile(self.samples, 95) * 1000 < self.scenario.target_ms
            and set(self.statuses) == {"200"}
        )
        return {
            "requests": len(self.samples),
            "statuses": dict(self.statuses),
            "p50_ms": round(percentile(self.samples, 50) * 1000, 1),
            "p95_ms": round(percentile(self.samples, 95) * 1000, 1),
            "max_ms": round(max(self.samples) * 1000, 1),
            "min_ms": round(min(self.samples) * 1000, 1),
            "results_on_page": self.results,
            "more_pages": self.more,
            "response_bytes": self.size,
            "gunicorn_cpu_ms_per_request": round(self.cpu["server"] * 1000 / count, 1),
            "postgres_cpu_ms_per_request": round(self.cpu["postgres"] * 1000 / count, 1),
            "machine_busy": round(busy / (wall * cores), 2) if wall else None,
            "others_share_of_machine": round(max(0.0, busy - ours) / (wall * cores), 2)
            if wall
            else None,
            "passed": passed,
        }


def measure_all(series: list[Series], runs: int, meter: CpuMeter) -> None:
    """Warm-ups, then ``runs`` rounds of one request per scenario (interleaved, so a change
    in the machine's load is shared by every scenario rather than landing on a few)."""
    for item in series:
        for _ in range(WARMUP):
            item.request()
    for round_index in range(runs):
        if round_index % 10 == 0:
            meter.refresh()
        for item in series:
            item.request(meter)


# -- plans -------------------------------------------------------------------------------------


def page_query(queries: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    """The query that reads the page of audit events out of a captured request."""
    candidates = [
        q
        for q in queries
        if q["sql"].lstrip().upper().startswith("SELECT")
        and '"ingest_event"' in q["sql"]
        and "LIMIT" in q["sql"].upper()
        and "EXPLAIN" not in q["sql"].upper()
    ]
    if kind == "api":
        candidates = [q for q in candidates if f"LIMIT {PAGE_LIMIT}" in q["sql"]] or candidates
    if not candidates:
        return None
    return max(candidates, key=lambda q: q["ms"])


SQL_CATEGORIES = (
    "page",
    "estimate",
    "record_dedupe",
    "record_plans",
    "record_write",
    "auth",
    "other",
)


def sql_category(sql: str) -> str:
    """Which part of a request a captured statement belongs to."""
    text = sql.lstrip()
    upper = text.upper()
    if upper.startswith("EXPLAIN"):
        return "estimate"
    if upper.startswith("SELECT EVENT_ID, OCCURRED_AT FROM INGEST_EVENT"):
        return "record_dedupe"  # audit.services.audit_events_append: duplicate lookup
    if (
        "pg_advisory_xact_lock" in text
        or "audit_auditchainhead" in text
        or upper.startswith("INSERT INTO INGEST_EVENT")
        or upper in ("BEGIN", "COMMIT")
        or "SAVEPOINT" in upper
    ):
        return "record_write"  # record_search: advisory lock, insert, chain head
    if '"ingest_event"' in text and upper.startswith("SELECT"):
        return "page"
    if "governance_" in text:
        return "record_plans"  # record_search: the pipeline's schema_plans.refresh(throttle=False)
    if "auth_" in text or "django_session" in text or "authtoken" in text:
        return "auth"
    return "other"


def breakdown(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median in-process view time and SQL time by category (first, cold run left out)."""
    warm = runs[1:] or runs
    result: dict[str, Any] = {
        "runs": len(warm),
        "view_ms": round(statistics.median([r["view_ms"] for r in warm]), 1),
    }
    sql_total = []
    for category in SQL_CATEGORIES:
        sums = [
            sum(q["ms"] for q in r["queries"] if sql_category(q["sql"]) == category) for r in warm
        ]
        result[f"{category}_ms"] = round(statistics.median(sums), 1)
    for r in warm:
        sql_total.append(sum(q["ms"] for q in r["queries"]))
    result["sql_ms"] = round(statistics.median(sql_total), 1)
    result["python_ms"] = round(max(0.0, result["view_ms"] - result["sql_ms"]), 1)
    result["statements"] = round(statistics.median([len(r["queries"]) for r in warm]))
    return result


HEAVY_JOINED_COLUMNS = re.compile(
    r', "governance_schemarevision"\."(?:proto_files|descriptor_set|roles)"'
)


def fetch_ms(conn: Any, sql: str, repeat: int = 5) -> tuple[float, int]:
    """Median wall time of execute + fetchall over psycopg, and the rows fetched."""
    times, rows = [], []
    for _ in range(repeat):
        began = time.perf_counter()
        rows = conn.execute(sql).fetchall()
        times.append(time.perf_counter() - began)
    return round(statistics.median(times) * 1000, 1), len(rows)


def what_if(
    conn: Any, plans: dict[str, Any], dedupe_sql: str | None, today: date, empty: set[str]
) -> dict[str, Any]:
    """Read-only experiments on the same data, for the costs the page plans do not show.

    * page fetch: the API's page query as captured (``select_related`` brings every column
      of ``governance_schemarevision``, among them ``descriptor_set`` and ``proto_files``,
      once per event row) against the same query without those columns.
    * duplicate lookup of ``record_search``: with and without a bound to the chain's day
      (without one, every partition is planned).
    * text search: each ``q`` query's plan under ``random_page_cost`` 4 (the server's) and
      1.1 (heap pages cached or on SSD), which moves the walk/bitmap crossover.
    """
    result: dict[str, Any] = {"page_fetch": {}}
    for key, plan in plans.items():
        sql = plan.get("sql", "")
        if '"governance_schemarevision"."descriptor_set"' not in sql:
            continue
        as_is, rows = fetch_ms(conn, sql)
        slim, _ = fetch_ms(conn, HEAVY_JOINED_COLUMNS.sub("", sql))
        result["page_fetch"][key] = {"rows": rows, "as_is_ms": as_is, "without_ms": slim}
    if dedupe_sql:
        bound = re.compile(
            r" AND occurred_at >= '[^']*'(?:::timestamptz)?"
            r" AND occurred_at < '[^']*'(?:::timestamptz)?"
        )
        if bound.search(dedupe_sql):  # already bounded (audit.services since 48ad25a)
            variants = {"unbounded": bound.sub("", dedupe_sql), "as_is": dedupe_sql}
        else:
            day = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
            variants = {
                "as_is": dedupe_sql,
                "bounded": f"{dedupe_sql} AND occurred_at >= '{day.isoformat()}' "
                f"AND occurred_at < '{(day + timedelta(days=1)).isoformat()}'",
            }
        lookup: dict[str, Any] = {}
        for label, sql in variants.items():
            summary = plan_summary(explain(conn, sql)[1], {}, empty)
            lookup[label] = {
                field: summary[field]
                for field in ("planning_ms", "execution_ms", "partitions_touched")
            }
            lookup[label]["sql"] = sql
        result["dedupe_lookup"] = lookup
    result["text_search_random_page_cost"] = {}
    for key, plan in plans.items():
        if not key.startswith("d") or "sql" not in plan:
            continue
        entry = {}
        for setting in ("4", "1.1"):
            conn.execute(f"SET random_page_cost = {setting}")
            try:
                summary = plan_summary(explain(conn, plan["sql"])[1], {}, empty)
            finally:
                conn.execute("RESET random_page_cost")
            walks = any("occurred_at" in scan for scan in summary["scans"])
            entry[setting] = {
                "execution_ms": summary["execution_ms"],
                "planning_ms": summary["planning_ms"],
                "plan": "time-index walk + tsvector filter" if walks else "full-text bitmap",
                "rows_removed_by_filter": summary["rows_removed_by_filter"],
            }
        result["text_search_random_page_cost"][key] = entry
    return result


def child_index_names(conn: Any) -> dict[str, str]:
    """Index of a day partition -> the class partition's index it is attached to."""
    rows = conn.execute(
        """
        SELECT c.relname, p.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
        WHERE c.relkind = 'i' AND p.relname LIKE %s
        """,
        [f"{CLASS_TABLE}%"],
    ).fetchall()
    return dict(rows)


def empty_partitions(conn: Any, today: date) -> set[str]:
    """Partitions that hold nothing by construction: the default and the days ahead."""
    names = {f"{CLASS_TABLE}_default"}
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass",
        [CLASS_TABLE],
    ).fetchall()
    for (name,) in rows:
        match = re.search(r"_p(\d{8})$", name)
        if match and datetime.strptime(match.group(1), "%Y%m%d").date() > today:
            names.add(name)
    return names


def explain(conn: Any, sql: str) -> tuple[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) twice; return (first, second) plan texts."""
    texts = []
    for _ in range(2):
        rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}").fetchall()
        texts.append("\n".join(row[0] for row in rows))
    return texts[0], texts[1]


def plan_summary(text: str, parents: dict[str, str], empty: set[str]) -> dict[str, Any]:
    """What a plan did: which indexes (per partition), filters, sorts, JIT, times."""
    scans: Counter = Counter()
    for kind, name in re.findall(
        r"(Index Only Scan|Index Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\S+)", text
    ):
        if any(name.startswith(f"{table}_") for table in empty):
            scans["Index Scan (empty default/future partition)"] += 1
        else:
            scans[f"{kind} {parents.get(name, name)}"] += 1
    for name in re.findall(r"Seq Scan on (\S+)", text):
        if name in empty:
            scans["Seq Scan (empty default/future partition)"] += 1
        else:
            scans[f"Seq Scan {name}"] += 1
    removed = sum(int(n) for n in re.findall(r"Rows Removed by Filter: (\d+)", text))
    rechecked = sum(int(n) for n in re.findall(r"Rows Removed by Index Recheck: (\d+)", text))
    heap_rows = sum(
        int(n)
        for n in re.findall(
            r"Bitmap Heap Scan on \S+(?: \S+)?\s+\(cost=[^)]*\)\s+\(actual [^)]*?rows=(\d+)", text
        )
    )
    sorts = re.findall(r"Sort Method: ([^\n]+)", text)
    execution = re.search(r"Execution Time: ([\d.]+) ms", text)
    planning = re.search(r"Planning Time: ([\d.]+) ms", text)
    jit = re.search(r"Timing: Generation ([\d.]+) ms.*?Total ([\d.]+) ms", text, re.S)
    top = text.splitlines()[0].split("  (cost")[0].strip() if text else ""
    buffers = re.search(r"Buffers: shared ([^\n]+)", text)
    partitions = set(re.findall(rf"on ({CLASS_TABLE}_(?:p\d{{8}}|default))", text))
    return {
        "top_node": top,
        "scans": dict(scans.most_common()),
        "partitions_touched": len(partitions),
        "rows_removed_by_filter": removed,
        "rows_removed_by_recheck": rechecked,
        "bitmap_heap_rows": heap_rows,
        "sorts": dict(Counter(sorts)),
        "planning_ms": float(planning.group(1)) if planning else None,
        "execution_ms": float(execution.group(1)) if execution else None,
        "jit_ms": float(jit.group(2)) if jit else None,
        "top_buffers": buffers.group(1) if buffers else None,
    }


def diagnose(summary: dict[str, Any], latency: dict[str, Any], where: dict[str, Any]) -> list:
    """Why a query is over its target, from its plan and the in-process breakdown."""
    notes = []
    scans = " ".join(s for s in summary["scans"] if "empty" not in s)
    execution = summary["execution_ms"] or 0.0
    planning = summary["planning_ms"] or 0.0
    if "Seq Scan ingest_event" in scans:
        notes.append("sequential scan of audit partitions: no usable index for the filter")
    if summary["rows_removed_by_filter"] > 10_000:
        notes.append(
            f"{summary['rows_removed_by_filter']:,} rows read and thrown away by a filter: "
            "the index used does not contain the filtered expression"
        )
    if summary["bitmap_heap_rows"] > 10_000:
        notes.append(
            f"bitmap heap scans fetched {summary['bitmap_heap_rows']:,} rows to keep "
            f"{PAGE_LIMIT}: the index finds the matches but not in (occurred_at, id) order, "
            "so all of them are fetched and sorted"
        )
    if any("top-N" in s or "external" in s for s in summary["sorts"]):
        notes.append(f"sorts: {summary['sorts']}")
    if summary["jit_ms"]:
        notes.append(f"JIT compilation {summary['jit_ms']:.0f} ms (jit=on, plan cost high)")
    if planning > 20:
        notes.append(f"planning {planning:.0f} ms ({summary['partitions_touched']} partitions)")
    p95 = latency["p95_ms"]
    if execution + planning < p95 / 3:
        parts = ", ".join(
            f"{category} {where[f'{category}_ms']:.0f} ms"
            for category in SQL_CATEGORIES
            if where[f"{category}_ms"] >= 1
        )
        notes.append(
            f"the page query (plan + execute {execution + planning:.0f} ms) is not where the "
            f"{p95:.0f} ms p95 goes: in-process median {where['view_ms']:.0f} ms = SQL "
            f"{where['sql_ms']:.0f} ms ({parts}) + Python {where['python_ms']:.0f} ms"
        )
    return notes


# -- run ---------------------------------------------------------------------------------------


PG_SETTINGS = (
    "server_version",
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "random_page_cost",
    "jit",
    "max_parallel_workers_per_gather",
)


def git_state() -> dict[str, Any]:
    """Read-only: the commit and the files changed in the working tree (what was measured)."""
    state: dict[str, Any] = {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        state["head"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--short", "--", "audit", "ingest", "governance"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout
        state["changed"] = [line.strip() for line in status.splitlines()]
    return state


def iso_z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def scenarios_for(values: dict[str, Any], since: dict[str, str]) -> list[Scenario]:
    words = values["words"]
    fast, text = FAST_TARGET_MS, TEXT_TARGET_MS
    return [
        Scenario(
            "a",
            f"(a) actor {values['frequent_actor']} + last 7 days",
            "api",
            {"actor": values["frequent_actor"], "occurred_after": since["7d"]},
            fast,
            True,
        ),
        Scenario(
            "b",
            "(b) request id (last 24 h, default window)",
            "api",
            {"request_id": values["recent_request_id"]},
            fast,
            True,
        ),
        Scenario(
            "c",
            "(c) event_name=auth. + outcome=rejected (24 h)",
            "api",
            {"event_name": "auth.", "outcome": "rejected"},
            fast,
            True,
        ),
        Scenario(
            "d",
            f"(d) q={words['mid']} + last 7 days",
            "api",
            {"q": words["mid"], "occurred_after": since["7d"]},
            text,
            True,
        ),
        Scenario("e", "(e) admin changelist, no filter", "admin", {}, fast, True),
        Scenario(
            "a_rare",
            f"(a+) rare actor {values['rare_actor']} + 7 days",
            "api",
            {"actor": values["rare_actor"], "occurred_after": since["7d"]},
            fast,
            False,
        ),
        Scenario(
            "b_90d",
            "(b+) request id 45 days old, window 90 days",
            "api",
            {"request_id": values["old_request_id"], "occurred_after": since["90d"]},
            fast,
            False,
        ),
        Scenario(
            "d_common",
            f"(d+) q={words['common']} (common) + 7 days",
            "api",
            {"q": words["common"], "occurred_after": since["7d"]},
            text,
            False,
        ),
        Scenario(
            "d_cross",
            f"(d+) q={words['crossover']} (~0.3%) + 7 days",
            "api",
            {"q": words["crossover"], "occurred_after": since["7d"]},
            text,
            False,
        ),
        Scenario(
            "d_rare",
            f"(d+) q={words['rare']} (rare) + 7 days",
            "api",
            {"q": words["rare"], "occurred_after": since["7d"]},
            text,
            False,
        ),
        Scenario("api_all", "(e+) API, no filter (24 h)", "api", {}, fast, False),
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import requests

    workdir = Path(tempfile.mkdtemp(prefix="audit-search-bench-"))
    report: dict[str, Any] = {
        "benchmark": "audit_search",
        "machine": support.machine_facts(),
        "code": git_state(),
        "settings": {
            "rows": args.rows,
            "workers": args.workers,
            "load_mode": args.load_mode,
            "logged": args.logged,
            "runs": args.runs,
            "warmup": WARMUP,
        },
    }
    server: Gunicorn | None = None
    conn = None
    started = time.perf_counter()
    try:
        print(f"set-up: database {BENCH_DB}, Redis db 11, work dir {workdir}", flush=True)
        support.redis_flush(REDIS_URL)
        env = bench_env()
        reused = reusable_load() if args.reuse_db else None
        if reused is not None:
            # --reuse-db: the rows a previous run loaded (and kept with --keep-db).
            conn = support.connect(DATABASE_URL)
            report["postgresql"] = support.pg_settings(conn, PG_SETTINGS)
            report["load"] = reused
            now = datetime.fromisoformat(reused["now"])
            revision_id = conn.execute(
                "SELECT r.id FROM governance_schemarevision r JOIN governance_schema s "
                "ON s.id = r.schema_id WHERE s.name = %s ORDER BY r.id DESC LIMIT 1",
                [SCHEMA],
            ).fetchone()[0]
            generator = Generator(seed=SEED, tag="reuse", revision_id=revision_id)
            print(f"reusing the loaded database: {reused['rows']:,} rows, loaded {now}")
        else:
            support.database_recreate(BENCH_DB)
            t = time.perf_counter()
            support.manage("bootstrap", "--verbosity", "0", env=env)
            now = datetime.now(UTC)
            t_end = now.timestamp() - 30
            today = now.date()
            parent_days = (
                [today - timedelta(days=n) for n in range(DATA_DAYS, -1, -1)]
                if args.load_mode == "indexed"
                else [today]
            )
            setup = django_shell(
                SETUP_CODE, env, {"days": [d.isoformat() for d in parent_days], "schema": SCHEMA}
            )
            report["setup"] = {"wall_seconds": round(time.perf_counter() - t, 1), **setup}
            print(f"  bootstrap + partitions: {report['setup']}", flush=True)
            conn = support.connect(DATABASE_URL)
            report["postgresql"] = support.pg_settings(conn, PG_SETTINGS)
            ddl = index_ddl_for_day_tables(conn)
            report["index_ddl"] = ddl

            # 1. load
            print("building the generator (200k actor hashes) ...", flush=True)
            generator = Generator(
                seed=SEED, tag=secrets.token_hex(4), revision_id=setup["revision_id"]
            )
            print(
                f"loading {args.rows:,} audit events over {DATA_DAYS} days "
                f"({args.load_mode}, {args.workers} workers) ...",
                flush=True,
            )
            report["load"] = load(conn, args, generator, t_end, ddl)
            report["load"]["now"] = now.isoformat()
            summary = {k: v for k, v in report["load"].items() if k != "per_day"}
            print(f"  {summary}", flush=True)
            conn.execute("CREATE TABLE audit_bench_meta (load jsonb NOT NULL)")
            conn.execute("INSERT INTO audit_bench_meta VALUES (%s::jsonb)", [json.dumps(summary)])

        # 2. server and analyst
        password = secrets.token_urlsafe(18)
        values = pick_values(conn, generator, now)
        user = django_shell(
            USER_CODE,
            env,
            {
                "username": ANALYST,
                "password": password,
                "actors": [values["frequent_actor"], values["rare_actor"]],
            },
        )
        hashes = {actor: candidates[0] for actor, candidates in user["actor_hashes"].items()}
        for actor in (values["frequent_actor"], values["rare_actor"]):
            rank = int(actor.split("_")[1])
            if hashes[actor] != generator.actor_hashes[rank - 1]:
                raise RuntimeError(f"the platform hashes {actor} differently from the loader")
        moment = datetime.now(UTC).replace(second=0, microsecond=0)
        since = {
            "7d": iso_z(moment - timedelta(days=7)),
            "90d": iso_z(moment - timedelta(days=90)),
        }
        windows = {
            "7d": moment - timedelta(days=7),
            "24h": datetime.now(UTC) - timedelta(hours=24),
        }
        values["matches"] = match_counts(conn, values, hashes, windows)
        report["values"] = values
        print(f"searched values: {json.dumps(values)}", flush=True)

        report["code_at_start"] = report.pop("code")
        report["code"] = git_state()  # what gunicorn and the capture process load
        metrics_dir = workdir / "prometheus"
        metrics_dir.mkdir()
        server = Gunicorn(bench_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)), workdir)
        server.wait_ready()

        # 3. latency
        scenarios = scenarios_for(values, since)
        api_headers = {"Authorization": f"Token {user['token']}"}
        api_session = requests.Session()
        admin_session = requests.Session()
        login_status = admin_login(admin_session, server.base, ANALYST, password)
        probe = admin_session.get(f"{server.base}{ADMIN_PATH}", timeout=120)
        admin_ok = login_status == 302 and probe.status_code == 200
        report["admin"] = {
            "login_status": login_status,
            "changelist_status": probe.status_code,
            "available": admin_ok,
            "note": ""
            if admin_ok
            else f"{ADMIN_PATH} answered {probe.status_code} (login {login_status}): "
            "measured the API without filter as (e) instead",
        }
        print(f"admin: {report['admin']}", flush=True)
        meter = CpuMeter(conn, server.process.pid)
        series = []
        for scenario in scenarios:
            if scenario.kind == "admin" and admin_ok:
                item = Series(scenario, admin_session, f"{server.base}{ADMIN_PATH}", {})
            else:
                item = Series(scenario, api_session, f"{server.base}{API_PATH}", api_headers)
            series.append(item)
        print(
            f"measuring: {WARMUP} warm-ups each, then {args.runs} rounds of one request per "
            f"query ({len(series)} queries, interleaved) ...",
            flush=True,
        )
        measure_all(series, args.runs, meter)
        latencies: dict[str, Any] = {}
        for item in series:
            result = latencies[item.scenario.key] = item.summary()
            print(
                f"  {item.scenario.label:<50} p50 {result['p50_ms']:>7.1f} ms  p95 "
                f"{result['p95_ms']:>7.1f} ms  {result['statuses']}  CPU/request gunicorn "
                f"{result['gunicorn_cpu_ms_per_request']} ms, postgres "
                f"{result['postgres_cpu_ms_per_request']} ms; machine busy "
                f"{result['machine_busy']:.0%} (others {result['others_share_of_machine']:.0%})",
                flush=True,
            )
        report["load_average_after_latency"] = [round(x, 2) for x in os.getloadavg()]
        report["latency"] = latencies
        report["scenarios"] = {
            s.key: {
                "label": s.label,
                "kind": s.kind if (s.kind == "api" or admin_ok) else "api (admin missing)",
                "params": s.params,
                "target_ms": s.target_ms,
                "is_target": s.is_target,
            }
            for s in scenarios
        }

        # 4. plans
        capture_specs = {}
        for s in scenarios:
            if s.kind == "admin" and admin_ok:
                capture_specs[s.key] = {"kind": "admin", "path": ADMIN_PATH, "params": s.params}
            else:
                capture_specs[s.key] = {"kind": "api", "path": API_PATH, "params": s.params}
        captured = django_shell(
            CAPTURE_CODE,
            env,
            {"username": ANALYST, "scenarios": capture_specs, "repeat": args.capture_repeat},
        )
        parents = child_index_names(conn)
        empty = empty_partitions(conn, now.date())
        plans: dict[str, Any] = {}
        dedupe_sql = None
        for s in scenarios:
            runs = captured[s.key]
            first = runs[0]
            query = page_query(first["queries"], capture_specs[s.key]["kind"])
            entry: dict[str, Any] = {
                "capture_status": first["status"],
                "in_process": breakdown(runs),
                "sql_statements_first_run": [
                    {"ms": q["ms"], "category": sql_category(q["sql"]), "sql": q["sql"][:300]}
                    for q in first["queries"]
                ],
            }
            for q in first["queries"]:
                if dedupe_sql is None and sql_category(q["sql"]) == "record_dedupe":
                    dedupe_sql = q["sql"]
            if query is not None:
                cold, warm = explain(conn, query["sql"])
                entry["sql"] = query["sql"]
                entry["explain_first"] = cold
                entry["explain"] = warm
                entry["summary"] = plan_summary(warm, parents, empty)
                entry["summary_first"] = plan_summary(cold, parents, empty)
                if not latencies[s.key]["passed"]:
                    entry["diagnosis"] = diagnose(
                        entry["summary"], latencies[s.key], entry["in_process"]
                    )
            plans[s.key] = entry
        if dedupe_sql is not None:
            cold, warm = explain(conn, dedupe_sql)
            report["record_search_dedupe"] = {
                "sql": dedupe_sql,
                "explain": warm,
                "summary": plan_summary(warm, parents, empty),
            }
        report["plans"] = plans
        report["what_if"] = what_if(conn, plans, dedupe_sql, now.date(), empty)
        targets = [s for s in scenarios if s.is_target]
        report["passed"] = all(latencies[s.key]["passed"] for s in targets)
    finally:
        if server is not None:
            server.stop()
        if conn is not None:
            conn.close()
        if not args.keep_db:
            with contextlib.suppress(Exception):
                support.database_drop(BENCH_DB)
        with contextlib.suppress(Exception):
            support.redis_flush(REDIS_URL)
        report["total_seconds"] = round(time.perf_counter() - started, 1)
        report["logs"] = str(workdir)
    return report


# -- report ------------------------------------------------------------------------------------


def print_report(report: dict[str, Any]) -> None:
    m, pg, ld = report["machine"], report["postgresql"], report["load"]
    print(f"\nmachine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gb']} GB | {m['platform']}")
    print(
        f"PostgreSQL {pg['server_version']} (shared_buffers {pg['shared_buffers']}, work_mem "
        f"{pg['work_mem']}, jit {pg['jit']}) | load average at start {m['load_average_at_start']}"
    )
    print(f"code: {report['code']}")
    print(
        f"\nload: {ld['rows']:,} audit events in {ld['partitions']} partitions, "
        f"{ld['wall_seconds']} s ({ld['rows_per_s']:,} rows/s): COPY + index builds "
        f"{ld['copy_and_index_seconds']} s with {ld['workers']} workers, attach "
        f"{ld['attach_seconds']} s, vacuum/analyze {ld['vacuum_analyze_seconds']} s; heap "
        f"{ld['heap_gb']} GB, indexes {ld['indexes_gb']} GB; mode {ld['mode']}"
        + (", past days UNLOGGED" if ld["past_days_unlogged"] else "")
        + (f" (reused: loaded by an earlier run at {ld['now']})" if ld.get("reused") else "")
    )
    values = report["values"]
    print(f"matches (rows in the window): {values['matches']}")
    if report["admin"]["note"]:
        print(f"NOTE: {report['admin']['note']}")
    print(
        f"\n{'query':<50} {'p50':>6} {'p95':>6} {'target':>6} {'rows':>4} | {'cpu':>5} "
        f"{'busy':>4} | {'view':>5} {'page':>5} {'dedup':>5} {'plans':>5} {'write':>5} "
        f"{'auth':>5} {'py':>5} | {'plan':>5}  verdict  "
        "page query plan (index: partitions)"
    )
    print("-" * 150)
    for key, scenario in report["scenarios"].items():
        lat = report["latency"][key]
        plan = report["plans"].get(key, {})
        summary = plan.get("summary") or {}
        where = plan.get("in_process") or {}
        sql_ms = (summary.get("execution_ms") or 0) + (summary.get("planning_ms") or 0)
        verdict = "PASS" if lat["passed"] else "FAIL"
        if not scenario["is_target"]:
            verdict = f"({verdict})"
        scans = ", ".join(
            f"{s.replace('ingest_event_audit_event_', '')}: {n}"
            for s, n in (summary.get("scans") or {}).items()
            if "governance" not in s and "empty" not in s
        )
        rows = lat["results_on_page"]
        cpu = lat["gunicorn_cpu_ms_per_request"] + lat["postgres_cpu_ms_per_request"]
        print(
            f"{scenario['label']:<50} {lat['p50_ms']:>6.0f} {lat['p95_ms']:>6.0f} "
            f"{scenario['target_ms']:>6.0f} {'-' if rows is None else rows:>4} | "
            f"{cpu:>5.0f} {lat['machine_busy']:>4.0%} | "
            f"{where.get('view_ms', 0):>5.0f} {where.get('page_ms', 0):>5.0f} "
            f"{where.get('record_dedupe_ms', 0):>5.0f} {where.get('record_plans_ms', 0):>5.0f} "
            f"{where.get('record_write_ms', 0):>5.0f} "
            f"{where.get('auth_ms', 0):>5.0f} {where.get('python_ms', 0):>5.0f} | "
            f"{sql_ms:>5.1f}  {verdict:<7}  {scans}"
        )
    print(
        "\nms. p50/p95: client wall time over HTTP (gunicorn). cpu: CPU time per request of "
        "gunicorn + the bench database's backends; busy: the machine's CPU use meanwhile (all "
        "processes; above ~50% others' work slows every request). view/page/dedup/plans/write/"
        "auth/py: in-process medians (manage.py shell, same view): whole view, the page "
        "query(ies), record_search's duplicate lookup, its schema-plan refresh queries, its "
        "lock + insert + chain head, auth/permission queries, Python (view - SQL). plan: "
        "planning + execution of the page query, warm EXPLAIN ANALYZE. Parenthesised verdicts: "
        "extras."
    )
    dedupe = report.get("record_search_dedupe")
    if dedupe:
        ds = dedupe["summary"]
        print(
            f"\nrecord_search duplicate lookup (audit.services.audit_events_append), run per "
            f"search: planning {ds['planning_ms']} ms + execution {ds['execution_ms']} ms over "
            f"{ds['partitions_touched']} partition(s)"
        )
    what = report.get("what_if") or {}
    if what.get("page_fetch"):
        print(
            "\nwhat-if, page fetch over psycopg (execute + fetchall, median of 5): as captured "
            "vs without governance_schemarevision.descriptor_set/proto_files/roles"
        )
        for key, item in what["page_fetch"].items():
            print(
                f"  {report['scenarios'][key]['label']:<50} {item['rows']:>3} rows: "
                f"{item['as_is_ms']:>6.1f} ms -> {item['without_ms']:>6.1f} ms"
            )
    lookup = what.get("dedupe_lookup")
    if lookup:
        print("what-if, record_search duplicate lookup (audit.services.audit_events_append):")
        for label, item in lookup.items():
            print(
                f"  {label:<10} planning {item['planning_ms']} ms, execution "
                f"{item['execution_ms']} ms, {item['partitions_touched']} partition(s)"
            )
    for key, entry in (what.get("text_search_random_page_cost") or {}).items():
        label = report["scenarios"][key]["label"]
        cells = "; ".join(
            f"random_page_cost {setting}: {item['plan']} {item['execution_ms']} ms"
            for setting, item in entry.items()
        )
        print(f"what-if, {label}: {cells}")
    for key, plan in report["plans"].items():
        scenario = report["scenarios"][key]
        label = scenario["label"]
        if "explain" not in plan:
            print(f"\n=== {label}: no page query captured ===")
            continue
        if scenario["is_target"]:
            print(f"\n=== {label}: page query plan (EXPLAIN ANALYZE, BUFFERS; warm) ===")
            print(plan["sql"])
            print(plan["explain"])
        else:
            summary = plan["summary"]
            print(
                f"\n=== {label}: {summary['top_node']}, {summary['scans']}, planning "
                f"{summary['planning_ms']} ms, execution {summary['execution_ms']} ms "
                "(full plan in the JSON) ==="
            )
        for note in plan.get("diagnosis", []):
            print(f"  DIAGNOSIS: {note}")
    verdict = "PASS" if report["passed"] else "FAIL"
    failed = [
        report["scenarios"][k]["label"]
        for k, s in report["scenarios"].items()
        if s["is_target"] and not report["latency"][k]["passed"]
    ]
    print(
        f"\n{verdict}  p95 < {FAST_TARGET_MS:g} ms for (a)-(c), (e); < {TEXT_TARGET_MS:g} ms "
        f"for (d)" + (f"; over target: {failed}" if failed else "")
    )
    print(f"total run time {report['total_seconds']} s; logs in {report['logs']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=2, help="loader processes")
    parser.add_argument("--load-mode", choices=("bulk", "indexed"), default="bulk")
    parser.add_argument("--logged", action="store_true", help="past day partitions logged")
    parser.add_argument("--runs", type=int, default=30, help="measured requests per query")
    parser.add_argument(
        "--capture-repeat", type=int, default=6, help="in-process runs per query (breakdown)"
    )
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database")
    parser.add_argument(
        "--reuse-db",
        action="store_true",
        help="measure again on the rows a --keep-db run loaded today (no reload)",
    )
    args = parser.parse_args()
    report = run(args)
    print_report(report)
    support.results_write(RESULTS, report)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

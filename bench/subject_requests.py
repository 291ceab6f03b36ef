"""Data-subject requests at scale: lookup, erasure in a real worker, ingest beside it, index cost.

One run against its own database (``telemetry_subject_bench``, created, bootstrapped and
dropped here) and Redis db 13 (broker and results; flushed before and after):

1. **load**: ``--events`` (10,000,000) stored events over the last 60 days, half
   ``client_diagnostic`` and half ``service_metric`` (day partitions for both), COPY-loaded
   from this process with their ``subject_hashes`` (session, device and actor hashes, as
   prepare fills them). One subject (device id ``bench-subject-device``) has ``--subject-events``
   (1,000) of them, spread evenly over the 60 days and both classes. The GIN subject index
   is dropped for the load and built after it (timed), as one would for a bulk load.
2. **lookup**: the selector's query (``privacy.selectors.subject_counts``: per class and
   day) and the export's query (every row of the subject with its schema), by
   ``subject_hashes && ARRAY[...]`` with the request's hashes (every key id), 5 times each;
   the first and the median reported. Goal: under 100 ms.
3. **ingest idle**: gunicorn as the Procfile runs it (2 workers); one-event JSON requests
   open loop at ``--rate`` (30/s) for ``--baseline-seconds``; latency from the scheduled
   send (queueing included).
4. **erasure**: an erasure is submitted and approved (two privacy officers) in a Django
   subprocess; the approval queues ``privacy.tasks.erase_subject`` and a Celery worker
   (``--pool solo``, its own process) runs it with the default batch size. Reported: the
   time from approval to the last batch (rows gone) and to the certificate (which waits
   for the race margin: one plan refresh plus the ingest statement timeout after the
   suppression point, then sweeps once more), the worker's peak RSS (``VmHWM`` of the solo
   worker after the task, and ``VmRSS`` sampled every 50 ms), the certificate's counts and
   that no row of the subject is left. Ingest runs at the same rate through it; the p99
   of requests due between approval and the certificate is compared with idle.
   Control: the same load around a suppression of an unknown subject (a policy change, so
   every process reloads its plans, but no erasure work), over a window as long.
5. **index cost**: native ingest throughput (batches of 500 ``client_diagnostic`` events
   with device and session ids, from 4 threads, ``--round-seconds`` per round) with and
   without the subject index, ``--rounds`` (3) of each, alternating. Inserts only maintain
   the index of the partition they land in (today's), so the parent index is dropped and
   today's partitions' GIN index built before each "with" round and dropped before each
   "without" round (cheap to switch, so rounds can interleave).

PostgreSQL, gunicorn, the worker and this load generator share the machine's cores with
whatever else runs (other engineers' tests and benches on the reference machine); the load
average at start and end is reported.

Prints a table and writes ``bench/results/subject_requests.json``. ``SUBJECT_BENCH_DB`` and
``SUBJECT_BENCH_REDIS_URL`` choose another database and Redis db.

Run: /work/main/.venv/bin/python bench/subject_requests.py [--quick] [--events N]
     [--subject-events N] [--rate R] [--keep-db]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import support  # noqa: E402 (needs the repo on sys.path)
from bench.retention import (  # noqa: E402
    IngestLoad,
    RssSampler,
    django_run_args,
    gunicorn_start,
    gunicorn_wait,
    http_request,
    vm_status,
)

BIN = Path(sys.executable).parent
BENCH_DB = os.environ.get("SUBJECT_BENCH_DB", "telemetry_subject_bench")
DATABASE_URL = f"{support.PG_SERVER}/{BENCH_DB}"
REDIS_URL = os.environ.get("SUBJECT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
RESULTS = ROOT / "bench" / "results" / "subject_requests.json"
CLASSES = (
    ("client_diagnostic", "telemetry.client_diagnostic.v1"),
    ("service_metric", "telemetry.service_metric.v1"),
)
DATA_DAYS = 60
SUBJECT_DEVICE = "bench-subject-device"
INDEX = "ingest_event_subject_idx"
INDEX_SQL = (
    f"CREATE INDEX {INDEX} ON ingest_event USING gin (subject_hashes) "
    "WHERE subject_hashes IS NOT NULL"
)
COPY_COLUMNS = (
    "id",
    "event_class",
    "schema_revision_id",
    "source",
    "event_id",
    "occurred_at",
    "received_at",
    "actor_hash",
    "ingest_request_id",
    "payload",
    "redactions",
    "subject_hashes",
)
COPY_CHUNK = 20_000
THROUGHPUT_THREADS = 4
THROUGHPUT_BATCH = 500
GOALS = {"lookup_ms": 100, "erasure_seconds": 30, "worker_peak_rss_mb": 200, "p99_ratio": 2.0}


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of every Django process: the bench database and Redis db."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_RESULT_BACKEND=REDIS_URL,
        DJANGO_SETTINGS_MODULE="telemetry_platform.settings",
        DEBUG="false",
        TELEMETRY_RATE_LIMIT_EVENTS_PER_SECOND="1000000",
        TELEMETRY_RATE_LIMIT_BYTES_PER_SECOND="0",
        PYTHONPATH=str(ROOT),
        PYTHONWARNINGS="ignore",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


SETUP_CODE = """
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from governance.models import EventClass, SchemaRevision
from governance.roles import PRIVACY_OFFICER
from ingest.retention import day_partition_create, partitions_maintain
from privacy.identifiers import subject_hashes_from

days, device = int(sys.argv[1]), sys.argv[2]
classes = sys.argv[3].split(",")
EventClass.objects.filter(name__in=classes).update(retention_days=days + 30)
today = timezone.now().date()
for name in classes:
    for offset in range(days, -1, -1):
        day_partition_create(name, today - timedelta(days=offset))
    partitions_maintain(event_class=name)
group = Group.objects.get(name=PRIVACY_OFFICER)
for username in ("bench-olga", "bench-pete"):
    get_user_model().objects.create_user(username, is_staff=True).groups.add(group)
revisions = {
    name: SchemaRevision.objects.filter(schema__name=name).order_by("-id").values_list(
        "id", flat=True).first()
    for name in sys.argv[4].split(",")
}
print(json.dumps({"revisions": revisions,
                  "subject_hashes": subject_hashes_from({"device_id": [device]})}))
"""

ERASE_CODE = """
import time
from django.contrib.auth import get_user_model
from privacy.services import subject_request_approve, subject_request_submit

users = get_user_model().objects
request = subject_request_submit(kind="erasure", identifiers={"device_id": [sys.argv[1]]},
                                 reason="bench", actor=users.get(username="bench-olga"))
approved_at = time.time()
subject_request_approve(request=request, actor=users.get(username="bench-pete"))
print(json.dumps({"request": request.pk, "approved_epoch": approved_at}))
"""


SUPPRESS_CODE = """
import time
from django.contrib.auth import get_user_model
from privacy.services import subject_request_submit

submitted = time.time()
subject_request_submit(kind="suppression", identifiers={"device_id": [sys.argv[1]]},
                       reason="bench control", actor=get_user_model().objects.get(
                           username="bench-olga"))
print(json.dumps({"submitted_epoch": submitted}))
"""


def _slowest(load: IngestLoad, window: tuple[float, float], since: float) -> list[dict]:
    """The five slowest requests due in ``window``: when due (s after ``since``), how long."""
    return [
        {"due_after_s": round(epoch - since, 2), "ms": round((done - due) * 1000, 1)}
        for due, epoch, done in load.slowest(window, 5)
    ]


def policy_change_control(env: dict, load: IngestLoad, seconds: float) -> dict:
    """The same ingest load around a suppression of an unknown subject: a policy change
    (epoch bump, plans recompiled by every process) without any erasure work."""
    load.start()
    time.sleep(1.0)
    submitted = django_run_args(SUPPRESS_CODE, env, "bench-nobody-device")["submitted_epoch"]
    time.sleep(seconds)
    load.stop()
    window = (submitted, submitted + seconds)
    return {**load.summary(window), "slowest": _slowest(load, window, submitted)}


def _hex(seed: str, length: int = 64) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


class Rows:
    """COPY text lines of stored events of both classes; every ``subject_every``-th row is
    the subject's (its device hash), the rest spread over 3,000 devices and 5,000 sessions."""

    def __init__(self, tag: str, revisions: dict[str, int], subject_hash: str, every: int) -> None:
        self.tag = tag
        self.revisions = revisions
        self.subject_hash = subject_hash
        self.every = every
        self.devices = [f"k1:{_hex(f'{tag}device{i}')}" for i in range(3000)]
        self.sessions = [f"k1:{_hex(f'{tag}session{i}')}" for i in range(5000)]
        self.actors = [f"sha256:{_hex(f'{tag}actor{i}')}" for i in range(2000)]
        self.requests = [_hex(f"{tag}request{i}", 32) for i in range(4096)]

    def lines(self, first_id: int, start: int, stop: int, total: int, t0: float, span: float):
        step = span / total
        out = []
        fromtimestamp = datetime.fromtimestamp
        for k in range(start, stop):
            event_class, schema = CLASSES[k % 2]
            occurred = fromtimestamp(t0 + k * step, UTC).isoformat()
            received = fromtimestamp(t0 + k * step + 1.5, UTC).isoformat()
            event_id = f"{self.tag}-{k:010d}"
            device = self.subject_hash if k % self.every == 0 else self.devices[k % 3000]
            session, actor = self.sessions[k % 5000], self.actors[k % 2000]
            if event_class == "client_diagnostic":
                body = (
                    f'"name":"sync.reconnect","reason_code":"network_path_changed",'
                    f'"attributes":{{"attempt":"{k % 5}","backoff_ms":"950"}}'
                )
                source = "ios-client"
            else:
                body = (
                    f'"name":"auth.verify.completed","kind":"KIND_COUNTER","value":{k % 97},'
                    f'"labels":{{"region":"eu-west-1"}},"service":"auth","unit":"1"'
                )
                source = "auth-service"
            out.append(
                f"{first_id + k}\t{event_class}\t{self.revisions[schema]}\t{source}\t"
                f"{event_id}\t{occurred}\t{received}\t{actor}\t"
                f"{self.requests[(k // 20) % 4096]}\t"
                f'{{"envelope":{{"event_id":"{event_id}","occurred_at":"{occurred[:-6]}Z",'
                f'"source":"{source}","correlation":{{"session_id":"{session}",'
                f'"device_id":"{device}"}},"actor_scope_hash":"{actor}"}},{body}}}\t'
                '[["envelope.correlation.session_id","hash"],'
                '["envelope.correlation.device_id","hash"]]\t'
                f"{{{session},{device},{actor}}}\n"
            )
        return "".join(out)


def copy_load(conn: Any, rows: Rows, total: int, t0: float, span: float) -> dict[str, Any]:
    """COPY ``total`` rows in one transaction; return timing."""
    first_id = support.ids_reserve(conn, total)
    sql = f"COPY ingest_event ({', '.join(COPY_COLUMNS)}) FROM STDIN"
    started = time.perf_counter()
    with conn.transaction(), conn.cursor() as cursor, cursor.copy(sql) as copy:
        for start in range(0, total, COPY_CHUNK):
            copy.write(rows.lines(first_id, start, min(total, start + COPY_CHUNK), total, t0, span))
            if start and start % 1_000_000 == 0:
                print(f"  {start:,} rows ...", flush=True)
    wall = time.perf_counter() - started
    return {"rows": total, "wall_seconds": round(wall, 1), "rows_per_s": round(total / wall)}


COUNTS_SQL = (
    "SELECT event_class, (occurred_at AT TIME ZONE 'UTC')::date, count(*) FROM ingest_event "
    "WHERE subject_hashes && %s::text[] GROUP BY 1, 2 ORDER BY 1, 2"
)
EXPORT_SQL = (
    "SELECT e.event_class, s.name, r.version, e.source, e.event_id, e.occurred_at, "
    "e.payload::text FROM ingest_event e "
    "JOIN governance_schemarevision r ON r.id = e.schema_revision_id "
    "JOIN governance_schema s ON s.id = r.schema_id "
    "WHERE e.subject_hashes && %s::text[] ORDER BY e.occurred_at, e.id"
)


def timed_query(conn: Any, sql: str, hashes: list[str], repeat: int = 5) -> dict[str, Any]:
    """Run ``sql`` ``repeat`` times; first and median wall time in ms, and rows returned."""
    times, rows = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        rows = len(conn.execute(sql, [hashes]).fetchall())
        times.append((time.perf_counter() - started) * 1000)
    return {
        "first_ms": round(times[0], 1),
        "median_ms": round(statistics.median(times), 1),
        "max_ms": round(max(times), 1),
        "rows": rows,
    }


def subject_total(conn: Any, hashes: list[str]) -> int:
    return conn.execute(
        "SELECT count(*) FROM ingest_event WHERE subject_hashes && %s::text[]", [hashes]
    ).fetchone()[0]


def worker_start(env: dict[str, str], logdir: Path) -> support.Service:
    argv = [
        str(BIN / "celery"),
        "-A",
        "telemetry_platform",
        "worker",
        "--queues",
        "maintenance",
        "--pool",
        "solo",
        "--loglevel",
        "INFO",
        "--hostname",
        "subject-bench@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    return support.Service("celery-worker", argv, env, logdir)


def worker_wait(worker: support.Service, timeout: float = 90.0) -> None:
    from celery import Celery

    app = Celery("subject_bench", broker=REDIS_URL, backend=REDIS_URL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.check_alive()
        if app.control.ping(destination=[f"subject-bench@{socket.gethostname()}"], timeout=1):
            return
    raise RuntimeError(f"Celery worker not ready in {timeout:g}s:\n{worker.log_tail()}")


def erasure_run(conn: Any, env: dict, worker: support.Service, load: IngestLoad) -> dict:
    """Submit and approve an erasure (queued to the worker) with ingest running; follow it."""
    hwm_before = vm_status(worker.pid)["VmHWM"]
    load.start()
    time.sleep(1.0)
    with RssSampler(worker.pid) as sampler:
        started = django_run_args(ERASE_CODE, env, SUBJECT_DEVICE)
        request_id, approved = started["request"], started["approved_epoch"]
        found = None
        rows_gone_at = None
        deadline = time.time() + 600
        while time.time() < deadline:
            status, erased, before = conn.execute(
                "SELECT status, rows_erased, counts_before FROM privacy_subjectrequest "
                "WHERE id = %s",
                [request_id],
            ).fetchone()
            if before and found is None:
                found = sum(sum(days.values()) for days in before.values())
            if rows_gone_at is None and found is not None and erased >= found:
                rows_gone_at = time.time()
            if status in ("completed", "retained"):
                break
            time.sleep(0.02)
        certified = time.time()
    time.sleep(1.0)
    load.stop()
    row = conn.execute(
        "SELECT status, rows_erased, started_at, finished_at, certificate "
        "FROM privacy_subjectrequest WHERE id = %s",
        [request_id],
    ).fetchone()
    status, rows_erased, started_at, finished_at, certificate = row
    status_file = vm_status(worker.pid)
    return {
        "request": request_id,
        "status": status,
        "rows_erased": rows_erased,
        "seconds_to_rows_gone": round((rows_gone_at or certified) - approved, 2),
        "seconds_to_certificate": round(certified - approved, 2),
        "worker_run_seconds": round((finished_at - started_at).total_seconds(), 2),
        "worker_hwm_before_mb": round(hwm_before, 1),
        "worker_hwm_mb": round(status_file["VmHWM"], 1),
        "worker_rss_sampled_max_mb": round(sampler.max_rss, 1),
        "certificate": {
            key: certificate[key]
            for key in ("rows_erased", "rows_retained", "found_nothing", "counts_after")
        },
        "certificate_days": sum(len(days) for days in certificate["counts_before"].values()),
        "ingest_during": load.summary((approved, certified)),
        "slowest": _slowest(load, (approved, certified), approved),
    }


class Throughput:
    """Native JSON batches of client diagnostics from several threads for a fixed time."""

    def __init__(self, port: int, secret: str, phase: str) -> None:
        self.port, self.phase = port, phase
        self.headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        self.accepted = 0
        self.failed = 0
        self._lock = threading.Lock()

    def _body(self, thread: int, number: int) -> bytes:
        occurred = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        events = [
            {
                "envelope": {
                    "event_id": f"tp-{self.phase}-{thread}-{number}-{i}",
                    "occurred_at": occurred,
                    "correlation": {
                        "device_id": f"device-{(number * 7 + i) % 3000}",
                        "session_id": f"session-{thread}-{number}",
                    },
                },
                "name": "sync.reconnect",
            }
            for i in range(THROUGHPUT_BATCH)
        ]
        return json.dumps({"events": events}).encode()

    def _worker(self, thread: int, stop_at: float) -> None:
        number = 0
        while time.perf_counter() < stop_at:
            body = self._body(thread, number)
            number += 1
            status, data = http_request(
                self.port,
                "POST",
                "/api/v1/events?schema=telemetry.client_diagnostic.v1",
                body,
                self.headers,
            )
            accepted = json.loads(data)["accepted"] if status == 200 else 0
            with self._lock:
                self.accepted += accepted
                self.failed += THROUGHPUT_BATCH - accepted

    def run(self, seconds: float) -> dict[str, Any]:
        started = time.perf_counter()
        threads = [
            threading.Thread(target=self._worker, args=(j, started + seconds), daemon=True)
            for j in range(THROUGHPUT_THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        return {
            "accepted": self.accepted,
            "not_accepted": self.failed,
            "wall_seconds": round(wall, 2),
            "events_per_s": round(self.accepted / wall),
        }


def todays_partitions(conn: Any) -> list[str]:
    """The day partitions today's events land in (one per class)."""
    return [
        conn.execute(
            "SELECT tableoid::regclass::text FROM ingest_event WHERE event_class = %s "
            "ORDER BY occurred_at DESC LIMIT 1",
            [event_class],
        ).fetchone()[0]
        for event_class, _ in CLASSES
    ]


def throughput_rounds(conn: Any, port: int, secret: str, args: argparse.Namespace) -> dict:
    """Native ingest events/s, alternating rounds with and without the subject index."""
    conn.execute(f"DROP INDEX IF EXISTS {INDEX}")
    partitions = todays_partitions(conn)
    rounds = []
    for number in range(args.rounds * 2):
        index = number % 2 == 0
        for position, partition in enumerate(partitions):
            name = f"bench_subject_idx_{position}"
            if index:
                t = time.perf_counter()
                conn.execute(
                    f"CREATE INDEX {name} ON {partition} USING gin (subject_hashes) "
                    "WHERE subject_hashes IS NOT NULL"
                )
                build = round(time.perf_counter() - t, 2)
            else:
                conn.execute(f"DROP INDEX {name}")
                build = None
        phase = f"{'with' if index else 'without'}-{number // 2 + 1}"
        result = Throughput(port, secret, phase).run(args.round_seconds)
        rounds.append({"phase": phase, "subject_index": index, "index_build_s": build, **result})
        print(f"  throughput {phase}: {result}", flush=True)
    with_index = statistics.mean(r["events_per_s"] for r in rounds if r["subject_index"])
    without = statistics.mean(r["events_per_s"] for r in rounds if not r["subject_index"])
    return {
        "partitions": partitions,
        "rounds": rounds,
        "with_index_mean_events_per_s": round(with_index),
        "without_index_mean_events_per_s": round(without),
        "cost_percent": round(100 * (without - with_index) / without, 1) if without else None,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="subject-bench-"))
    report: dict[str, Any] = {
        "benchmark": "subject_requests",
        "machine": support.machine_facts(),
        "steps": {},
    }
    steps = report["steps"]
    services: list[support.Service] = []
    conn = None
    started = time.perf_counter()
    try:
        print(f"set-up: database {BENCH_DB}, Redis {REDIS_URL}, work dir {workdir}", flush=True)
        support.redis_flush(REDIS_URL)
        support.database_recreate(BENCH_DB)
        env = bench_env()
        support.manage("bootstrap", "--verbosity", "0", env=env)
        setup = django_run_args(
            SETUP_CODE,
            env,
            str(DATA_DAYS),
            SUBJECT_DEVICE,
            ",".join(c for c, _ in CLASSES),
            ",".join(s for _, s in CLASSES),
        )
        hashes = setup["subject_hashes"]
        stored_hash = next(h for h in hashes if h.startswith("k1:"))
        secret = support.manage("create_api_key", "--name", "bench", env=env).strip()
        conn = support.connect(DATABASE_URL)

        # 1. load (index dropped, then built)
        conn.execute(f"DROP INDEX IF EXISTS {INDEX}")
        now = time.time()
        every = max(1, args.events // args.subject_events)
        rows = Rows(f"sr{int(now)}", setup["revisions"], stored_hash, every)
        print(f"loading {args.events:,} events (two classes, 60 days) with COPY ...", flush=True)
        load = copy_load(conn, rows, args.events, now - DATA_DAYS * 86400, DATA_DAYS * 86400 - 600)
        t = time.perf_counter()
        conn.execute(INDEX_SQL)
        load["subject_index_build_seconds"] = round(time.perf_counter() - t, 1)
        # VACUUM, not only ANALYZE: autovacuum of the fresh partitions would otherwise run
        # during the idle window (bench/retention.py found it made "idle" slower than busy).
        t = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) ingest_event")
        load["vacuum_analyze_seconds"] = round(time.perf_counter() - t, 1)
        load["subject_events"] = subject_total(conn, hashes)
        load["table_size_mb"] = round(
            conn.execute(
                "SELECT sum(pg_total_relation_size(c.oid)) / 1048576.0 FROM pg_class c "
                "WHERE c.relname LIKE 'ingest_event%%' AND c.relkind IN ('r', 'i')"
            ).fetchone()[0]
        )
        steps["load"] = load
        print(f"  {load}", flush=True)

        # 2. lookup
        steps["lookup"] = {
            "hashes_in_request": len(hashes),
            "counts_per_class_and_day": timed_query(conn, COUNTS_SQL, hashes),
            "export_rows": timed_query(conn, EXPORT_SQL, hashes),
        }
        print(f"lookup: {steps['lookup']}", flush=True)

        # services
        metrics_dir = workdir / "prometheus"
        metrics_dir.mkdir()
        server, port = gunicorn_start(bench_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)), workdir)
        services.append(server)
        worker = worker_start(env, workdir)
        services.append(worker)
        gunicorn_wait(server, port)
        worker_wait(worker)
        warm = IngestLoad(port, secret, args.rate, "warm").start()
        time.sleep(2)
        warm.stop()

        # 3. idle ingest, after a checkpoint (the load's dirty pages written out first)
        conn.execute("CHECKPOINT")
        print(f"ingest idle ({args.baseline_seconds:g} s at {args.rate:g}/s) ...", flush=True)
        idle = IngestLoad(port, secret, args.rate, "idle").start()
        time.sleep(args.baseline_seconds)
        steps["ingest_idle"] = idle.stop().summary()
        print(f"  {steps['ingest_idle']}", flush=True)

        # 4. erasure
        print("erasure through the worker, ingest running ...", flush=True)
        erasure = erasure_run(conn, env, worker, IngestLoad(port, secret, args.rate, "erasure"))
        erasure["subject_rows_left"] = subject_total(conn, hashes)
        steps["erasure"] = erasure
        print(f"  {json.dumps(erasure, default=str)}", flush=True)

        # 4b. control: a policy change alone (no erasure), same load, same window length
        print("control: a suppression alone (policy epoch bump), ingest running ...", flush=True)
        steps["policy_change_control"] = policy_change_control(
            env, IngestLoad(port, secret, args.rate, "control"), erasure["seconds_to_certificate"]
        )
        print(f"  {steps['policy_change_control']}", flush=True)

        # 5. ingest throughput with and without the subject index, rounds alternating.
        # Inserts only touch the index of the partition they land in (today's), so the
        # parent index is dropped and today's partition's index built (or dropped) per
        # round: cheap to switch, hence interleaved rounds rather than one of each.
        steps["throughput"] = throughput_rounds(conn, port, secret, args)

        idle_p99 = steps["ingest_idle"]["p99_ms"]
        during = erasure["ingest_during"]
        lookup_ms = max(
            steps["lookup"]["counts_per_class_and_day"]["median_ms"],
            steps["lookup"]["export_rows"]["median_ms"],
        )
        report["goals"] = {
            "lookup_median_ms": lookup_ms,
            "erasure_seconds_to_certificate": erasure["seconds_to_certificate"],
            "worker_peak_rss_mb": erasure["worker_hwm_mb"],
            "p99_idle_ms": idle_p99,
            "p99_during_erasure_ms": during["p99_ms"],
            "p99_ratio": round(during["p99_ms"] / idle_p99, 2) if idle_p99 else None,
            "requests_during_erasure": during["ok"],
            "p99_after_policy_change_alone_ms": steps["policy_change_control"]["p99_ms"],
            "subject_index_cost_percent": steps["throughput"]["cost_percent"],
        }
        goals = report["goals"]
        report["met"] = {
            "lookup_under_100_ms": lookup_ms < GOALS["lookup_ms"],
            "erasure_under_30_s": erasure["seconds_to_certificate"] < GOALS["erasure_seconds"],
            "worker_rss_under_200_mb": erasure["worker_hwm_mb"] < GOALS["worker_peak_rss_mb"],
            "p99_at_most_2x": goals["p99_ratio"] is not None
            and goals["p99_ratio"] <= GOALS["p99_ratio"],
            "index_cost_within_10_percent": goals["subject_index_cost_percent"] is not None
            and goals["subject_index_cost_percent"] <= 10,
            "no_subject_row_left": erasure["subject_rows_left"] == 0,
        }
        report["settings"] = {
            "events": args.events,
            "subject_events": args.subject_events,
            "rate_per_s": args.rate,
            "baseline_seconds": args.baseline_seconds,
            "round_seconds": args.round_seconds,
            "rounds_each": args.rounds,
            "throughput_threads": THROUGHPUT_THREADS,
            "throughput_batch": THROUGHPUT_BATCH,
            "gunicorn_workers": 2,
        }
    finally:
        for service in reversed(services):
            service.stop()
        if conn is not None:
            conn.close()
        if not args.keep_db:
            support.database_drop(BENCH_DB)
        with contextlib.suppress(Exception):
            support.redis_flush(REDIS_URL)
        report["total_seconds"] = round(time.perf_counter() - started, 1)
        report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        report["logs"] = str(workdir)
    return report


def print_report(report: dict[str, Any]) -> None:
    steps, goals, met = report["steps"], report.get("goals", {}), report.get("met", {})
    load, erasure = steps.get("load", {}), steps.get("erasure", {})
    lines = [
        ("events loaded (COPY)", f"{load.get('rows', 0):,} in {load.get('wall_seconds')} s"),
        ("subject events", f"{load.get('subject_events')}"),
        ("subject index build", f"{load.get('subject_index_build_seconds')} s"),
        ("lookup (median of 5)", f"{goals.get('lookup_median_ms')} ms"),
        ("erasure: rows gone", f"{erasure.get('seconds_to_rows_gone')} s"),
        ("erasure: certificate", f"{goals.get('erasure_seconds_to_certificate')} s"),
        ("worker peak RSS (VmHWM)", f"{goals.get('worker_peak_rss_mb')} MB"),
        ("ingest p99 idle", f"{goals.get('p99_idle_ms')} ms"),
        (
            "ingest p99 during erasure",
            f"{goals.get('p99_during_erasure_ms')} ms "
            f"({goals.get('requests_during_erasure')} requests)",
        ),
        ("p99 ratio", f"{goals.get('p99_ratio')}"),
        (
            "ingest p99 after a policy change alone",
            f"{goals.get('p99_after_policy_change_alone_ms')} ms",
        ),
    ]
    for entry in steps.get("throughput", {}).get("rounds", []):
        lines.append((f"native ingest {entry['phase']}", f"{entry['events_per_s']:,} events/s"))
    lines.append(("subject index cost", f"{goals.get('subject_index_cost_percent')} %"))
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        print(f"{name:<{width}}  {value}")
    for name, ok in met.items():
        print(f"  {'ok  ' if ok else 'MISS'} {name}")
    print(
        f"load average start {report['machine']['load_average_at_start']}, end "
        f"{report['machine'].get('load_average_at_end')}; {report['total_seconds']} s in all"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--subject-events", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=30.0, help="ingest requests per second")
    parser.add_argument("--baseline-seconds", type=float, default=15.0)
    parser.add_argument("--round-seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3, help="rounds with and without the index")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="200k events, 5 s baseline, 2+2 throughput rounds of 5 s",
    )
    args = parser.parse_args()
    if args.quick:
        args.events = min(args.events, 200_000)
        args.baseline_seconds = min(args.baseline_seconds, 5.0)
        args.round_seconds = min(args.round_seconds, 5.0)
        args.rounds = min(args.rounds, 2)
    report = run(args)
    print_report(report)
    support.results_write(RESULTS, report)
    return 0 if all(report.get("met", {}).values()) and report.get("met") else 1


if __name__ == "__main__":
    sys.exit(main())

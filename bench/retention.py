"""Retention purge at scale: drop + batched delete through a real Celery worker.

What is measured, all in one run against a dedicated database
(``telemetry_retention_bench``, created, bootstrapped and dropped by this script) and
Redis db 12 (broker, result backend, rate-limit buckets; flushed before and after):

1. **load**: day partitions for the last 60 days of ``client_diagnostic`` are created
   (``ingest.retention.day_partition_create`` per day, then ``partitions_maintain``), and
   ``--rows`` (5,000,000) events shaped like stored client diagnostics
   (``telemetry.client_diagnostic.v1`` revision, unique event ids, occurred-at spread
   evenly over the 60 days, a ~350-byte redacted jsonb payload with hashed session and
   device ids, ``redactions``, actor hash, ingest request id, a trace id on a quarter of
   the rows) are loaded with psycopg 3 ``COPY ingest_event (...) FROM STDIN`` from this
   process over one connection, then ``ANALYZE``d.
2. **purge**: ``client_diagnostic`` keeps 30 days (its default). A legal hold covers the
   first 12 hours of one expired day (45 days ago), so that day's partition cannot be
   dropped: its unheld half and the expired part of the boundary day go through the
   batched DELETE, every other expired day is detached and dropped.
   ``celery -A telemetry_platform worker --queues maintenance --pool solo`` runs as a
   subprocess; ``ingest.tasks.purge_expired_events("client_diagnostic", "bench")`` is sent
   by name and its result awaited (Redis result backend). Reported: wall time from send to
   result, the PurgeRun row (partitions dropped, rows deleted, rows kept by holds,
   duration), and the worker's peak RSS (``VmHWM`` of the solo worker, which runs tasks in
   its main process; sampled before the task, after it, and ``VmRSS`` every 50 ms).
   The data left is checked: nothing older than the cutoff but held rows. While a purge
   runs, ``pg_stat_activity`` is sampled every 50 ms: roughly how long the purge's backend
   spends per statement kind (count(*) before a drop, DETACH, DROP, batched DELETE, COMMIT)
   and whether anything waits on a lock.
3. **ingest latency**: gunicorn as the Procfile runs it (2 sync workers, ``DEBUG=false``,
   ``PROMETHEUS_MULTIPROC_DIR``, rate limit raised); one-event JSON requests of
   ``telemetry.client_diagnostic.v1`` (``?schema=``) open loop at ``--rate`` (50/s) from 8
   threads, latency measured from each request's scheduled send time (queueing included)
   and from its actual send (service time). Measured for
   ``--baseline-seconds`` without any purge, then during every later step; the "during"
   figures keep only requests scheduled inside the step's window (the PurgeRun's
   started/finished times for purges).
4. **naive**: ``--naive-rows`` (500,000) expired ``service_metric`` rows (100-120 days old,
   retention 90) COPYed into the class's default partition, then
   ``Event.objects.filter(event_class="service_metric", occurred_at__lt=cutoff).delete()``
   in a fresh Django subprocess (its ``VmHWM`` and SQL statement count reported). The same
   rows are loaded again and purged by the Celery worker (no day partition: batched DELETE
   only), the like-for-like comparison.

PostgreSQL, gunicorn, the Celery worker and this load generator share the machine's
cores (2 on the reference machine) with whatever else runs; the load average is reported.

5. **goal**: ingest p99 during the ``client_diagnostic`` purge at most 2x the p99 without
   a purge, over at least 1,000 requests during it (``--rate`` 100/s and a paced purge make
   the window long enough). ``--before`` runs the purge close to how it was before issue
   #21 part 2 (10,000-row batches, no pacing, DDL waiting without lock_timeout) for the
   comparison. While a purge runs the wait events (``wait_event_type:wait_event``) of the
   other backends (ingest) are counted: where ingest waits.

Prints a table and writes ``bench/results/retention.json`` (``retention-before.json`` with
``--before``). ``RETENTION_BENCH_DB`` and ``RETENTION_BENCH_REDIS_URL`` choose another
database and Redis db (parallel runs on a shared machine).

Run: /work/main/.venv/bin/python bench/retention.py [--quick] [--before] [--rows N]
     [--naive-rows N] [--rate R] [--keep-db]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import socket
import subprocess
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

PYTHON = sys.executable
BIN = Path(sys.executable).parent
PG_SERVER = support.PG_SERVER
BENCH_DB = os.environ.get("RETENTION_BENCH_DB", "telemetry_retention_bench")
DATABASE_URL = f"{PG_SERVER}/{BENCH_DB}"
REDIS_URL = os.environ.get("RETENTION_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
RESULTS = ROOT / "bench" / "results" / "retention.json"

CLASS = "client_diagnostic"
SCHEMA = "telemetry.client_diagnostic.v1"
NAIVE_CLASS = "service_metric"
NAIVE_SCHEMA = "telemetry.service_metric.v1"
RETENTION_DAYS = 30
NAIVE_RETENTION_DAYS = 90
DATA_DAYS = 60
HELD_DAY_OFFSET = 45  # days ago: the first 12 hours of that day are under a legal hold
HELD_HOURS = 12
PEAK_RSS_TARGET_MB = 200
# Close to the purge before issue #21 part 2: 10,000-row batches, no pacing, DDL queueing
# as long as it takes (the drop in its own transaction and the forward-walking delete stay).
BEFORE_ENV = {
    "TELEMETRY_PURGE_PACING": "0",
    "TELEMETRY_PURGE_LOCK_TIMEOUT_MS": "3600000",
    "TELEMETRY_PURGE_BATCH_SIZE": "10000",
}
PURGE_TASK = "ingest.tasks.purge_expired_events"
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
)
COPY_CHUNK = 20_000
INGEST_PATH = f"/api/v1/events?schema={SCHEMA}"
CLIENT_THREADS = 8


# -- environment, database, subprocesses -------------------------------------------------------


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of every Django process: the bench database and Redis db 12."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_RESULT_BACKEND=REDIS_URL,
        DJANGO_SETTINGS_MODULE="telemetry_platform.settings",
        DEBUG="false",
        TELEMETRY_RATE_LIMIT_EVENTS_PER_SECOND="1000000",
        TELEMETRY_RATE_LIMIT_BYTES_PER_SECOND="0",  # throughput, not limits, is measured
        PYTHONPATH=str(ROOT),
        PYTHONWARNINGS="ignore",
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


DJANGO_PRELUDE = """
import json, sys
import django
django.setup()
def vm(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
"""


def vm_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of ``pid`` in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def gunicorn_start(env: dict[str, str], logdir: Path) -> tuple[support.Service, int]:
    port = support.free_port()
    argv = support.gunicorn_argv(port, workers=2, timeout="30", access_log=False)
    return support.Service("gunicorn", argv, env, logdir), port


def gunicorn_wait(server: support.Service, port: int, timeout: float = 60.0) -> None:
    server.wait_until(lambda: http_request(port, "GET", "/healthz")[0] == 200, timeout)


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
        "retention-bench@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    return support.Service("celery-worker", argv, env, logdir)


def celery_app() -> Any:
    from celery import Celery

    return Celery("retention_bench", broker=REDIS_URL, backend=REDIS_URL)


def worker_wait(app: Any, worker: support.Service, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.check_alive()
        if app.control.ping(destination=[f"retention-bench@{socket.gethostname()}"], timeout=1):
            return
    raise RuntimeError(f"Celery worker not ready in {timeout:g}s:\n{worker.log_tail()}")


# -- rows ------------------------------------------------------------------------------------------

SOURCES = (
    ("ios-client", "CLIENT_SURFACE_IOS", "ios-2026.11.02.1"),
    ("web-client", "CLIENT_SURFACE_WEB", "web-2026.11.03.4"),
    ("desktop-client", "CLIENT_SURFACE_DESKTOP", "desktop-2026.10.28.2"),
)
DIAGNOSTICS = (
    ("sync.reconnect", "network_path_changed", '"attempt":"2","backoff_ms":"950"'),
    ("auth.refresh_failed", "token_too_old", '"http_status":"401","refresh_attempted":"true"'),
    ("replay.stale_cursor", "cursor_evicted", '"head_seq":"1320","oldest_available_seq":"940"'),
    ("render.slow_frame", "frame_budget_exceeded", '"frame_ms":"48","screen":"run_detail"'),
)
CLIENT_REDACTIONS = (
    '[["envelope.correlation.session_id","hash"],["envelope.correlation.device_id","hash"]]'
)


def _hex(seed: str, length: int = 64) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


class RowFactory:
    """COPY text lines of stored events; ids and event ids unique, time spread evenly."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.actors = [f"sha256:{_hex(f'{tag}actor{i}')}" for i in range(2000)]
        self.sessions = [f"k1:{_hex(f'{tag}session{i}')}" for i in range(5000)]
        self.devices = [f"k1:{_hex(f'{tag}device{i}')}" for i in range(3000)]
        self.requests = [_hex(f"{tag}request{i}", 32) for i in range(4096)]
        self.traces = [_hex(f"{tag}trace{i}", 32) for i in range(4096)]

    def client_lines(
        self, first_id: int, start: int, stop: int, total: int, t0: float, span: float, rev: int
    ) -> str:
        """Rows ``start``..``stop`` of ``total`` spread over [t0, t0 + span) epoch seconds."""
        step = span / total
        lines = []
        actors, sessions, devices = self.actors, self.sessions, self.devices
        requests, traces, tag = self.requests, self.traces, self.tag
        fromtimestamp = datetime.fromtimestamp
        for k in range(start, stop):
            ts = t0 + k * step
            occurred = fromtimestamp(ts, UTC).isoformat()
            received = fromtimestamp(ts + 1.5 + (k % 7), UTC).isoformat()
            source, surface, build = SOURCES[k % 3]
            name, reason, attributes = DIAGNOSTICS[k % 4]
            event_id = f"{tag}-{k:010d}"
            actor = actors[k % 2000]
            trace = traces[k % 4096] if k % 4 == 0 else ""
            lines.append(
                f"{first_id + k}\t{CLASS}\t{rev}\t{source}\t{event_id}\t{occurred}\t"
                f"{received}\t\t{trace}\t{actor}\t{requests[(k // 20) % 4096]}\t"
                f'{{"envelope":{{"event_id":"{event_id}","occurred_at":"{occurred[:-6]}Z",'
                f'"source":"{source}","surface":"{surface}","build":{{"client_build_id":'
                f'"{build}","app_version":"1.4.2"}},"correlation":{{"session_id":'
                f'"{sessions[k % 5000]}","device_id":"{devices[k % 3000]}"}},'
                f'"actor_scope_hash":"{actor}"}},"name":"{name}","reason_code":"{reason}",'
                f'"attributes":{{{attributes}}}}}\t{CLIENT_REDACTIONS}\n'
            )
        return "".join(lines)

    def metric_lines(
        self, first_id: int, start: int, stop: int, total: int, t0: float, span: float, rev: int
    ) -> str:
        step = span / total
        lines = []
        requests, tag = self.requests, self.tag
        fromtimestamp = datetime.fromtimestamp
        for k in range(start, stop):
            ts = t0 + k * step
            occurred = fromtimestamp(ts, UTC).isoformat()
            received = fromtimestamp(ts + 0.5, UTC).isoformat()
            event_id = f"{tag}-{k:010d}"
            lines.append(
                f"{first_id + k}\t{NAIVE_CLASS}\t{rev}\tauth-service\t{event_id}\t"
                f"{occurred}\t{received}\t\t\t\t{requests[(k // 100) % 4096]}\t"
                f'{{"envelope":{{"event_id":"{event_id}","occurred_at":"{occurred[:-6]}Z",'
                f'"source":"auth-service"}},"name":"auth.verify.completed",'
                f'"kind":"KIND_COUNTER","value":{k % 97},'
                f'"labels":{{"region":"eu-west-1","status":"ok"}},"service":"auth",'
                f'"instance":"auth-{k % 8}","unit":"1"}}\t[]\n'
            )
        return "".join(lines)


def copy_load(conn: Any, kind: str, total: int, t0: float, span: float, rev: int, tag: str) -> dict:
    """COPY ``total`` rows in one transaction; return timing."""
    factory = RowFactory(tag)
    first_id = support.ids_reserve(conn, total)
    lines = factory.client_lines if kind == "client" else factory.metric_lines
    started = time.perf_counter()
    generate = 0.0
    sql = f"COPY ingest_event ({', '.join(COPY_COLUMNS)}) FROM STDIN"
    with conn.transaction(), conn.cursor() as cursor, cursor.copy(sql) as copy:
        for start in range(0, total, COPY_CHUNK):
            g0 = time.perf_counter()
            text = lines(first_id, start, min(total, start + COPY_CHUNK), total, t0, span, rev)
            generate += time.perf_counter() - g0
            copy.write(text.encode())
    wall = time.perf_counter() - started
    return {
        "rows": total,
        "wall_seconds": round(wall, 2),
        "rows_per_s": round(total / wall),
        "python_row_generation_seconds": round(generate, 2),
    }


# -- HTTP load -------------------------------------------------------------------------------------


def http_request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class IngestLoad:
    """Open loop: request k is due at t0 + k/rate; thread j sends k = j, j+threads, ..."""

    def __init__(self, port: int, secret: str, rate: float, phase: str) -> None:
        self.port = port
        self.rate = rate
        self.phase = phase
        self.headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        self.records: list[tuple[float, float, float, int, bool]] = []
        self._lock = threading.Lock()
        self._stop_at: float | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> IngestLoad:
        self.t0_perf = time.perf_counter() + 0.05
        self.t0_wall = time.time() + 0.05
        self._threads = [
            threading.Thread(target=self._worker, args=(j,), daemon=True)
            for j in range(CLIENT_THREADS)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> IngestLoad:
        self._stop_at = time.perf_counter()
        for thread in self._threads:
            thread.join()
        return self

    def _worker(self, offset: int) -> None:
        mine = []
        k = offset
        while True:
            due = self.t0_perf + k / self.rate
            if self._stop_at is not None and due > self._stop_at:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(min(delay, 0.2))
                continue
            sent = time.perf_counter()
            occurred = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            body = json.dumps(
                {
                    "events": [
                        {
                            "envelope": {
                                "event_id": f"lat-{self.phase}-{k}",
                                "occurred_at": occurred,
                            },
                            "name": "bench",
                        }
                    ]
                }
            ).encode()
            try:
                status, data = http_request(self.port, "POST", INGEST_PATH, body, self.headers)
                ok = status == 200 and json.loads(data)["accepted"] == 1
            except OSError:
                status, ok = 0, False
            mine.append((due, sent, time.perf_counter(), status, ok))
            k += CLIENT_THREADS
        with self._lock:
            self.records.extend(mine)

    def slowest(self, window: tuple[float, float], count: int) -> list[tuple[float, float, float]]:
        """(due, due epoch, done) of the ``count`` slowest requests due inside ``window``."""
        shift = self.t0_wall - self.t0_perf
        inside = [r for r in self.records if window[0] <= r[0] + shift <= window[1]]
        inside.sort(key=lambda r: r[2] - r[0], reverse=True)
        return [(r[0], r[0] + shift, r[2]) for r in inside[:count]]

    def summary(self, window: tuple[float, float] | None = None) -> dict[str, Any]:
        """Latency of requests due inside ``window`` (epoch seconds), or of all of them."""
        records = self.records
        if window is not None:
            lo, hi = (w - self.t0_wall + self.t0_perf for w in window)
            records = [r for r in records if lo <= r[0] <= hi]
        ok = [r for r in records if r[4]]
        from_due = sorted(done - due for due, _, done, _, _ in ok)
        service = sorted(done - sent for _, sent, done, _, _ in ok)
        statuses: dict[str, int] = {}
        for record in records:
            statuses[str(record[3])] = statuses.get(str(record[3]), 0) + 1
        return {
            "requests": len(records),
            "ok": len(ok),
            "statuses": statuses,
            "window_seconds": round(window[1] - window[0], 2) if window else None,
            "p50_ms": ms(percentile(from_due, 50)),
            "p99_ms": ms(percentile(from_due, 99)),
            "max_ms": ms(from_due[-1]) if from_due else None,
            "service_p50_ms": ms(percentile(service, 50)),
            "service_p99_ms": ms(percentile(service, 99)),
        }


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    index = min(len(values) - 1, max(0, round(pct / 100 * len(values) + 0.5) - 1))
    return values[index]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


# -- steps -----------------------------------------------------------------------------------------

SETUP_CODE = """
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from governance.models import EventClass, SchemaRevision
from ingest.retention import day_partition_create, partitions_maintain

days = int(sys.argv[1])
EventClass.objects.filter(name="client_diagnostic").update(retention_days=int(sys.argv[2]))
today = timezone.now().date()
created = 0
for offset in range(days, -1, -1):
    day_partition_create("client_diagnostic", today - timedelta(days=offset))
    created += 1
ahead = partitions_maintain(event_class="client_diagnostic")
get_user_model().objects.create_user("retention-bench-owner")
revisions = {
    name: SchemaRevision.objects.filter(schema__name=name).order_by("-id").values_list(
        "id", flat=True
    ).first()
    for name in (sys.argv[3], sys.argv[4])
}
classes = dict(EventClass.objects.values_list("name", "retention_days"))
print(json.dumps({"day_partitions": created, "ahead": len(ahead), "revisions": revisions,
                  "retention_days": classes}))
"""

HOLD_CODE = """
from datetime import UTC, datetime, timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from governance.models import EventClass
from governance.services import legal_hold_create
from ingest.retention import purge_preview

klass = EventClass.objects.get(name="client_diagnostic")
day = timezone.now().date() - timedelta(days=int(sys.argv[1]))
start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
hold = legal_hold_create(
    reason="retention bench: litigation hold on half a day",
    owner=get_user_model().objects.get(username="retention-bench-owner"),
    event_class=klass,
    occurred_from=start,
    occurred_to=start + timedelta(hours=int(sys.argv[2])),
)
preview = purge_preview(klass)
print(json.dumps({"hold": hold.pk, "from": hold.occurred_from.isoformat(),
                  "to": hold.occurred_to.isoformat(), "eligible": preview.eligible,
                  "kept_by_holds": preview.kept_by_holds}))
"""

NAIVE_CODE = """
import time
from datetime import timedelta
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from ingest.models import Event

before = vm("VmHWM")
cutoff = timezone.now() - timedelta(days=int(sys.argv[1]))
started, window_start = time.perf_counter(), time.time()
with CaptureQueriesContext(connection) as queries:
    deleted, by_model = Event.objects.filter(
        event_class="service_metric", occurred_at__lt=cutoff
    ).delete()
wall, window_end = time.perf_counter() - started, time.time()
sql = [q["sql"] for q in queries.captured_queries]
print(json.dumps({"rows": deleted, "wall_seconds": round(wall, 2), "hwm_before_mb": before,
                  "hwm_mb": vm("VmHWM"), "queries": len(sql),
                  "delete_sql": [q[:300] for q in sql if q.startswith("DELETE")],
                  "window_epoch": [window_start, window_end]}))
"""


def django_run_args(code: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    """Like django_run, with argv for the snippet (``sys.argv[1:]``)."""
    completed = subprocess.run(  # noqa: S603 (fixed argv)
        [PYTHON, "-c", DJANGO_PRELUDE + code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"Django subprocess failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


class RssSampler:
    """Sample VmRSS of a process every 50 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.max_rss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, KeyError):
                self.max_rss = max(self.max_rss, vm_status(self.pid)["VmRSS"])
            self._stop.wait(0.05)


ACTIVITY_KINDS = (
    ("INSERT INTO ingest_event", "INSERT"),
    ('SELECT count(*) FROM "ingest_event_%s_p', "count(*) of a day partition (before drop)"),
    ("SELECT EXISTS", "held-row check of a day partition"),
    ("DETACH PARTITION", "DETACH PARTITION"),
    ("DROP TABLE", "DROP TABLE"),
    ("DELETE FROM", "batched DELETE"),
    ("SELECT count(*) FROM", "count kept by holds"),
)
PURGE_MARKERS = ("ingest_purgerun", "pg_try_advisory_lock", "pg_inherits", "DETACH PARTITION")


class ActivitySampler:
    """Sample pg_stat_activity of the bench database every 50 ms: where the purge's backend
    spends its time (seconds ~= samples x 0.05, by statement) and who waits on locks.

    The purge's backend is the one that ran a purge statement (PurgeRun update, advisory
    lock, DETACH, DELETE); every other backend is ingest (gunicorn) or bookkeeping.
    """

    INTERVAL = 0.05

    def __init__(self, event_class: str) -> None:
        self.kinds = [(prefix.replace("%s", event_class), kind) for prefix, kind in ACTIVITY_KINDS]
        self.samples: list[tuple[int, bool, str]] = []  # (pid, waiting on a lock, statement)
        self.wait_events: list[tuple[int, str]] = []  # (pid, wait_event_type:wait_event)
        self.timeline: list[tuple[float, int, str]] = []  # (epoch, pid, statement)
        self.purge_pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ActivitySampler:
        self._conn = support.connect(DATABASE_URL)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            rows = self._conn.execute(
                """
                SELECT pid, wait_event_type, left(query, 120), wait_event
                FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND state = 'active'
                """
            ).fetchall()
            now = time.time()
            for pid, wait_type, query, wait_event in rows:
                if wait_type:
                    self.wait_events.append((pid, f"{wait_type}:{wait_event}"))
                kind = next((k for prefix, k in self.kinds if prefix in query), None)
                if kind is None:
                    kind = " ".join(query.split())[:40]
                if kind in ("batched DELETE", "count(*) of a day partition (before drop)") or any(
                    marker in query for marker in PURGE_MARKERS
                ):
                    self.purge_pids.add(pid)
                self.samples.append((pid, wait_type == "Lock", kind))
                self.timeline.append((now, pid, kind))
            self._stop.wait(self.INTERVAL)

    def purge_statement_at(self, epoch: float) -> str:
        """What the purge's backend was running at ``epoch`` (nearest sample within 0.1 s)."""
        best, label = 0.1, "-"
        for when, pid, kind in self.timeline:
            if pid in self.purge_pids and abs(when - epoch) <= best:
                best, label = abs(when - epoch), kind
        return label

    def summary(self) -> dict[str, Any]:
        groups: dict[str, dict[str, float]] = {"purge": {}, "others": {}}
        waits: dict[str, dict[str, float]] = {"purge": {}, "others": {}}
        for pid, waiting, kind in self.samples:
            group = "purge" if pid in self.purge_pids else "others"
            groups[group][kind] = round(groups[group].get(kind, 0) + self.INTERVAL, 2)
            if waiting:
                waits[group][kind] = round(waits[group].get(kind, 0) + self.INTERVAL, 2)
        events: dict[str, dict[str, int]] = {"purge": {}, "others": {}}
        for pid, event in self.wait_events:
            group = events["purge" if pid in self.purge_pids else "others"]
            group[event] = group.get(event, 0) + 1
        return {
            "wait_event_samples": {k: dict(sorted(v.items())) for k, v in events.items()},
            "purge_backend_active_seconds": dict(sorted(groups["purge"].items())),
            "other_backends_active_seconds": dict(sorted(groups["others"].items())),
            "lock_wait_seconds": waits,
        }


def purge_via_celery(
    app: Any, worker: support.Service, conn: Any, event_class: str, load: IngestLoad | None
) -> dict[str, Any]:
    """Send the purge task by name, await it; return timing, PurgeRun row, worker memory."""
    before = vm_status(worker.pid)
    partition_rows = dict(
        conn.execute(
            "SELECT relname, reltuples::bigint FROM pg_class WHERE relname LIKE %s",
            [f"ingest_event_{event_class}_p%"],
        ).fetchall()
    )
    with RssSampler(worker.pid) as sampler, ActivitySampler(event_class) as activity:
        if load is not None:
            load.start()
            time.sleep(1.0)
        started = time.perf_counter()
        result = app.send_task(PURGE_TASK, args=[event_class, "bench"], queue="maintenance")
        value = result.get(timeout=3600, interval=0.05)
        wall = time.perf_counter() - started
        if load is not None:
            time.sleep(1.0)
            load.stop()
    after = vm_status(worker.pid)
    row = conn.execute(
        """
        SELECT status, partitions_dropped, rows_deleted, rows_kept_by_holds,
               duration_seconds, extract(epoch FROM started_at), extract(epoch FROM finished_at),
               cutoff, error
        FROM ingest_purgerun WHERE event_class_id = %s AND triggered_by = 'bench'
        ORDER BY id DESC LIMIT 1
        """,
        [event_class],
    ).fetchone()
    status, dropped, deleted, kept, duration, run_start, run_end, cutoff, error = row
    if status != "succeeded":
        raise RuntimeError(f"purge of {event_class} {status}: {error}")
    dropped_rows = sum(partition_rows.get(name, 0) for name in dropped)
    report = {
        "task_result": value,
        "wall_seconds": round(wall, 2),
        "purge_run": {
            "status": status,
            "partitions_dropped": len(dropped),
            "rows_deleted": deleted,
            "rows_in_dropped_partitions": dropped_rows,
            "rows_batch_deleted": deleted - dropped_rows,
            "rows_kept_by_holds": kept,
            "duration_seconds": round(duration, 2),
            "cutoff": cutoff.isoformat(),
        },
        "rows_per_s": round(deleted / wall) if wall else None,
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "worker_rss_before_mb": round(before["VmRSS"], 1),
        "worker_hwm_before_mb": round(before["VmHWM"], 1),
        "worker_max_rss_sampled_mb": round(sampler.max_rss, 1),
        "worker_hwm_mb": round(after["VmHWM"], 1),
        "window_epoch": [float(run_start), float(run_end)],
        "partitions_dropped_names": dropped,
        "pg_activity": activity.summary(),
    }
    if load is not None:
        report["ingest_during"] = load.summary((float(run_start), float(run_end)))
        report["ingest_slowest"] = [
            {
                "at_s": round(due_wall - float(run_start), 2),
                "ms": ms(done - due),
                "purge_running": activity.purge_statement_at(due_wall),
            }
            for due, due_wall, done in load.slowest((float(run_start), float(run_end)), 8)
        ]
        report["ingest_whole_phase"] = load.summary()
    return report


def machine_info() -> dict[str, Any]:
    return {
        **support.machine_facts(),
        "note": (
            "PostgreSQL, gunicorn, the Celery worker and this load generator share these "
            "cores (and whatever else runs on the machine)"
        ),
    }


PG_SETTINGS = ("server_version", "shared_buffers", "max_wal_size", "work_mem", "synchronous_commit")


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="retention-bench-"))
    report: dict[str, Any] = {"benchmark": "retention", "machine": machine_info(), "steps": {}}
    steps = report["steps"]
    services: list[support.Service] = []
    conn = None
    started = time.perf_counter()
    try:
        print(f"set-up: database {BENCH_DB}, Redis {REDIS_URL}, work dir {workdir}", flush=True)
        support.redis_flush(REDIS_URL)
        support.database_recreate(BENCH_DB)
        env = bench_env()
        t = time.perf_counter()
        support.manage("bootstrap", "--verbosity", "0", env=env)
        setup = django_run_args(
            SETUP_CODE, env, str(DATA_DAYS), str(RETENTION_DAYS), SCHEMA, NAIVE_SCHEMA
        )
        steps["setup"] = {"wall_seconds": round(time.perf_counter() - t, 2), **setup}
        print(f"  bootstrap + {setup['day_partitions']} day partitions: {steps['setup']}")
        secret = support.manage("create_api_key", "--name", "bench", env=env).strip()
        conn = support.connect(DATABASE_URL)
        report["postgresql"] = support.pg_settings(conn, PG_SETTINGS)

        # 1. load
        now = time.time()
        t0 = now - DATA_DAYS * 86400
        span = DATA_DAYS * 86400 - 120
        print(f"loading {args.rows:,} {CLASS} rows over {DATA_DAYS} days with COPY ...", flush=True)
        load = copy_load(
            conn, "client", args.rows, t0, span, setup["revisions"][SCHEMA], f"cd{int(now)}"
        )
        # VACUUM, not only ANALYZE: freshly COPied partitions are otherwise vacuumed by
        # autovacuum (insert threshold) during the idle baseline, which is then not idle.
        t = time.perf_counter()
        conn.execute(f"VACUUM (ANALYZE) ingest_event_{CLASS}")
        load["vacuum_analyze_seconds"] = round(time.perf_counter() - t, 2)
        load["table_size_mb"] = round(
            conn.execute(
                """
                SELECT sum(pg_total_relation_size(inhrelid)) / 1048576.0 FROM pg_inherits
                WHERE inhparent = %s::regclass
                """,
                [f"ingest_event_{CLASS}"],
            ).fetchone()[0]
        )
        steps["load"] = load
        print(f"  {load}", flush=True)

        # services
        metrics_dir = workdir / "prometheus"
        metrics_dir.mkdir()
        server, port = gunicorn_start(bench_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)), workdir)
        services.append(server)
        worker_env = bench_env(**(BEFORE_ENV if args.before else {}))
        worker = worker_start(worker_env, workdir)
        services.append(worker)
        app = celery_app()
        gunicorn_wait(server, port)
        worker_wait(app, worker)
        # warm both gunicorn workers (schema plans, connections)
        IngestLoad(port, secret, args.rate, "warm").start().stop()
        warm = IngestLoad(port, secret, args.rate, "warm2").start()
        time.sleep(2)
        warm.stop()

        # 2. ingest latency without a purge. A checkpoint first: the load's gigabytes of
        # dirty pages are otherwise written out during the baseline, and "idle" is not.
        conn.execute("CHECKPOINT")
        print(f"ingest latency without purge ({args.baseline_seconds:g} s) ...", flush=True)
        baseline = IngestLoad(port, secret, args.rate, "base").start()
        time.sleep(args.baseline_seconds)
        steps["ingest_baseline_before"] = baseline.stop().summary()
        print(f"  {steps['ingest_baseline_before']}", flush=True)

        # 3. legal hold, then purge through Celery with ingest running
        hold = django_run_args(HOLD_CODE, env, str(HELD_DAY_OFFSET), str(HELD_HOURS))
        steps["legal_hold"] = hold
        print(f"legal hold: {hold}", flush=True)
        total_before = conn.execute(f"SELECT count(*) FROM ingest_event_{CLASS}").fetchone()[0]
        print("purge through Celery (client_diagnostic) with ingest load ...", flush=True)
        purge_load = IngestLoad(port, secret, args.rate, "purge")
        purge = purge_via_celery(app, worker, conn, CLASS, purge_load)
        cutoff = datetime.fromisoformat(purge["purge_run"]["cutoff"])
        left_expired = conn.execute(
            f"SELECT count(*) FROM ingest_event_{CLASS} WHERE occurred_at < %s", [cutoff]
        ).fetchone()[0]
        total_after = conn.execute(f"SELECT count(*) FROM ingest_event_{CLASS}").fetchone()[0]
        ingested = purge["ingest_whole_phase"]["ok"]
        purge["check"] = {
            "rows_before": total_before,
            "rows_after": total_after,
            "expired_rows_left": left_expired,
            "expired_left_equals_held": left_expired == purge["purge_run"]["rows_kept_by_holds"],
            "rows_removed_equals_rows_deleted": total_before + ingested - total_after
            == purge["purge_run"]["rows_deleted"],
            "preview_eligible": hold["eligible"],
        }
        steps["purge"] = purge
        print(f"  {json.dumps(purge, default=str)}", flush=True)

        # Idle again after the purge (as long as before): "idle" is both windows together,
        # so a slow spell of the machine's on either side does not decide the ratio.
        print(f"ingest latency after the purge ({args.baseline_seconds:g} s) ...", flush=True)
        after = IngestLoad(port, secret, args.rate, "base-after").start()
        time.sleep(args.baseline_seconds)
        steps["ingest_baseline_after"] = after.stop().summary()
        print(f"  {steps['ingest_baseline_after']}", flush=True)
        idle_load = IngestLoad(port, secret, args.rate, "idle")
        idle_load.records = baseline.records + after.records
        steps["ingest_baseline"] = idle_load.summary()

        # 4. naive QuerySet.delete() vs our batched delete on the same 500k rows
        naive_t0 = now - 120 * 86400
        naive_span = 20 * 86400
        metric_rev = setup["revisions"][NAIVE_SCHEMA]
        print(f"loading {args.naive_rows:,} expired {NAIVE_CLASS} rows (default partition) ...")
        steps["naive_load"] = copy_load(
            conn, "metric", args.naive_rows, naive_t0, naive_span, metric_rev, f"sm{int(now)}"
        )
        conn.execute(f"ANALYZE ingest_event_{NAIVE_CLASS}")
        print(f"  {steps['naive_load']}", flush=True)
        print("naive Event.objects.filter(...).delete() in a Django subprocess ...", flush=True)
        naive_load = IngestLoad(port, secret, args.rate, "naive").start()
        time.sleep(1.0)
        naive = django_run_args(NAIVE_CODE, env, str(NAIVE_RETENTION_DAYS))
        time.sleep(1.0)
        naive_load.stop()
        naive["rows_per_s"] = round(naive["rows"] / max(naive["wall_seconds"], 0.01))
        naive["ingest_during"] = naive_load.summary(tuple(naive["window_epoch"]))
        steps["naive_delete"] = naive
        print(f"  {naive}", flush=True)

        print(f"loading the same {args.naive_rows:,} rows again ...", flush=True)
        steps["batched_load"] = copy_load(
            conn, "metric", args.naive_rows, naive_t0, naive_span, metric_rev, f"sb{int(now)}"
        )
        conn.execute(f"ANALYZE ingest_event_{NAIVE_CLASS}")
        print("purge through Celery (service_metric, batched DELETE only) ...", flush=True)
        batched_load = IngestLoad(port, secret, args.rate, "batched")
        steps["batched_purge"] = purge_via_celery(app, worker, conn, NAIVE_CLASS, batched_load)
        print(f"  {json.dumps(steps['batched_purge'], default=str)}", flush=True)

        report["peak_rss_target_mb"] = PEAK_RSS_TARGET_MB
        idle, during = steps["ingest_baseline"], steps["purge"]["ingest_during"]
        report["goal"] = {
            "requests_idle": idle["ok"],
            "requests_during_purge": during["ok"],
            "p50_idle_ms": idle["p50_ms"],
            "p50_during_ms": during["p50_ms"],
            "p99_idle_ms": idle["p99_ms"],
            "p99_during_ms": during["p99_ms"],
            "p99_ratio": round(during["p99_ms"] / idle["p99_ms"], 2),
            "target": "p99 during <= 2x idle over >= 1,000 requests during the purge",
        }
        report["goal"]["met"] = report["goal"]["p99_ratio"] <= 2.0 and during["ok"] >= 1000
        report["passed"] = steps["purge"]["worker_hwm_mb"] < PEAK_RSS_TARGET_MB
        report["settings"] = {
            "rows": args.rows,
            "naive_rows": args.naive_rows,
            "rate_per_s": args.rate,
            "baseline_seconds": args.baseline_seconds,
            "purge_batch_size": int(os.environ.get("TELEMETRY_PURGE_BATCH_SIZE", "1000")),
            "purge_env": {k: v for k, v in worker_env.items() if k.startswith("TELEMETRY_PURGE")},
            "mode": "before" if args.before else "now",
            "client_threads": CLIENT_THREADS,
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


# -- report ----------------------------------------------------------------------------------------


def fmt(value: Any, spec: str = ",") -> str:
    return "-" if value is None else format(value, spec)


def print_report(report: dict[str, Any]) -> None:
    m, s = report["machine"], report["steps"]
    print(f"\nmachine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gb']} GB | {m['platform']}")
    pg = report["postgresql"]
    print(
        f"PostgreSQL {pg['server_version']} (shared_buffers {pg['shared_buffers']}, max_wal_size "
        f"{pg['max_wal_size']}) | load average at start {m['load_average_at_start']}, at end "
        f"{m.get('load_average_at_end')}"
    )
    print(f"NOTE: {m['note']}.\n")
    purge, run = s["purge"], s["purge"]["purge_run"]
    batched, brun = s["batched_purge"], s["batched_purge"]["purge_run"]
    naive = s["naive_delete"]
    batch_size = report["settings"]["purge_batch_size"]
    batches = brun["rows_deleted"] // batch_size + 1
    batches_main = run["rows_batch_deleted"] // batch_size + 1

    def per_batch(step: dict[str, Any], count: int) -> float:
        seconds = step["pg_activity"]["purge_backend_active_seconds"].get("batched DELETE", 0)
        return seconds / count

    rows = [
        (
            f"COPY load {CLASS}",
            s["load"]["rows"],
            s["load"]["wall_seconds"],
            s["load"]["rows_per_s"],
            None,
            f"{DATA_DAYS + 1} day partitions, 1 connection, {s['load']['table_size_mb']:,} MB",
        ),
        (
            "purge via Celery (drop + batches)",
            run["rows_deleted"],
            purge["wall_seconds"],
            purge["rows_per_s"],
            purge["worker_hwm_mb"],
            f"{run['partitions_dropped']} partitions dropped "
            f"({run['rows_in_dropped_partitions']:,} rows), {run['rows_batch_deleted']:,} rows in "
            f"{batches_main} batches (~{per_batch(purge, batches_main):.2f} s each), "
            f"{run['rows_kept_by_holds']:,} kept by hold",
        ),
        (
            f"naive QuerySet.delete() {NAIVE_CLASS}",
            naive["rows"],
            naive["wall_seconds"],
            naive["rows_per_s"],
            naive["hwm_mb"],
            f"{naive['queries']} SQL statements (BEGIN, 1 DELETE, COMMIT): Django fast-delete"
            if naive["queries"] == 3 and len(naive["delete_sql"]) == 1
            else f"{naive['queries']} SQL statements",
        ),
        (
            f"purge via Celery {NAIVE_CLASS}",
            brun["rows_deleted"],
            batched["wall_seconds"],
            batched["rows_per_s"],
            batched["worker_hwm_mb"],
            f"batched DELETE only: {batches} batches (~{per_batch(batched, batches):.2f} s "
            "each), default partition",
        ),
    ]
    header = f"{'step':<38} {'rows':>10} {'wall s':>7} {'rows/s':>10} {'peak MB':>8}  notes"
    print(header)
    print("-" * 110)
    for name, count, wall, rate, peak, notes in rows:
        print(
            f"{name:<38} {fmt(count):>10} {wall:>7.2f} {fmt(rate):>10} "
            f"{fmt(peak, '.1f'):>8}  {notes}"
        )
    print(
        f"\npeak RSS = VmHWM of the process that ran the delete, start-up included: Celery solo "
        f"worker (idle {purge['worker_rss_before_mb']} MB before its first purge; HWM is "
        f"cumulative over both purges), naive Django process ({naive['hwm_before_mb']:.1f} MB "
        f"after django.setup()).\nPurgeRun duration: {run['duration_seconds']} s "
        f"({CLASS}), {brun['duration_seconds']} s ({NAIVE_CLASS}); check: "
        f"{purge['check']}"
    )
    for label, step in ((CLASS, purge), (NAIVE_CLASS, batched)):
        activity = step["pg_activity"]
        waits = {k: v for k, v in activity["lock_wait_seconds"].items() if v}
        print(
            f"  {label} purge, pg_stat_activity every 50 ms, ~seconds: purge backend "
            f"{activity['purge_backend_active_seconds']}; other backends (ingest) "
            f"{activity['other_backends_active_seconds']}; lock waits {waits or 'none'}"
        )
    rate = report["settings"]["rate_per_s"]
    print(
        f"\ningest latency, one-event JSON {SCHEMA}, open loop {rate:g} req/s, "
        f"{CLIENT_THREADS} client threads, gunicorn 2 gthread workers; ms from scheduled send "
        "(svc: from actual send):"
    )
    print(
        f"  {'phase':<50} {'reqs':>5} {'ok':>5} {'p50':>7} {'p99':>7} {'max':>7} "
        f"{'svc p50':>8} {'svc p99':>8}  statuses"
    )
    for label, lat in (
        ("without purge (before and after)", s["ingest_baseline"]),
        ("  before the purge", s["ingest_baseline_before"]),
        ("  after the purge", s["ingest_baseline_after"]),
        (f"during purge of {CLASS} (drop + batches)", purge["ingest_during"]),
        (f"during naive delete of {NAIVE_CLASS}", naive["ingest_during"]),
        (f"during batched purge of {NAIVE_CLASS}", batched["ingest_during"]),
    ):
        print(
            f"  {label:<50} {lat['requests']:>5} {lat['ok']:>5} {fmt(lat['p50_ms'], '.1f'):>7} "
            f"{fmt(lat['p99_ms'], '.1f'):>7} {fmt(lat['max_ms'], '.1f'):>7} "
            f"{fmt(lat['service_p50_ms'], '.1f'):>8} {fmt(lat['service_p99_ms'], '.1f'):>8}  "
            f"{lat['statuses']}"
        )
    for label, step in ((CLASS, purge), (NAIVE_CLASS, batched)):
        waits = step["pg_activity"]["wait_event_samples"]["others"]
        print(f"  wait events of ingest backends during the {label} purge (samples): {waits}")
    for label, step in ((CLASS, purge), (NAIVE_CLASS, batched)):
        slow = ", ".join(
            f"{r['ms']:.0f} ms at +{r['at_s']:.1f}s ({r['purge_running']})"
            for r in step["ingest_slowest"][:5]
        )
        print(f"  slowest during the {label} purge: {slow}")
    goal = report["goal"]
    print(
        f"\n{'MET' if goal['met'] else 'NOT MET'}  ingest p99 during the {CLASS} purge "
        f"{goal['p99_during_ms']} ms vs {goal['p99_idle_ms']} ms idle = {goal['p99_ratio']}x "
        f"(target <= 2x) over {goal['requests_during_purge']:,} requests during the purge "
        f"({goal['requests_idle']:,} idle); p50 {goal['p50_during_ms']} vs {goal['p50_idle_ms']} ms"
        f"; mode {report['settings']['mode']}, {report['settings']['purge_env']}"
    )
    verdict = "PASS" if report["passed"] else "FAIL"
    print(
        f"\n{verdict}  purge worker peak RSS {purge['worker_hwm_mb']} MB < "
        f"{report['peak_rss_target_mb']} MB"
    )
    print(f"total run time {report['total_seconds']} s; logs in {report['logs']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--naive-rows", type=int, default=500_000)
    parser.add_argument("--rate", type=float, default=100.0, help="ingest requests per second")
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database")
    parser.add_argument(
        "--quick", action="store_true", help="500k rows, 50k naive rows, 6 s baseline"
    )
    parser.add_argument(
        "--before", action="store_true", help="purge without pacing or DDL lock_timeout"
    )
    args = parser.parse_args()
    if args.quick:
        args.rows, args.naive_rows = min(args.rows, 500_000), min(args.naive_rows, 50_000)
        args.baseline_seconds = min(args.baseline_seconds, 6.0)
    report = run(args)
    results = RESULTS.with_name("retention-before.json") if args.before else RESULTS
    print_report(report)
    support.results_write(results, report)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""End-to-end ingest throughput through HTTP, with the server run as ``make run`` runs it.

What is measured, all in one run against a dedicated database (``telemetry_bench``,
or ``--database``; created, bootstrapped and dropped by this script) and Redis db 13
(or ``--redis-db``):

* **ours JSON / ours protobuf**: batches of 500 client telemetry events (the shape of
  ``tests.factories.client_telemetry_events``; unique event ids, occurred-at within the
  last hour) POSTed to ``/api/v1/events?schema=openagents.sync.client_telemetry.v1`` by
  several client threads, as JSON and as a binary ``telemetry.v1.EventBatch``. The server
  is gunicorn exactly as the Procfile starts it (``telemetry_platform.wsgi``, the gunicorn
  config, ``--workers``, access log, timeout) with ``DEBUG=false``, a
  ``PROMETHEUS_MULTIPROC_DIR`` and the per-key rate limit raised to 1,000,000 events/s.
  events/s = accepted events / wall time; every event must be accepted.
* **naive**: the same rows as the pipeline stored them, POSTed in batches of 500 to a
  bench-only DRF view (``bench/naive``: ``ModelSerializer(many=True)``, ``save()`` ->
  ``Event.objects.create`` per row) served by gunicorn the same way.
* **COPY**: the same stored rows (``COPY (SELECT ...) TO STDOUT``, event ids changed)
  copied back into ``ingest_event`` with psycopg 3 ``cursor.copy`` from this process in
  one transaction: the physical limit of the table.
* **single-event latency**: one-event JSON requests, open loop at a fixed rate (200/s
  for 15 s by default) from a few threads; latency is measured from each request's
  scheduled send time (so a stalled server cannot hide queueing) and from its actual send.

JSON and protobuf alternate in rounds (``--rounds``). Client, server and PostgreSQL share
the machine's cores; the CPU each group used per run (gunicorn, the bench database's
PostgreSQL processes, this client, everybody else) is read from /proc and reported per
event, with the rate two cores of our own would allow ("ceiling"), so a run on a machine
busy with others' work still says what the code costs. ``--wait-quiet S`` waits up to S
seconds for the machine to quiet down first. When a target fails (or with ``--profile``)
whole requests are profiled in-process, step by step, on 500-event batches.

Prints a table and writes ``bench/results/ingest_e2e.json``; ~2 minutes on a quiet machine.

Run: /work/main/.venv/bin/python bench/ingest_e2e.py [--events N] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import support  # noqa: E402 (needs the repo on sys.path)
from tests.factories import (  # noqa: E402 (needs the repo on sys.path; no Django settings)
    CLIENT_TELEMETRY_MESSAGE,
    CLIENT_TELEMETRY_PROTO,
    CLIENT_TELEMETRY_SCHEMA,
    client_telemetry_events,
)

PYTHON = sys.executable
PG_SERVER = support.PG_SERVER
# Overridable with --database / --redis-db (see use_targets) so concurrent runs can coexist.
BENCH_DB = "telemetry_bench"
DATABASE_URL = f"{PG_SERVER}/{BENCH_DB}"
REDIS_URL = "redis://127.0.0.1:6379/13"
BATCH_SIZE = 500
INGEST_PATH = f"/api/v1/events?schema={CLIENT_TELEMETRY_SCHEMA}"
NAIVE_PATH = "/naive/events"
API_KEY_NAME = "bench"

JSON_TARGET = 10_000
PROTOBUF_TARGET = 20_000
NAIVE_RATIO_TARGET = 15.0
COPY_FRACTION_AIM = 0.5


# -- environment and set-up ------------------------------------------------------------


def use_targets(database: str, redis_db: int) -> None:
    """Point the bench at another database and Redis db (module-level settings)."""
    global BENCH_DB, DATABASE_URL, REDIS_URL
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", database):
        raise SystemExit(f"--database must be a plain lower-case identifier, not {database!r}")
    BENCH_DB = database
    DATABASE_URL = f"{PG_SERVER}/{BENCH_DB}"
    REDIS_URL = f"redis://127.0.0.1:6379/{int(redis_db)}"


def server_env(**extra: str) -> dict[str, str]:
    """The environment of manage.py and gunicorn: the bench database, Redis db 13."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        CELERY_BROKER_URL=REDIS_URL,
        DEBUG="false",
        TELEMETRY_RATE_LIMIT_EVENTS_PER_SECOND="1000000",
        TELEMETRY_RATE_LIMIT_BYTES_PER_SECOND="0",  # throughput, not limits, is measured
        PYTHONPATH=str(ROOT),
        PYTHONWARNINGS="ignore",
    )
    env.update(extra)
    return env


def platform_setup(env: dict[str, str], workdir: Path) -> str:
    """Bootstrap the bench database, register the contract and its policy; return an API key.

    The contract and its shipped policy are registered the way the tests do it
    (``tests.factories.client_telemetry_schema_register``: the registry and policy
    services, no change-request review), so the bench does not depend on the commands'
    approval workflow.
    """
    support.manage("bootstrap", "--verbosity", "0", env=env)
    support.manage(
        "shell",
        "-c",
        "from tests.factories import client_telemetry_schema_register; "
        "client_telemetry_schema_register()",
        env=env,
    )
    return support.manage("create_api_key", "--name", API_KEY_NAME, env=env).strip()


class Gunicorn(support.Service):
    """gunicorn as the Procfile's ``web`` line runs it, on a free port."""

    stop_timeout = 15.0

    def __init__(self, name: str, env: dict[str, str], workers: int, logdir: Path) -> None:
        self.port = support.free_port()
        self.workers = workers
        self.argv = support.gunicorn_argv(
            self.port, workers=workers, timeout=env.get("WEB_TIMEOUT", "30")
        )
        super().__init__(f"gunicorn-{name}", self.argv, env, logdir)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until /healthz answers and every worker has started."""
        self.wait_until(
            lambda: (
                http_request(self.port, "GET", "/healthz")[0] == 200
                and len(self.worker_pids()) == self.workers
            ),
            timeout,
        )

    def worker_pids(self) -> list[int]:
        return [pid for pid, info in proc_table().items() if info["ppid"] == self.process.pid]

    def pids(self) -> set[int]:
        return {self.process.pid, *self.worker_pids()}

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(line for line in text if '"POST ' not in line)[-5000:] or "\n".join(
            text[-lines:]
        )


# -- CPU accounting from /proc -------------------------------------------------------------

REMOTE_BACKEND = re.compile(r"\d+\.\d+\.\d+\.\d+\(\d+\)|\[local\]|::1\(\d+\)")


def proc_table() -> dict[int, dict[str, Any]]:
    """pid -> {ppid, comm, cmdline, cpu seconds} of every visible process."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = {
            "ppid": int(fields[1]),
            "comm": comm,
            "cmdline": cmdline,
            "cpu": (int(fields[11]) + int(fields[12])) / support.CLK_TCK,
        }
    return table


def busy_fraction(seconds: float) -> float:
    """Fraction of the machine's CPU in use over the next ``seconds``."""
    before, began = support.system_busy_seconds(), time.monotonic()
    time.sleep(seconds)
    return (support.system_busy_seconds() - before) / (
        (time.monotonic() - began) * (os.cpu_count() or 1)
    )


def wait_quiet(limit: float, threshold: float = 0.2) -> float:
    """Wait (at most ``limit`` s) until the machine is below ``threshold`` busy; return the last."""
    deadline = time.monotonic() + limit
    busy = busy_fraction(1.0)
    while busy > threshold and time.monotonic() < deadline:
        print(f"  machine {busy:.0%} busy with others' work; waiting ...", flush=True)
        busy = busy_fraction(2.0)
    return busy


def cpu_snapshot(server: Gunicorn | None) -> dict[str, Any]:
    """CPU seconds so far per process of ours, by group, and the machine's busy seconds.

    Groups: server (gunicorn arbiter + workers), postgres (backends of the bench
    database), postgres_background (postmaster, writers, checkpointer), redis, client.
    """
    server_pids = server.pids() if server else set()
    processes = {}
    for pid, info in proc_table().items():
        cmdline = info["cmdline"] + " "
        if pid in server_pids:
            group = "server"
        elif pid == os.getpid():
            group = "client"
        elif info["comm"] == "postgres" or cmdline.startswith("postgres"):
            if f" {BENCH_DB} " in cmdline:
                group = "postgres"
            elif REMOTE_BACKEND.search(cmdline) or "autovacuum worker" in cmdline:
                continue  # another database's backend: others' work
            else:
                group = "postgres_background"
        elif info["comm"] == "redis-server":
            group = "redis"
        else:
            continue
        processes[pid] = (group, info["cpu"])
    return {"processes": processes, "system_busy": support.system_busy_seconds()}


CPU_GROUPS = ("server", "postgres", "postgres_background", "redis", "client")


def cpu_seconds(before: dict[str, Any], after: dict[str, Any]) -> Counter:
    """CPU used between two snapshots, by group (a process that ended meanwhile is lost)."""
    seconds = Counter({key: 0.0 for key in CPU_GROUPS})
    for pid, (group, cpu) in after["processes"].items():
        previous = before["processes"].get(pid)
        seconds[group] += cpu - (previous[1] if previous else 0.0)
    seconds["system_busy"] = after["system_busy"] - before["system_busy"]
    seconds["other"] = max(0.0, seconds["system_busy"] - sum(seconds[k] for k in CPU_GROUPS))
    return seconds


def cpu_summary(seconds: Counter, events: int, wall: float) -> dict[str, Any]:
    """CPU seconds by group, µs per event, and the rate two dedicated cores would allow."""
    events = max(1, events)
    per_event = {key: round(value * 1e6 / events, 1) for key, value in seconds.items()}
    ours = sum(per_event.get(key, 0.0) for key in CPU_GROUPS)  # everything but others' work
    return {
        "others_share_of_machine": round(seconds["other"] / wall / (os.cpu_count() or 1), 3)
        if wall
        else None,
        "cpu_seconds": {key: round(value, 3) for key, value in seconds.items()},
        "cpu_us_per_event": per_event,
        "cpu_ceiling_events_per_s": round((os.cpu_count() or 1) * 1e6 / ours) if ours else 0,
    }


def cpu_delta(
    before: dict[str, Any], after: dict[str, Any], events: int, wall: float
) -> dict[str, Any]:
    return cpu_summary(cpu_seconds(before, after), events, wall)


# -- HTTP load ---------------------------------------------------------------------------------


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, bytes]:
    """One request; reuses ``conn`` (reconnecting when the server closed it)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        for attempt in range(2):
            try:
                conn.request(method, path, body=body, headers=headers or {})
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")
    finally:
        if own:
            conn.close()


def post_batches(
    port: int,
    path: str,
    bodies: list[tuple[bytes, int]],
    headers: dict[str, str],
    threads: int,
    count: Callable[[int, bytes], tuple[int, str]],
) -> dict[str, Any]:
    """POST every body from ``threads`` persistent connections; return wall time and counts.

    ``count(status, response_body)`` returns (accepted events, problem or "").
    """
    counter = itertools.count()
    lock = threading.Lock()
    totals = {"accepted": 0, "sent": 0, "requests": 0, "problems": Counter()}
    request_seconds: list[float] = []
    start = threading.Barrier(threads + 1)

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        accepted = sent = requests = 0
        problems: Counter = Counter()
        timings = []
        start.wait()
        while (index := next(counter)) < len(bodies):
            body, events = bodies[index]
            began = time.perf_counter()
            try:
                status, data = http_request(port, "POST", path, body, headers, conn)
            except OSError as exc:
                problems[type(exc).__name__] += 1
                continue
            timings.append(time.perf_counter() - began)
            got, problem = count(status, data)
            accepted += got
            sent += events
            requests += 1
            if problem:
                problems[problem] += 1
        conn.close()
        with lock:
            totals["accepted"] += accepted
            totals["sent"] += sent
            totals["requests"] += requests
            totals["problems"].update(problems)
            request_seconds.extend(timings)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - began
    return summarize([{**totals, "wall": wall, "request_seconds": request_seconds}])


def summarize(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals of one or more ``post_batches`` rounds (events/s over their summed wall time)."""
    wall = sum(part["wall"] for part in parts)
    accepted = sum(part["accepted"] for part in parts)
    request_seconds = sorted(x for part in parts for x in part["request_seconds"])
    problems: Counter = Counter()
    for part in parts:
        problems.update(part["problems"])
    return {
        "wall_seconds": round(wall, 3),
        "rounds": len(parts),
        "requests": sum(part["requests"] for part in parts),
        "sent": sum(part["sent"] for part in parts),
        "accepted": accepted,
        "events_per_s": round(accepted / wall) if wall else 0,
        "request_ms_p50": round(percentile(request_seconds, 50) * 1000, 1),
        "request_ms_p99": round(percentile(request_seconds, 99) * 1000, 1),
        "problems": dict(problems),
        "raw": parts,
    }


def count_ours(status: int, data: bytes) -> tuple[int, str]:
    if status != 200:
        return 0, f"HTTP {status}: {data[:200]!r}"
    answer = json.loads(data)
    if answer["accepted"] == answer["received"]:
        return answer["accepted"], ""
    first = next(r for r in answer["results"] if r["status"] != "accepted")
    return answer["accepted"], f"{first['status']} {first.get('code', '')} {first.get('field', '')}"


def count_naive(status: int, data: bytes) -> tuple[int, str]:
    if status != 201:
        return 0, f"HTTP {status}: {data[:200]!r}"
    return json.loads(data)["accepted"], ""


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


# -- request bodies ------------------------------------------------------------------------


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def make_events(tag: str, batch: int, size: int, start_ms: int) -> list[dict[str, Any]]:
    """Fixture-shaped events with ids unique to (tag, batch, index)."""
    events = client_telemetry_events(size, start_ms=start_ms)
    for index, event in enumerate(events):
        event["event_id"] = f"{tag}{batch:05d}.{index:03d}"
    return events


def json_bodies(tag: str, total: int, start_ms: int) -> list[tuple[bytes, int]]:
    bodies = []
    for batch in range(-(-total // BATCH_SIZE)):
        size = min(BATCH_SIZE, total - batch * BATCH_SIZE)
        events = make_events(tag, batch, size, start_ms)
        body = json.dumps({"events": events}, separators=(",", ":")).encode()
        bodies.append((body, size))
    return bodies


def message_classes() -> tuple[type, type]:
    """(ClientTelemetryEvent, telemetry.v1.EventBatch), compiled with the platform's protoc."""
    from governance.platform_protos import event_batch_class
    from governance.protoc import compile_protos
    from governance.schemas import load_schema

    file_set = compile_protos({"client_telemetry.proto": CLIENT_TELEMETRY_PROTO})
    event_class = load_schema(file_set.SerializeToString(), CLIENT_TELEMETRY_MESSAGE).message_class
    return event_class, event_batch_class()


def protobuf_bodies(
    tag: str, total: int, start_ms: int, event_class: type, batch_class: type
) -> list[tuple[bytes, int]]:
    """EventBatch bodies; items leave ``schema`` empty and take ``?schema=``.

    Events are built from the same dicts as the JSON bodies (the platform's fast JSON
    builder, ParseDict when it declines: both give identical messages).
    """
    from google.protobuf import json_format

    from governance.fastjson import compile_json_parser

    fast = compile_json_parser(event_class.DESCRIPTOR, event_class)
    bodies = []
    for batch_number in range(-(-total // BATCH_SIZE)):
        size = min(BATCH_SIZE, total - batch_number * BATCH_SIZE)
        batch = batch_class()
        for event in make_events(tag, batch_number, size, start_ms):
            message = fast(event) or json_format.ParseDict(event, event_class())
            batch.events.add().event = message.SerializeToString()
        bodies.append((batch.SerializeToString(), size))
    return bodies


# -- naive and COPY rows -------------------------------------------------------------------------


def event_columns(conn: Any) -> list[str]:
    """Every column of ingest_event but the generated id, as the table has them now."""
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'ingest_event' "
        "AND column_name <> 'id' ORDER BY ordinal_position"
    ).fetchall()
    return [name for (name,) in rows]


def stored_rows_query(columns: list[str], tag: str, new_tag: str, limit: int) -> str:
    """The rows run (a) stored (event ids starting with ``tag``), with a new id prefix."""
    selected = ", ".join(
        f"'{new_tag}' || substr(event_id, 2)" if column == "event_id" else column
        for column in columns
    )
    return (
        f"SELECT {selected} FROM ingest_event WHERE event_id LIKE '{tag}%' "
        f"ORDER BY id LIMIT {int(limit)}"
    )


def naive_bodies(conn: Any, total: int) -> list[tuple[bytes, int]]:
    """The rows run (a) stored, as final rows for the naive view (new event ids)."""
    columns = event_columns(conn)
    rows = conn.execute(stored_rows_query(columns, "j", "n", total)).fetchall()
    if len(rows) < total:
        raise RuntimeError(f"only {len(rows)} stored rows to replay through the naive view")
    documents = []
    for row in rows:
        record = {
            # The serializer's field for the schema_revision_id column is schema_revision.
            column.removesuffix("_id") if column == "schema_revision_id" else column: (
                value.isoformat() if isinstance(value, datetime) else value
            )
            for column, value in zip(columns, row, strict=True)
        }
        documents.append(record)
    bodies = []
    for start in range(0, total, BATCH_SIZE):
        chunk = documents[start : start + BATCH_SIZE]
        bodies.append((json.dumps({"events": chunk}).encode(), len(chunk)))
    return bodies


def copy_export(conn: Any, total: int) -> tuple[list[str], bytes]:
    """The stored rows of run (a), new event ids, in COPY text format."""
    columns = event_columns(conn)
    buffer = bytearray()
    export = f"COPY ({stored_rows_query(columns, 'j', 'c', total)}) TO STDOUT"
    with conn.cursor() as cursor, cursor.copy(export) as copy:
        for data in copy:
            buffer += data
    return columns, bytes(buffer)


def copy_load(conn: Any, columns: list[str], data: bytes) -> dict[str, Any]:
    """COPY ``data`` into ingest_event in one transaction (commit included in the time)."""
    rows = data.count(b"\n")
    chunk = 1 << 20
    began = time.perf_counter()
    load = f"COPY ingest_event ({', '.join(columns)}) FROM STDIN"
    with conn.transaction(), conn.cursor() as cursor, cursor.copy(load) as copy:
        for offset in range(0, len(data), chunk):
            copy.write(data[offset : offset + chunk])
    wall = time.perf_counter() - began
    return {
        "wall_seconds": round(wall, 3),
        "rows": rows,
        "bytes": len(data),
        "events_per_s": round(rows / wall),
        "columns": columns,
    }


# -- single-event latency ---------------------------------------------------------------------


Request = tuple[str, bytes, dict[str, str]]  # path, body, headers


def open_loop(
    port: int, requests: list[Request], rate: float, threads: int
) -> tuple[float, list[tuple[float, float, float, bool]]]:
    """Request k is due at t0 + k/rate; thread j sends k = j, j+threads, ...

    Returns t0 and (due, sent, done, ok) per request, seconds on the perf counter; ok is an
    answer 200 that accepted one event.
    """
    records: list[tuple[float, float, float, bool]] = []
    lock = threading.Lock()
    t0 = time.perf_counter() + 0.2

    def worker(offset: int) -> None:
        mine = []
        for k in range(offset, len(requests), threads):
            path, body, headers = requests[k]
            due = t0 + k / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            try:
                status, data = http_request(port, "POST", path, body, headers)
                ok = status == 200 and json.loads(data)["accepted"] == 1
            except (OSError, ValueError, KeyError):
                ok = False
            mine.append((due, sent, time.perf_counter(), ok))
        with lock:
            records.extend(mine)

    pool = [threading.Thread(target=worker, args=(j,), daemon=True) for j in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return t0, records


def latency_run(
    port: int, headers: dict[str, str], rate: float, seconds: float, threads: int
) -> dict[str, Any]:
    """Open loop: request k is due at t0 + k/rate; thread j sends k = j, j+threads, ..."""
    total = int(rate * seconds)
    start_ms = now_ms() - 10 * 60 * 1000
    bodies = [
        json.dumps({"events": make_events("l", k, 1, start_ms + k)}, separators=(",", ":")).encode()
        for k in range(total)
    ]
    t0, records = open_loop(port, [(INGEST_PATH, body, headers) for body in bodies], rate,
                            threads)
    ok_records = [r for r in records if r[3]]
    from_due = sorted(done - due for due, _, done, _ in ok_records)
    from_send = sorted(done - sent for _, sent, done, _ in ok_records)
    elapsed = max(done for _, _, done, _ in records) - t0
    late = sorted(sent - due for due, sent, _, _ in records)
    return {
        "target_rate_per_s": rate,
        "seconds": seconds,
        "requests": total,
        "ok": len(ok_records),
        "achieved_rate_per_s": round(len(ok_records) / elapsed, 1),
        "elapsed_seconds": round(elapsed, 2),
        "p50_ms": round(percentile(from_due, 50) * 1000, 2),
        "p99_ms": round(percentile(from_due, 99) * 1000, 2),
        "max_ms": round(from_due[-1] * 1000, 2) if from_due else None,
        "service_p50_ms": round(percentile(from_send, 50) * 1000, 2),
        "service_p99_ms": round(percentile(from_send, 99) * 1000, 2),
        "send_lag_p99_ms": round(percentile(late, 99) * 1000, 2),
        "client_threads": threads,
    }


# -- server-side profile (in-process, Django configured; run as a subprocess) --------------------


def profile_server(batches: int) -> dict[str, Any]:
    """Where a request's time goes, per event, on 500-event batches (JSON and protobuf).

    Whole requests go through Django's test client (middleware, DRF, API-key auth, rate
    limit, pipeline, response rendering; no HTTP server) with timing wrappers around the
    functions on the real call path, so every step is measured inside the same requests;
    the "rest" lines are what the wrapped steps leave over. The store step (rows COPied
    into the staging table, then one INSERT ... SELECT) is split by a Django execute
    wrapper around the INSERT into psycopg's client-side binding (``mogrify``) and
    PostgreSQL's execution of the bound statement; the rest is encoding and COPY. Medians
    over the batches, wall µs per event. A cProfile of ``ingest_batch`` follows.
    """
    import cProfile
    import pstats

    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from google.protobuf import json_format
    from rest_framework import renderers

    from governance.selectors import schema_plans
    from ingest import pipeline
    from ingest.api import authentication, steps
    from ingest.pipeline import count, prepare, store

    secret = os.environ["BENCH_API_KEY"]
    event_class, batch_class = message_classes()
    start_ms = now_ms() - 40 * 60 * 1000
    counter = itertools.count()
    tick = time.perf_counter
    spent: Counter = Counter()
    restore: list[tuple[Any, str, Any]] = []
    missing: list[str] = []

    def wrap(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name, None)
        if original is None:
            missing.append(name)
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            began = tick()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += tick() - began

        restore.append((owner, name, original))
        setattr(owner, name, timed)

    def split_insert(execute: Callable, sql: str, params: Any, many: bool, context: dict) -> Any:
        if many or "INSERT INTO ingest_event" not in sql:
            return execute(sql, params, many, context)
        raw = context["cursor"].cursor  # the psycopg cursor (client-side binding)
        began = tick()
        literal = raw.mogrify(sql, params)
        bound = tick()
        result = raw.execute(literal)
        spent["bind"] += bound - began
        spent["execute"] += tick() - bound
        return result

    wrap(pipeline, "decode_json_batch", "decode")
    wrap(pipeline, "decode_protobuf_batch", "decode")
    wrap(pipeline, "ingest_batch", "ingest_batch")
    wrap(schema_plans, "get", "resolve schema")
    wrap(prepare, "validate_event", "validate")
    wrap(prepare, "redact_message", "redact")
    wrap(prepare, "_envelope", "envelope")
    wrap(json_format, "MessageToDict", "MessageToDict")
    wrap(store, "persist_events", "INSERT")
    wrap(connection, "commit", "commit")
    wrap(prepare, "_metric_labels", "metrics")
    wrap(count, "batch_count", "metrics")
    wrap(authentication, "api_key_authenticate", "auth")
    wrap(steps, "rate_limits_take", "rate limit")
    wrap(renderers.JSONRenderer, "render", "render")

    def fresh_body(kind: str, size: int = BATCH_SIZE) -> bytes:
        tag = f"{'x' if kind == 'json' else 'y'}{next(counter)}-"
        if kind == "json":
            return json_bodies(tag, size, start_ms)[0][0]
        return protobuf_bodies(tag, size, start_ms, event_class, batch_class)[0][0]

    client = Client(HTTP_HOST="127.0.0.1")
    auth_header = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}

    def request(kind: str, size: int = BATCH_SIZE) -> dict[str, float]:
        body = fresh_body(kind, size)
        content_type = "application/json" if kind == "json" else "application/x-protobuf"
        spent.clear()
        began = tick()
        with connection.execute_wrapper(split_insert):
            response = client.post(INGEST_PATH, data=body, content_type=content_type, **auth_header)
        total = tick() - began
        assert response.status_code == 200, response.content[:300]
        assert response.json()["accepted"] == size, response.content[:300]
        g = spent.__getitem__  # a Counter: 0.0 for a step that did not run
        pipeline_steps = g("resolve schema") + g("validate") + g("redact") + g("envelope")
        return {
            "decode": g("decode"),
            "resolve schema": g("resolve schema"),
            "validate (parse, size check)": g("validate"),
            "redact": g("redact"),
            "envelope (roles, time window, payload dict)": g("envelope"),
            "  of which MessageToDict (renderer fallback only)": g("MessageToDict"),
            "store (persist_events)": g("INSERT"),
            "    rows encoded + COPY to the staging table": g("INSERT") - g("bind") - g("execute"),
            "    psycopg client-side binding (mogrify)": g("bind"),
            "    PostgreSQL runs INSERT ... SELECT ... RETURNING": g("execute"),
            "commit": g("commit"),
            "rest of ingest_batch (loop, results, metrics, refresh)": g("ingest_batch")
            - pipeline_steps
            - g("INSERT")
            - g("commit"),
            "  of which metrics labels + counters": g("metrics"),
            "ingest_batch total": g("ingest_batch"),
            "auth (API key lookup)": g("auth"),
            "rate limit (Redis)": g("rate limit"),
            "response rendering (JSONRenderer)": g("render"),
            "rest of request (middleware, DRF, view)": total
            - g("decode")
            - g("ingest_batch")
            - g("auth")
            - g("rate limit")
            - g("render"),
            "request total (test client, no HTTP server)": total,
        }

    def medians(samples: list[dict[str, float]], per: int) -> dict[str, float]:
        return {
            name: round(statistics.median(s[name] for s in samples) * 1e6 / per, 1)
            for name in samples[0]
        }

    schema_plans.refresh(force=True)
    report: dict[str, Any] = {
        "batch_size": BATCH_SIZE,
        "batches": batches,
        "steps": {},
        "not_wrapped": missing,
    }
    try:
        for kind in ("json", "protobuf"):
            request(kind)  # warm-up
            report["steps"][kind] = medians([request(kind) for _ in range(batches)], BATCH_SIZE)
        for _ in range(20):
            request("json", 1)
        report["single_event_request_us"] = medians([request("json", 1) for _ in range(100)], 1)
    finally:
        for owner, name, original in reversed(restore):
            setattr(owner, name, original)

    # cProfile of ingest_batch for JSON batches: where the time goes, by function.
    profiler = cProfile.Profile()
    context = pipeline.IngestContext(source=API_KEY_NAME, request_id="cprofile")
    for _ in range(batches):
        body = fresh_body("json")
        items = pipeline.decode_json_batch(body, default_schema=CLIENT_TELEMETRY_SCHEMA)
        profiler.enable()
        pipeline.ingest_batch(items, context)
        profiler.disable()
    stats = pstats.Stats(profiler)
    events = batches * BATCH_SIZE
    top = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:25]
    report["cprofile_ingest_batch_json_top_tottime"] = [
        {
            "function": f"{Path(file).name}:{line}({name})",
            "calls_per_event": round(calls / events, 2),
            "tottime_us_per_event": round(tottime * 1e6 / events, 2),
            "cumtime_us_per_event": round(cumtime * 1e6 / events, 2),
        }
        for (file, line, name), (_, calls, tottime, cumtime, _) in top
    ]
    return report


# -- report ----------------------------------------------------------------------------------------


def machine_info(workers: int, threads: int) -> dict[str, Any]:
    facts = support.machine_facts()
    load_average = facts.pop("load_average_at_start")
    pg_version = ""
    with contextlib.suppress(Exception), support.connect(f"{PG_SERVER}/postgres") as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
    return {
        **facts,
        "protobuf": support.protobuf_version(),
        "postgresql": pg_version,
        "load_average_at_start": load_average,
        "gunicorn_workers": workers,
        "gunicorn_worker_class": "sync (gunicorn.conf.py sets none; Procfile default)",
        "client_threads": threads,
        "note": (
            f"{os.cpu_count()} cores shared by gunicorn, PostgreSQL, Redis and this load "
            "generator: nothing is pinned; CPU per group is reported per run"
        ),
    }


def print_report(report: dict[str, Any]) -> None:
    m = report["machine"]
    print(f"\nmachine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gb']} GB | {m['platform']}")
    print(
        f"python {m['python']} | protobuf {m['protobuf']} | PostgreSQL {m['postgresql']} | "
        f"load average at start {m['load_average_at_start']}"
    )
    print(f"NOTE: {m['note']}.")
    print(
        f"server: gunicorn telemetry_platform.wsgi, {m['gunicorn_workers']} gthread workers, "
        f"DEBUG=false; client: {m['client_threads']} threads; batches of {BATCH_SIZE} events\n"
    )
    runs = report["runs"]
    header = (
        f"{'row':<34} {'events':>8} {'wall s':>7} {'events/s':>10} | {'server':>6} {'pg':>5} "
        f"{'client':>6} {'others':>6} | {'ceiling/s':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, label in (
        ("ours_json", "ours JSON (HTTP, 500/batch)"),
        ("ours_protobuf", "ours protobuf (HTTP, 500/batch)"),
        ("naive", "naive DRF ModelSerializer (HTTP)"),
        ("copy", "PostgreSQL COPY (1 process)"),
    ):
        run = runs[name]
        events = run.get("accepted", run.get("rows"))
        cpu = run.get("cpu_us_per_event", {})
        pg = cpu.get("postgres", 0) + cpu.get("postgres_background", 0)
        print(
            f"{label:<34} {events:>8,} {run['wall_seconds']:>7.2f} {run['events_per_s']:>10,} | "
            f"{cpu.get('server', 0):>6.0f} {pg:>5.0f} {cpu.get('client', 0):>6.0f} "
            f"{cpu.get('other', 0):>6.0f} | {run.get('cpu_ceiling_events_per_s', 0):>9,}"
        )
    print(
        "CPU columns: µs of CPU per event (from /proc) by gunicorn (arbiter + workers), the "
        "bench database's\nPostgreSQL processes, this load generator, and everything else on "
        "the machine (others' work).\nceiling/s: cores / (server + pg + redis + client CPU per "
        "event): the rate if the machine were ours alone\n(an estimate: assumes perfect overlap)."
    )
    shares = {
        name: run.get("others_share_of_machine") or 0.0
        for name, run in runs.items()
        if isinstance(run, dict) and "cpu_seconds" in run
    }
    print(
        f"machine {m.get('busy_before_measuring', 0):.0%} busy before measuring; others' share "
        "of the machine during each run: "
        + ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
    )
    if max(shares.values(), default=0) > 0.15:
        print(
            "WARNING: other processes used a sizeable share of the cores during the runs: the "
            "events/s above\nare depressed by it (see ceiling/s); rerun on a quiet machine "
            "(--wait-quiet 120)."
        )
    print()
    print(f"{'ratio':<34} {'events/s':>9} {'ceiling/s':>10}")
    for label, value in report["ratios"].items():
        print(f"{label:<34} {value:>8.2f}x {report['ratios_of_cpu_ceilings'][label]:>9.2f}x")
    lat = runs["latency"]
    print(
        f"\nsingle-event JSON, open loop {lat['target_rate_per_s']:g}/s for {lat['seconds']:g}s: "
        f"achieved {lat['achieved_rate_per_s']}/s ({lat['ok']}/{lat['requests']} ok); "
        f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms "
        f"(from scheduled send; service time p50 {lat['service_p50_ms']} ms, "
        f"p99 {lat['service_p99_ms']} ms)"
    )
    print()
    for check in report["checks"]:
        print(f"{'PASS' if check['passed'] else 'FAIL'}  {check['name']}: {check['detail']}")


def print_profile(profile: dict[str, Any], runs: dict[str, Any]) -> None:
    print(
        "\nserver-side profile: whole requests in-process (Django test client, bench database), "
        f"timed step by step;\nmedian of {profile['batches']} batches of "
        f"{profile['batch_size']} events, wall µs per event (machine shared, see 'others'):"
    )
    print(f"  {'step':<56} {'JSON':>8} {'protobuf':>9}")
    for name, value in profile["steps"]["json"].items():
        other = profile["steps"]["protobuf"].get(name, float("nan"))
        print(f"  {name:<56} {value:>8.1f} {other:>9.1f}")
    cpu = {name: runs[name].get("cpu_us_per_event", {}) for name in ("ours_json", "ours_protobuf")}
    for label, key in (("gunicorn", "server"), ("PostgreSQL", "postgres")):
        print(
            f"  {'over HTTP (run a), ' + label + ' CPU per event':<56} "
            f"{cpu['ours_json'].get(key, 0):>8.1f} {cpu['ours_protobuf'].get(key, 0):>9.1f}"
        )
    single = profile["single_event_request_us"]
    print("\n  single-event JSON request in-process, median µs:")
    for name, value in single.items():
        if value >= 1 or name.startswith("request"):
            print(f"    {name:<56} {value:>8.0f}")
    print("\n  cProfile of ingest_batch (JSON batches), top functions by own time, µs per event:")
    print(f"  {'function':<60} {'calls/ev':>8} {'own':>7} {'cum':>7}")
    for row in profile["cprofile_ingest_batch_json_top_tottime"][:20]:
        print(
            f"  {row['function'][:60]:<60} {row['calls_per_event']:>8} "
            f"{row['tottime_us_per_event']:>7.1f} {row['cumtime_us_per_event']:>7.1f}"
        )


# -- main ------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    total = args.events
    naive_total = args.naive_events or max(BATCH_SIZE, (total // 10) // BATCH_SIZE * BATCH_SIZE)
    latency_seconds = args.latency_seconds
    machine = machine_info(args.workers, args.threads)
    workdir = Path(tempfile.mkdtemp(prefix="ingest-e2e-"))
    servers: list[Gunicorn] = []
    report: dict[str, Any] = {"benchmark": "ingest_e2e", "machine": machine, "runs": {}}
    runs = report["runs"]
    started = time.perf_counter()
    try:
        print(f"set-up: database {BENCH_DB}, Redis {REDIS_URL}, work dir {workdir}", flush=True)
        support.database_recreate(BENCH_DB)
        env = server_env()
        secret = platform_setup(env, workdir)
        metrics_dir = workdir / "prometheus"
        metrics_dir.mkdir()
        naive_metrics_dir = workdir / "prometheus-naive"
        naive_metrics_dir.mkdir()
        ours = Gunicorn(
            "ours", server_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)), args.workers, workdir
        )
        servers.append(ours)
        naive = Gunicorn(
            "naive",
            server_env(
                PROMETHEUS_MULTIPROC_DIR=str(naive_metrics_dir),
                DJANGO_SETTINGS_MODULE="bench.naive.settings",
            ),
            args.workers,
            workdir,
        )
        servers.append(naive)
        print(f"building {total:,} JSON and {total:,} protobuf events ...", flush=True)
        start_ms = now_ms() - 50 * 60 * 1000  # 500 events span 500 s: all within the hour
        event_class, batch_class = message_classes()
        warm_json = json_bodies("w", 8 * BATCH_SIZE, start_ms)
        warm_protobuf = protobuf_bodies("v", 8 * BATCH_SIZE, start_ms, event_class, batch_class)
        bodies_json = json_bodies("j", total, start_ms)
        bodies_protobuf = protobuf_bodies("p", total, start_ms, event_class, batch_class)
        ours.wait_ready()
        naive.wait_ready()
        auth = {"Authorization": f"Bearer {secret}"}
        json_headers = {**auth, "Content-Type": "application/json"}
        protobuf_headers = {**auth, "Content-Type": "application/x-protobuf"}

        machine["busy_before_measuring"] = round(wait_quiet(args.wait_quiet), 3)
        print(f"machine {machine['busy_before_measuring']:.0%} busy before measuring", flush=True)
        print("warm-up ...", flush=True)
        for bodies, headers in ((warm_json, json_headers), (warm_protobuf, protobuf_headers)):
            warm = post_batches(ours.port, INGEST_PATH, bodies, headers, args.threads, count_ours)
            if warm["accepted"] != warm["sent"]:
                raise RuntimeError(f"warm-up: {warm['problems']}\n{ours.log_tail()}")

        # JSON and protobuf alternate in rounds, so table growth and others' load on the
        # shared machine weigh on both alike.
        plan = (
            ("ours_json", bodies_json, json_headers),
            ("ours_protobuf", bodies_protobuf, protobuf_headers),
        )
        parts: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in plan}
        cpu: dict[str, Counter] = {name: Counter() for name, _, _ in plan}
        rounds = max(1, args.rounds)
        for number in range(rounds):
            for name, bodies, headers in plan:
                chunk = bodies[number::rounds]
                print(f"{name} round {number + 1}/{rounds}: {sum(n for _, n in chunk):,} events")
                before = cpu_snapshot(ours)
                part = post_batches(
                    ours.port, INGEST_PATH, chunk, headers, args.threads, count_ours
                )
                cpu[name].update(cpu_seconds(before, cpu_snapshot(ours)))
                parts[name].extend(part.pop("raw"))
                print(f"  {part['events_per_s']:,} events/s", flush=True)
        for name, bodies, _ in plan:
            result = summarize(parts[name])
            result.pop("raw")
            result.update(cpu_summary(cpu[name], result["accepted"], result["wall_seconds"]))
            result["body_bytes_per_event"] = round(
                sum(len(b) for b, _ in bodies) / sum(n for _, n in bodies), 1
            )
            runs[name] = result

        print(f"latency: {args.latency_rate:g}/s for {latency_seconds:g}s ...", flush=True)
        before = cpu_snapshot(ours)
        runs["latency"] = latency_run(
            ours.port, json_headers, args.latency_rate, latency_seconds, args.latency_threads
        )
        runs["latency"].update(
            cpu_delta(
                before,
                cpu_snapshot(ours),
                max(1, runs["latency"]["ok"]),
                runs["latency"]["elapsed_seconds"],
            )
        )

        with support.connect(DATABASE_URL) as conn:
            stored = conn.execute(
                "SELECT count(*) FROM ingest_event WHERE event_id LIKE 'j%' OR event_id LIKE 'p%'"
            ).fetchone()[0]
            runs["stored_rows_ours"] = stored
            print(f"naive: {naive_total:,} events ...", flush=True)
            bodies_naive = naive_bodies(conn, naive_total)
            headers = {"Content-Type": "application/json"}
            warm_rows = naive_bodies_warm(bodies_naive)
            warm = post_batches(naive.port, NAIVE_PATH, warm_rows, headers, 2, count_naive)
            if warm["accepted"] != warm["sent"]:
                raise RuntimeError(f"naive warm-up: {warm['problems']}\n{naive.log_tail()}")
            before = cpu_snapshot(naive)
            result = post_batches(
                naive.port, NAIVE_PATH, bodies_naive, headers, args.threads, count_naive
            )
            result.pop("raw")
            result.update(
                cpu_delta(
                    before, cpu_snapshot(naive), max(1, result["accepted"]), result["wall_seconds"]
                )
            )
            runs["naive"] = result
            print(f"  {result['events_per_s']:,} events/s", flush=True)

            print(f"COPY: {total:,} rows ...", flush=True)
            columns, data = copy_export(conn, total)
            before = cpu_snapshot(None)
            result = copy_load(conn, columns, data)
            result.update(
                cpu_delta(before, cpu_snapshot(None), result["rows"], result["wall_seconds"])
            )
            runs["copy"] = result
            print(f"  {result['events_per_s']:,} events/s", flush=True)

        ours_json = runs["ours_json"]["events_per_s"]
        ours_protobuf = runs["ours_protobuf"]["events_per_s"]
        naive_rate = runs["naive"]["events_per_s"]
        copy_rate = runs["copy"]["events_per_s"]
        report["ratios"] = {
            "ours JSON / naive": ours_json / naive_rate,
            "ours protobuf / naive": ours_protobuf / naive_rate,
            "ours JSON / COPY": ours_json / copy_rate,
            "ours protobuf / COPY": ours_protobuf / copy_rate,
        }
        ceiling = {
            name: runs[name]["cpu_ceiling_events_per_s"]
            for name in runs
            if name != "latency"
            and isinstance(runs[name], dict)
            and "cpu_ceiling_events_per_s" in runs[name]
        }
        report["ratios_of_cpu_ceilings"] = {
            "ours JSON / naive": ceiling["ours_json"] / ceiling["naive"],
            "ours protobuf / naive": ceiling["ours_protobuf"] / ceiling["naive"],
            "ours JSON / COPY": ceiling["ours_json"] / ceiling["copy"],
            "ours protobuf / COPY": ceiling["ours_protobuf"] / ceiling["copy"],
        }
        report["checks"] = checks(runs, report["ratios"])
        if args.profile or not all(c["passed"] for c in report["checks"] if c["target"]):
            print("profiling the server side in-process ...", flush=True)
            report["profile"] = profile_subprocess(secret, args.profile_batches, workdir)
    finally:
        for server in servers:
            server.stop()
        if args.keep_database:
            print(f"kept database {BENCH_DB}")
        else:
            support.database_drop(BENCH_DB)
        shutil.rmtree(workdir, ignore_errors=True)
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    report["command"] = "/work/main/.venv/bin/python bench/ingest_e2e.py " + " ".join(sys.argv[1:])
    return report


def naive_bodies_warm(bodies: list[tuple[bytes, int]]) -> list[tuple[bytes, int]]:
    """Two small warm-up batches for the naive server (ids outside the measured rows)."""
    warm = []
    for number in range(2):
        document = json.loads(bodies[0][0])
        rows = document["events"][:20]
        for row in rows:
            row["event_id"] = f"m{number}" + row["event_id"][1:]
        warm.append((json.dumps({"events": rows}).encode(), len(rows)))
    return warm


def checks(runs: dict[str, Any], ratios: dict[str, float]) -> list[dict[str, Any]]:
    json_run, protobuf_run = runs["ours_json"], runs["ours_protobuf"]
    all_accepted = all(
        run["accepted"] == run["sent"] and not run["problems"]
        for run in (json_run, protobuf_run, runs["naive"])
    )
    lat = runs["latency"]
    return [
        {
            "name": "every event accepted (ours JSON, ours protobuf, naive)",
            "passed": all_accepted and runs["stored_rows_ours"] == json_run["sent"] * 2,
            "target": True,
            "detail": (
                f"JSON {json_run['accepted']:,}/{json_run['sent']:,}, protobuf "
                f"{protobuf_run['accepted']:,}/{protobuf_run['sent']:,}, naive "
                f"{runs['naive']['accepted']:,}/{runs['naive']['sent']:,}; rows stored "
                f"{runs['stored_rows_ours']:,}; problems "
                f"{json_run['problems'] or protobuf_run['problems'] or runs['naive']['problems']}"
            ),
        },
        {
            "name": f"ours JSON >= {JSON_TARGET:,} events/s",
            "passed": json_run["events_per_s"] >= JSON_TARGET,
            "target": True,
            "detail": f"{json_run['events_per_s']:,} events/s",
        },
        {
            "name": f"ours protobuf >= {PROTOBUF_TARGET:,} events/s",
            "passed": protobuf_run["events_per_s"] >= PROTOBUF_TARGET,
            "target": True,
            "detail": f"{protobuf_run['events_per_s']:,} events/s",
        },
        {
            "name": f"ours >= {NAIVE_RATIO_TARGET:g}x naive (JSON and protobuf)",
            "passed": min(ratios["ours JSON / naive"], ratios["ours protobuf / naive"])
            >= NAIVE_RATIO_TARGET,
            "target": True,
            "detail": (
                f"JSON {ratios['ours JSON / naive']:.1f}x, "
                f"protobuf {ratios['ours protobuf / naive']:.1f}x"
            ),
        },
        {
            "name": f"fraction of COPY (aim >= {COPY_FRACTION_AIM:.0%})",
            "passed": min(ratios["ours JSON / COPY"], ratios["ours protobuf / COPY"])
            >= COPY_FRACTION_AIM,
            "target": False,
            "detail": (
                f"JSON {ratios['ours JSON / COPY']:.0%}, protobuf "
                f"{ratios['ours protobuf / COPY']:.0%} of {runs['copy']['events_per_s']:,}/s"
            ),
        },
        {
            "name": "single-event latency (report)",
            "passed": lat["ok"] == lat["requests"],
            "target": False,
            "detail": (
                f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms at "
                f"{lat['achieved_rate_per_s']}/s of {lat['target_rate_per_s']:g}/s"
            ),
        },
    ]


def profile_subprocess(secret: str, batches: int, workdir: Path) -> dict[str, Any] | None:
    metrics_dir = workdir / "prometheus-profile"
    metrics_dir.mkdir(exist_ok=True)
    env = server_env(
        DJANGO_SETTINGS_MODULE="telemetry_platform.settings",
        BENCH_API_KEY=secret,
        LOG_LEVEL="WARNING",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    completed = subprocess.run(  # noqa: S603 (fixed argv)
        [
            PYTHON,
            str(Path(__file__).resolve()),
            "--profile-server",
            "--profile-batches",
            str(batches),
            "--database",
            BENCH_DB,
            "--redis-db",
            REDIS_URL.rsplit("/", 1)[1],
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        print(f"profile failed:\n{completed.stderr[-3000:]}")
        return None
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per ours run and COPY")
    parser.add_argument("--quick", action="store_true", help="20k events, 5 s latency run")
    parser.add_argument("--naive-events", type=int, default=0, help="default: events / 10")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", "2")),
        help="gunicorn workers (WEB_CONCURRENCY, default 2 as in the Procfile)",
    )
    parser.add_argument("--threads", type=int, default=4, help="client connections")
    parser.add_argument("--rounds", type=int, default=2, help="JSON/protobuf alternations")
    parser.add_argument("--latency-rate", type=float, default=200.0)
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--latency-threads", type=int, default=32)
    parser.add_argument("--profile", action="store_true", help="profile even if targets pass")
    parser.add_argument("--profile-batches", type=int, default=10)
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="wait up to S seconds for the machine to be < 20%% busy before measuring",
    )
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument(
        "--database", default=BENCH_DB, help="bench database (created and dropped by the run)"
    )
    parser.add_argument("--redis-db", type=int, default=13, help="Redis database number")
    parser.add_argument("--profile-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    use_targets(args.database, args.redis_db)

    if args.profile_server:
        print(json.dumps(profile_server(args.profile_batches)))
        return 0
    if args.quick:
        args.events = min(args.events, 20_000)
        args.latency_seconds = min(args.latency_seconds, 5.0)
        args.profile_batches = min(args.profile_batches, 4)

    report = run(args)
    print_report(report)
    if report.get("profile"):
        print_profile(report["profile"], report["runs"])
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path = out_dir / "ingest_e2e.json"
    out_path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\ntotal {report['total_seconds']} s; wrote {out_path.relative_to(ROOT)}")
    return 0 if all(c["passed"] for c in report["checks"] if c["target"]) else 1


if __name__ == "__main__":
    sys.exit(main())

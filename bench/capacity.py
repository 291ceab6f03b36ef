"""Capacity model from measurements: CPU per event in the web tier and in PostgreSQL, WAL.

For three ways in — JSON batches of the client telemetry contract (500 events,
``/api/v1/events``), the same events as a protobuf ``EventBatch``, and OTLP logs
(``ExportLogsServiceRequest`` of 500 audit records to ``/v1/logs``) — this measures, all
against one gunicorn (as the Procfile runs it, ``--workers``) and a dedicated database
(``--database``, created, bootstrapped and dropped here) and Redis db (``--redis-db``, for
the rate-limit buckets and telemetry aggregates; not flushed, so it may be shared):

* **web CPU µs/event**: user+system CPU of the gunicorn arbiter and workers (``/proc/<pid>/
  stat``) over the run, divided by accepted events;
* **PostgreSQL CPU µs/event**: the CPU of the bench database's backends (``/proc``), and
  separately PostgreSQL's background processes (WAL writer, checkpointer, ... shared with
  whatever else runs on the server);
* **WAL bytes/event** from ``pg_current_wal_lsn()`` deltas and **WAL syncs/event** from
  ``pg_stat_wal`` (both server-wide: another database's writes during a round count too,
  so the smallest round is reported next to the mean);
* events/s per web core and per PostgreSQL core (1e6 / µs), the single primary's ceiling
  (its cores, and the WAL rate that ceiling means), and a table of the nodes a load of N
  events/s needs (cores at ``--target-utilisation``, 8-core web nodes).

Formats alternate in ``--rounds`` rounds so others' load on a shared machine weighs on all
alike; the machine's busy share (``others_share_of_machine``) is reported per format.
Prints a table and writes ``bench/results/capacity.json``.

Run: /work/main/.venv/bin/python bench/capacity.py [--quick] [--events N] [--rounds R]
     [--database NAME] [--redis-db N] [--wait-quiet S]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import ingest_e2e as e2e  # noqa: E402 (needs the repo on sys.path)
from bench import otlp, support  # noqa: E402

RESULT = ROOT / "bench" / "results" / "capacity.json"
WEB_NODE_CORES = 8
LOADS = (1_000, 5_000, 20_000, 50_000, 100_000)
FORMATS = ("json", "protobuf", "otlp_logs")


def wal_position(conn: Any) -> tuple[int, int, float]:
    """(WAL bytes written so far, WAL syncs so far, WAL sync ms so far): server-wide."""
    lsn = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]
    syncs, sync_ms = conn.execute("SELECT wal_sync, wal_sync_time FROM pg_stat_wal").fetchone()
    return int(lsn), int(syncs), float(sync_ms or 0.0)


def bodies_for(fmt: str, tag: str, events: int, start_ms: int, classes: tuple) -> list:
    if fmt == "json":
        return e2e.json_bodies(tag, events, start_ms)
    if fmt == "protobuf":
        return e2e.protobuf_bodies(tag, events, start_ms, *classes)
    return otlp.otlp_bodies(tag, max(1, events // otlp.BATCH))


def background_wal(conn: Any, seconds: float) -> tuple[float, float]:
    """WAL bytes/s and syncs/s the server writes while we send nothing (others' work)."""
    before = wal_position(conn)
    time.sleep(seconds)
    after = wal_position(conn)
    return (after[0] - before[0]) / seconds, (after[1] - before[1]) / seconds


def measure_round(
    server: e2e.Gunicorn,
    conn: Any,
    fmt: str,
    bodies: list,
    secret: str,
    threads: int,
    background_seconds: float = 0.0,
) -> dict[str, Any]:
    """Post ``bodies`` once; return accepted events, wall, CPU by group, WAL and syncs.

    WAL is server-wide: the rate measured over ``background_seconds`` just before the round
    (while this bench sends nothing) is subtracted for the ``_net`` figures.
    """
    wal_rate, sync_rate = (
        background_wal(conn, background_seconds) if background_seconds else (0.0, 0.0)
    )
    auth = {"Authorization": f"Bearer {secret}"}
    if fmt == "json":
        path, headers, count = e2e.INGEST_PATH, {**auth, "Content-Type": "application/json"}, None
    elif fmt == "protobuf":
        path, headers = e2e.INGEST_PATH, {**auth, "Content-Type": "application/x-protobuf"}
        count = None
    else:
        path, headers = "/v1/logs", {**auth, "Content-Type": "application/x-protobuf"}
        count = otlp.count_otlp
    wal_before = wal_position(conn)
    cpu_before = e2e.cpu_snapshot(server)
    began = time.perf_counter()
    result = e2e.post_batches(server.port, path, bodies, headers, threads, count or e2e.count_ours)
    wall = time.perf_counter() - began
    cpu = e2e.cpu_seconds(cpu_before, e2e.cpu_snapshot(server))
    wal_after = wal_position(conn)
    if result["accepted"] != result["sent"]:
        raise RuntimeError(f"{fmt}: not every event accepted: {result['problems']}")
    wal_bytes = wal_after[0] - wal_before[0]
    wal_syncs = wal_after[1] - wal_before[1]
    return {
        "events": result["accepted"],
        "wall": wall,
        "cpu": cpu,
        "wal_bytes": wal_bytes,
        "wal_syncs": wal_syncs,
        "wal_bytes_net": max(0.0, wal_bytes - wal_rate * wall),
        "wal_syncs_net": max(0.0, wal_syncs - sync_rate * wall),
        "background_wal_bytes_per_s": round(wal_rate),
    }


def summarise(fmt: str, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    events = sum(r["events"] for r in rounds)
    wall = sum(r["wall"] for r in rounds)
    cpu: Counter = Counter()
    for r in rounds:
        cpu.update(r["cpu"])
    web_us = cpu["server"] * 1e6 / events
    pg_us = cpu["postgres"] * 1e6 / events
    pg_bg_us = cpu["postgres_background"] * 1e6 / events
    wal_per_event = [r["wal_bytes"] / r["events"] for r in rounds]
    net_per_event = sorted(r["wal_bytes_net"] / r["events"] for r in rounds)
    return {
        "format": fmt,
        "events": events,
        "wall_seconds": round(wall, 2),
        "events_per_s_this_machine": round(events / wall),
        "web_cpu_us_per_event": round(web_us, 1),
        "pg_backend_cpu_us_per_event": round(pg_us, 1),
        "pg_background_cpu_us_per_event": round(pg_bg_us, 1),
        "redis_cpu_us_per_event": round(cpu["redis"] * 1e6 / events, 1),
        "events_per_s_per_web_core": round(1e6 / web_us) if web_us else None,
        "events_per_s_per_pg_core": round(1e6 / (pg_us + pg_bg_us)) if pg_us else None,
        "wal_bytes_per_event_mean": round(sum(r["wal_bytes"] for r in rounds) / events),
        "wal_bytes_per_event_min_round": round(min(wal_per_event)),
        "wal_bytes_per_event_net_median": round(net_per_event[len(net_per_event) // 2]),
        "wal_syncs_per_1000_events_net": round(
            sum(r["wal_syncs_net"] for r in rounds) * 1000 / events, 1
        ),
        "background_wal_mb_per_s": round(
            sum(r["background_wal_bytes_per_s"] for r in rounds) / len(rounds) / 2**20, 2
        ),
        "wal_syncs_per_1000_events": round(sum(r["wal_syncs"] for r in rounds) * 1000 / events, 1),
        "others_share_of_machine": round(
            cpu["other"] / wall / (support.machine_facts()["cores"] or 1), 3
        ),
    }


def nodes_needed(row: dict[str, Any], utilisation: float) -> list[dict[str, Any]]:
    """For each load, the web cores/nodes and PostgreSQL cores it needs, and its WAL rate."""
    table = []
    for load in LOADS:
        web_cores = load / row["events_per_s_per_web_core"] / utilisation
        pg_cores = load / row["events_per_s_per_pg_core"] / utilisation
        table.append(
            {
                "events_per_s": load,
                "web_cores": round(web_cores, 1),
                "web_nodes_8_cores": max(1, math.ceil(web_cores / WEB_NODE_CORES)),
                "pg_primary_cores": round(pg_cores, 1),
                "wal_mb_per_s": round(load * row["wal_bytes_per_event_net_median"] / 2**20, 1),
            }
        )
    return table


def run(args: argparse.Namespace) -> dict[str, Any]:
    e2e.use_targets(args.database, args.redis_db)
    workdir = Path(tempfile.mkdtemp(prefix="capacity-"))
    report: dict[str, Any] = {
        "benchmark": "capacity",
        "machine": e2e.machine_info(args.workers, args.threads),
        "settings": vars(args).copy(),
    }
    server = conn = None
    started = time.perf_counter()
    try:
        print(f"set-up: database {e2e.BENCH_DB}, Redis {e2e.REDIS_URL}, work dir {workdir}")
        support.database_recreate(e2e.BENCH_DB)
        metrics_dir = workdir / "prometheus"
        metrics_dir.mkdir()
        env = e2e.server_env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
        secret = e2e.platform_setup(env, workdir)
        server = e2e.Gunicorn("capacity", env, args.workers, workdir)
        conn = support.connect(e2e.DATABASE_URL)
        report["postgresql"] = support.pg_settings(
            conn, ("server_version", "shared_buffers", "synchronous_commit", "wal_level")
        )
        classes = e2e.message_classes()
        start_ms = e2e.now_ms() - 50 * 60 * 1000
        server.wait_ready()
        print("warm-up ...", flush=True)
        for fmt in FORMATS:
            measure_round(
                server, conn, fmt, bodies_for(fmt, f"w{fmt[0]}", 2000, start_ms, classes),
                secret, args.threads,
            )  # fmt: skip
        busy = e2e.wait_quiet(args.wait_quiet)
        report["machine"]["busy_before_measuring"] = round(busy, 3)
        rounds: dict[str, list] = {fmt: [] for fmt in FORMATS}
        for number in range(args.rounds):
            for fmt in FORMATS:
                bodies = bodies_for(fmt, f"r{number}{fmt[0]}", args.events, start_ms, classes)
                result = measure_round(
                    server, conn, fmt, bodies, secret, args.threads, args.background_seconds
                )
                rounds[fmt].append(result)
                print(
                    f"  round {number + 1}/{args.rounds} {fmt}: {result['events']:,} events in "
                    f"{result['wall']:.2f} s, web {result['cpu']['server']:.2f} s CPU, "
                    f"postgres {result['cpu']['postgres']:.2f} s, WAL "
                    f"{result['wal_bytes'] / 2**20:.1f} MB",
                    flush=True,
                )
        rows = [summarise(fmt, rounds[fmt]) for fmt in FORMATS]
        report["formats"] = rows
        cores = report["machine"]["cores"]
        report["single_primary"] = {
            row["format"]: {
                "cpu_ceiling_events_per_s_per_16_cores": row["events_per_s_per_pg_core"] * 16,
                "wal_mb_per_s_at_that_ceiling": round(
                    row["events_per_s_per_pg_core"] * 16 * row["wal_bytes_per_event_net_median"]
                    / 2**20, 1
                ),
            }
            for row in rows
        }  # fmt: skip
        report["nodes_needed"] = {
            row["format"]: nodes_needed(row, args.target_utilisation) for row in rows
        }
        report["this_machine_cores"] = cores
    finally:
        if server is not None:
            server.stop()
        if conn is not None:
            conn.close()
        support.database_drop(e2e.BENCH_DB)
        report["total_seconds"] = round(time.perf_counter() - started, 1)
    return report


def print_report(report: dict[str, Any]) -> None:
    m = report["machine"]
    busy = m["busy_before_measuring"]
    print(f"\nmachine: {m['cpu_model']}, {m['cores']} cores; {busy:.0%} busy before measuring")
    print("NOTE: shared machine; others' CPU share during each format is in the last column.\n")
    header = (
        f"{'format':<10} {'events':>8} {'ev/s':>7} {'web µs':>7} {'pg µs':>6} {'pg bg':>6} "
        f"{'ev/s/web core':>14} {'ev/s/pg core':>13} {'WAL B/ev':>9} {'net B/ev':>9} "
        f"{'syncs/1k':>9} {'others':>7}"
    )
    print(header)
    print("-" * len(header))
    for row in report["formats"]:
        print(
            f"{row['format']:<10} {row['events']:>8,} {row['events_per_s_this_machine']:>7,} "
            f"{row['web_cpu_us_per_event']:>7} {row['pg_backend_cpu_us_per_event']:>6} "
            f"{row['pg_background_cpu_us_per_event']:>6} {row['events_per_s_per_web_core']:>14,} "
            f"{row['events_per_s_per_pg_core']:>13,} {row['wal_bytes_per_event_min_round']:>9,} "
            f"{row['wal_bytes_per_event_net_median']:>9,} "
            f"{row['wal_syncs_per_1000_events_net']:>9} {row['others_share_of_machine']:>7}"
        )
    print(f"\nnodes needed at {report['settings']['target_utilisation']:.0%} CPU utilisation:")
    for fmt, table in report["nodes_needed"].items():
        print(f"  {fmt}:")
        for line in table:
            print(
                f"    {line['events_per_s']:>8,} ev/s: web {line['web_cores']:>6} cores "
                f"({line['web_nodes_8_cores']} x 8-core), PostgreSQL primary "
                f"{line['pg_primary_cores']:>5} cores, WAL {line['wal_mb_per_s']} MB/s"
            )
    print(f"\nsingle primary (16 cores, CPU-bound): {report['single_primary']}")
    print(f"total run time {report['total_seconds']} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per format per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database", default="tgp_bench_capacity")
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--wait-quiet", type=float, default=60.0, help="max seconds to wait")
    parser.add_argument("--target-utilisation", type=float, default=0.6)
    parser.add_argument(
        "--background-seconds", type=float, default=2.0, help="others' WAL, before each round"
    )
    parser.add_argument("--quick", action="store_true", help="4,000 events x 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.events, args.rounds, args.wait_quiet = 4000, 2, min(args.wait_quiet, 10.0)
    report = run(args)
    print_report(report)
    support.results_write(RESULT, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

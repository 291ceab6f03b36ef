"""Ingest events/s straight to PostgreSQL vs through PgBouncer (transaction pooling), interleaved.

Three gunicorns on one bench database, same code and settings except the database path:
``direct`` (DATABASE_POOL_MODE=session, the per-connection staging table), ``direct-tx``
(session to PostgreSQL but DATABASE_POOL_MODE=transaction: the staging table created per
transaction, ON COMMIT DROP; isolates that cost) and ``pgbouncer`` (DATABASE_URL at a
PgBouncer in pool_mode=transaction started here, DATABASE_POOL_MODE=transaction). Rounds
alternate the three, JSON and protobuf batches of 500 events, so machine noise falls on all
of them alike. Prints a table; writes bench/results/pgbouncer.json.

    .venv/bin/python bench/pgbouncer.py [--quick] [--database tgp_bench_pgb --redis-db 6]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ingest_e2e as e2e
from bench import support

RESULTS = support.ROOT / "bench" / "results" / "pgbouncer.json"
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
AIM_PERCENT = 10.0


def bouncer_start(directory: Path, database: str, pool_size: int) -> tuple[subprocess.Popen, int]:
    """PgBouncer in transaction mode in front of the shared server's ``database``."""
    port = support.free_port()
    (directory / "userlist.txt").write_text('"root" ""\n')
    (directory / "pgbouncer.ini").write_text(
        f"[databases]\n{database} = host=127.0.0.1 port=5432 dbname={database}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n"
        f"unix_socket_dir = {directory}\nauth_type = trust\n"
        f"auth_file = {directory / 'userlist.txt'}\npool_mode = transaction\n"
        f"default_pool_size = {pool_size}\nmax_client_conn = 500\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
    )
    argv = [PGBOUNCER, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        shutil.chown(directory, "postgres")
        argv = ["runuser", "-u", "postgres", "--", *argv]
    log = (directory / "pgbouncer.log").open("w")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    deadline = time.monotonic() + 20
    while True:
        try:
            with support.connect(f"postgres://root@127.0.0.1:{port}/{database}") as conn:
                conn.execute("SELECT 1")
            return process, port
        except Exception:  # psycopg.OperationalError until it listens
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((directory / "pgbouncer.log").read_text()) from None
            time.sleep(0.1)


# (reported part, e2e.cpu_seconds group): the web tier, the bench database's backends, and
# PgBouncer's process (zero on the direct paths: it sits idle).
CPU_PARTS = (("web", "server"), ("postgres", "postgres"), ("pgbouncer", "pgbouncer"))


def tree_cpu(process: subprocess.Popen) -> float:
    """CPU seconds so far of ``process`` and its children (runuser, then pgbouncer)."""
    table = e2e.proc_table()
    parents = {pid: info["ppid"] for pid, info in table.items()}
    return sum(table[pid]["cpu"] for pid in support.process_tree(process.pid, parents))


def run(args: argparse.Namespace) -> dict[str, Any]:
    e2e.use_targets(args.database, args.redis_db)
    support.database_recreate(args.database)
    support.redis_flush(e2e.REDIS_URL)
    workdir = Path(tempfile.mkdtemp(prefix="bench-pgbouncer-"))
    workdir.chmod(0o777)
    bouncer, bouncer_port = bouncer_start(workdir, args.database, args.pool_size)
    servers: dict[str, e2e.Gunicorn] = {}
    try:
        env = e2e.server_env()
        secret = e2e.platform_setup(env, workdir)
        bouncer_url = f"postgres://root@127.0.0.1:{bouncer_port}/{args.database}"
        configs = {
            "direct": e2e.server_env(DATABASE_POOL_MODE="session"),
            "direct-tx": e2e.server_env(
                DATABASE_POOL_MODE="transaction", DATABASE_SESSION_URL=e2e.DATABASE_URL
            ),
            "pgbouncer": e2e.server_env(
                DATABASE_URL=bouncer_url,
                DATABASE_POOL_MODE="transaction",
                DATABASE_SESSION_URL=e2e.DATABASE_URL,
            ),
        }
        for name, config in configs.items():
            servers[name] = e2e.Gunicorn(name, config, args.workers, workdir)
        for server in servers.values():
            server.wait_ready()
        event_class, batch_class = e2e.message_classes()
        auth = {"Authorization": f"Bearer {secret}"}
        kinds = {
            "json": ({**auth, "Content-Type": "application/json"}, e2e.json_bodies),
            "protobuf": (
                {**auth, "Content-Type": "application/x-protobuf"},
                lambda tag, total, start: e2e.protobuf_bodies(
                    tag, total, start, event_class, batch_class
                ),
            ),
        }
        start_ms = e2e.now_ms() - 40 * 60 * 1000  # as ingest_e2e: inside the skew window
        rates: dict[str, dict[str, list[float]]] = {
            name: {kind: [] for kind in kinds} for name in servers
        }
        cpu: dict[str, dict[str, list[dict[str, float]]]] = {
            name: {kind: [] for kind in kinds} for name in servers
        }
        tags = {name: str(index) for index, name in enumerate(servers)}  # unique event ids
        for name, server in servers.items():  # warm every worker's plans and connections
            for kind, (headers, make) in kinds.items():
                warm = make(f"w{tags[name]}{kind[0]}", 8 * e2e.BATCH_SIZE, start_ms)
                e2e.post_batches(server.port, e2e.INGEST_PATH, warm, headers, args.threads,
                                 e2e.count_ours)
        for round_number in range(args.rounds):
            if args.wait_quiet:
                e2e.wait_quiet(args.wait_quiet)
            order = list(servers) if round_number % 2 == 0 else list(reversed(servers))
            for kind, (headers, make) in kinds.items():
                for name in order:
                    bodies = make(f"r{round_number}{tags[name]}{kind[0]}", args.events, start_ms)
                    before, bouncer_before = e2e.cpu_snapshot(servers[name]), tree_cpu(bouncer)
                    part = e2e.post_batches(servers[name].port, e2e.INGEST_PATH, bodies,
                                            headers, args.threads, e2e.count_ours)
                    seconds = e2e.cpu_seconds(before, e2e.cpu_snapshot(servers[name]))
                    seconds["pgbouncer"] = tree_cpu(bouncer) - bouncer_before
                    if part["accepted"] != args.events:
                        raise RuntimeError(f"{name} {kind}: {part}")
                    rates[name][kind].append(part["events_per_s"])
                    cpu[name][kind].append({
                        group: seconds[key] * 1e6 / args.events for group, key in CPU_PARTS
                    })
    finally:
        for server in servers.values():
            server.stop()
        bouncer.terminate()
        bouncer.wait(timeout=20)
        support.database_drop(args.database)
        shutil.rmtree(workdir, ignore_errors=True)
    summary = {
        name: {kind: round(statistics.median(values)) for kind, values in kinds_.items()}
        for name, kinds_ in rates.items()
    }
    cpu_median = {
        name: {
            kind: {
                part: round(statistics.median(r[part] for r in runs), 1) for part, _ in CPU_PARTS
            }
            for kind, runs in kinds_.items()
        }
        for name, kinds_ in cpu.items()
    }
    ratios = {
        f"{name}/direct {kind}": round(summary[name][kind] / summary["direct"][kind], 3)
        for name in ("direct-tx", "pgbouncer")
        for kind in ("json", "protobuf")
    }
    return {
        "benchmark": "pgbouncer",
        "command": " ".join(["bench/pgbouncer.py", *sys.argv[1:]]),
        "events_per_run": args.events,
        "rounds": args.rounds,
        "threads": args.threads,
        "workers": args.workers,
        "pool_size": args.pool_size,
        "events_per_second_median": summary,
        "events_per_second_rounds": {
            name: {kind: [round(v) for v in values] for kind, values in kinds_.items()}
            for name, kinds_ in rates.items()
        },
        "ratios": ratios,
        "cpu_us_per_event_median": cpu_median,
        "aim": f"pgbouncer within {AIM_PERCENT:g}% of direct",
        "machine": support.machine_facts(),
        "note": "client, gunicorns, PostgreSQL and PgBouncer share the machine's cores",
    }


def print_report(report: dict[str, Any]) -> None:
    print(f"{'path':<12} {'JSON ev/s':>10} {'protobuf ev/s':>14}   (median of {report['rounds']} "
          f"interleaved rounds, {report['events_per_run']} events each)")
    for name, kinds in report["events_per_second_median"].items():
        print(f"{name:<12} {kinds['json']:>10} {kinds['protobuf']:>14}")
    for name, ratio in report["ratios"].items():
        print(f"  {name}: {ratio:.3f}")
    print(f"\nCPU µs per event (median of runs)  {'web':>7} {'postgres':>9} {'pgbouncer':>10}")
    for name, kinds in report["cpu_us_per_event_median"].items():
        for kind, parts in kinds.items():
            print(f"  {name + ' ' + kind:<32} {parts['web']:>7} {parts['postgres']:>9} "
                  f"{parts['pgbouncer']:>10}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5k events per run, 2 rounds")
    parser.add_argument("--events", type=int, default=40_000, help="events per run")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int, default=4, help="client connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--pool-size", type=int, default=8, help="PgBouncer default_pool_size")
    parser.add_argument("--database", default="tgp_bench_pgb")
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--wait-quiet", type=float, default=0.0,
                        help="before each round, wait up to this many seconds for a quiet CPU")
    args = parser.parse_args()
    if args.quick:
        args.events, args.rounds = 5_000, 2
    report = run(args)
    print_report(report)
    support.results_write(RESULTS, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

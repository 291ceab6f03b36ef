"""Audit search p95 during sustained ingest, searching on the primary vs on a streaming
replica, and ingest's p99 in each case (and with no search at all), interleaved phases.

Starts its own PostgreSQL 15 primary and streaming replica (tests/cluster's set-up, in a
temporary directory), loads audit events through the API, then runs phases of equal
length: single-event ingest at a fixed rate on the ingest server, with search clients on
the ``primary`` search server (no DATABASE_REPLICA_URL), on the ``replica`` one
(DATABASE_REPLICA_URL set), or none. Phases alternate so machine noise falls on all.
Both PostgreSQL servers run on this one machine: unpinned, the replica moves the search's
queries off the primary's processes, not off the machine's CPUs. ``--pin`` stands in for
separate machines: the primary, the ingest gunicorn and the ingest senders on CPU 0; the
replica, both search gunicorns and the search clients on CPU 1 (with search on the
primary, its queries still run in the primary's backends, on CPU 0). The senders sit with
what they measure, so a busy search side never delays when an ingest request is sent.
Writes bench/results/replica_search.json.

    .venv/bin/python bench/replica_search.py [--quick] [--pin] [--redis-db 6]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ingest_e2e as e2e
from bench import support
from tests.cluster.conftest import SETUP_SCRIPT, cluster_start

RESULTS = support.ROOT / "bench" / "results" / "replica_search.json"
AUDIT_SCHEMA = "telemetry.audit_event.v1"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def audit_batch(name: str, count: int, minutes_ago: float = 30) -> bytes:
    moment = _iso(datetime.now(UTC) - timedelta(minutes=minutes_ago))
    events = [
        {"schema": AUDIT_SCHEMA, "event": {
            "event_name": name, "outcome": "success", "occurred_at": moment,
            "request_id": f"req_{uuid.uuid4().hex}", "user_id": f"user-{index % 500}",
            "attributes": {"scopes": "runtime.read"},
        }}
        for index in range(count)
    ]
    return json.dumps({"events": events}).encode()


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return round(e2e.percentile(ordered, pct) * 1000, 1) if ordered else 0.0


def pin_thread(cpus: set[int] | None) -> None:
    """Pin the calling thread (Linux: pid 0 is the calling thread) to ``cpus``, if given."""
    if cpus:
        os.sched_setaffinity(0, cpus)


def ingest_load(port: int, secret: str, rate: float, seconds: float, out: list[float],
                cpus: set[int] | None = None) -> None:
    """Single audit events at ``rate``/s (open loop, one connection per sender thread)."""
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    senders = 4
    interval = senders / rate
    deadline = time.monotonic() + seconds

    def sender(offset: float) -> None:
        pin_thread(cpus)
        conn = e2e.http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        next_at = time.monotonic() + offset
        while next_at < deadline:
            time.sleep(max(0.0, next_at - time.monotonic()))
            began = time.perf_counter()
            status, _ = e2e.http_request(port, "POST", "/api/v1/events",
                                         audit_batch("bench.ingest", 1, 1), headers, conn)
            if status == 200:
                out.append(time.perf_counter() - began)
            next_at += interval
        conn.close()

    threads = [threading.Thread(target=sender, args=(i * interval / senders,))
               for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def search_load(port: int, token: str, clients: int, seconds: float, out: list[float],
                sources: list[str], cpus: set[int] | None = None) -> None:
    """``clients`` analysts searching back to back (closed loop)."""
    headers = {"Authorization": f"Token {token}"}
    deadline = time.monotonic() + seconds
    paths = ["/api/v1/audit-events?event_name=bench.preload&page_size=50",
             "/api/v1/audit-events?outcome=success&page_size=100"]

    def client(number: int) -> None:
        pin_thread(cpus)
        conn = e2e.http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        index = number
        while time.monotonic() < deadline:
            began = time.perf_counter()
            conn.request("GET", paths[index % len(paths)], headers=headers)
            answer = conn.getresponse()
            answer.read()
            if answer.status == 200:
                out.append(time.perf_counter() - began)
                sources.append((answer.getheader("X-Data-Freshness") or "?").split(";")[0])
            index += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run(args: argparse.Namespace) -> dict[str, Any]:
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    support.redis_flush(redis_url)
    directory = Path(tempfile.mkdtemp(prefix="bench-replica-"))
    cluster = None
    servers: dict[str, e2e.Gunicorn] = {}
    phases: list[dict[str, Any]] = []
    try:
        cluster = cluster_start(directory)
        base = e2e.server_env(DATABASE_URL=cluster.primary_url, REDIS_URL=redis_url,
                              CELERY_BROKER_URL=redis_url)
        support.manage("bootstrap", "--verbosity", "0", env=base)
        secrets = json.loads(
            support.manage("shell", "-c", SETUP_SCRIPT, env=base).strip().splitlines()[-1]
        )
        replica_env = {**base, "DATABASE_REPLICA_URL": cluster.replica_url,
                       "DATABASE_REPLICA_MAX_LAG_SECONDS": "5"}
        servers["ingest"] = e2e.Gunicorn("ingest", base, args.workers, directory)
        servers["primary"] = e2e.Gunicorn("search-primary", base, 1, directory)
        servers["replica"] = e2e.Gunicorn("search-replica", replica_env, 1, directory)
        for server in servers.values():
            server.wait_ready()
        if args.pin:
            pins = {"primary": {0}, "replica": {1}, "ingest": {0}, "search": {1}}
            for node in ("primary", "replica"):
                postmaster = int((directory / node / "postmaster.pid").read_text().split()[0])
                support.pin_tree(postmaster, pins[node])
            support.pin_tree(servers["ingest"].process.pid, pins["ingest"])
            for name in ("primary", "replica"):
                support.pin_tree(servers[name].process.pid, pins["search"])
        else:
            pins = {}
        headers = {"Authorization": f"Bearer {secrets['ingest']}",
                   "Content-Type": "application/json"}
        for _ in range(args.preload // 500):
            status, body = e2e.http_request(servers["ingest"].port, "POST", "/api/v1/events",
                                            audit_batch("bench.preload", 500), headers)
            assert status == 200, body[:300]
        cluster.replica_caught_up(timeout=120)
        with cluster.connect(cluster.primary_port) as conn:
            conn.execute("VACUUM ANALYZE ingest_event")
        cluster.replica_caught_up(timeout=120)
        order = ["none", "primary", "replica"]
        for round_number in range(args.rounds):
            for target in order if round_number % 2 == 0 else list(reversed(order)):
                if args.wait_quiet:
                    e2e.wait_quiet(args.wait_quiet)
                ingest_ms: list[float] = []
                search_ms: list[float] = []
                sources: list[str] = []
                loaders = [threading.Thread(target=ingest_load, args=(
                    servers["ingest"].port, secrets["ingest"], args.rate, args.seconds,
                    ingest_ms, pins.get("ingest")))]
                if target != "none":
                    loaders.append(threading.Thread(target=search_load, args=(
                        servers[target].port, secrets["token"], args.search_clients,
                        args.seconds, search_ms, sources, pins.get("search"))))
                for loader in loaders:
                    loader.start()
                for loader in loaders:
                    loader.join()
                phases.append({
                    "round": round_number, "search_on": target,
                    "ingest_requests": len(ingest_ms), "ingest_p50_ms": percentile(ingest_ms, 50),
                    "ingest_p99_ms": percentile(ingest_ms, 99),
                    "searches": len(search_ms), "search_p50_ms": percentile(search_ms, 50),
                    "search_p95_ms": percentile(search_ms, 95),
                    "served_by": sorted(set(sources)),
                    "_ingest": ingest_ms, "_search": search_ms,
                })
                print(f"  round {round_number} search on {target:<8} ingest p99 "
                      f"{phases[-1]['ingest_p99_ms']:>7} ms  search p95 "
                      f"{phases[-1]['search_p95_ms']:>7} ms  ({len(search_ms)} searches, "
                      f"served by {phases[-1]['served_by']})", flush=True)
    finally:
        for server in servers.values():
            server.stop()
        if cluster is not None:
            for node in ("replica", "primary"):
                cluster.pg_ctl(node, "stop")
        shutil.rmtree(directory, ignore_errors=True)
    summary = {}
    for target in ("none", "primary", "replica"):
        ingest = [v for p in phases if p["search_on"] == target for v in p["_ingest"]]
        search = [v for p in phases if p["search_on"] == target for v in p["_search"]]
        summary[target] = {
            "ingest_requests": len(ingest), "ingest_p99_ms": percentile(ingest, 99),
            "searches": len(search), "search_p95_ms": percentile(search, 95),
            "searches_per_second": round(len(search) / (args.seconds * args.rounds), 1),
        }
    for phase in phases:
        phase.pop("_ingest")
        phase.pop("_search")
    return {
        "benchmark": "replica_search",
        "command": " ".join(["bench/replica_search.py", *sys.argv[1:]]),
        "preloaded_audit_events": args.preload,
        "ingest_rate_per_second": args.rate,
        "search_clients": args.search_clients,
        "seconds_per_phase": args.seconds,
        "rounds": args.rounds,
        "summary": summary,
        "phases": phases,
        "machine": support.machine_facts(),
        "pinned": args.pin,
        "note": ("pinned: primary + ingest web + ingest senders on CPU 0; replica + search "
                 "web + search clients on CPU 1" if args.pin else
                 "primary and replica on the same 2-core machine, unpinned"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k events, 10 s phases, 1 round")
    parser.add_argument("--preload", type=int, default=100_000, help="audit events loaded first")
    parser.add_argument("--rate", type=float, default=50.0, help="single-event ingest per s")
    parser.add_argument("--search-clients", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="ingest gunicorn workers")
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--wait-quiet", type=float, default=0.0)
    parser.add_argument("--pin", action="store_true",
                        help="primary + ingest on CPU 0, replica + search on CPU 1")
    args = parser.parse_args()
    if args.quick:
        args.preload, args.seconds, args.rounds = 20_000, 10.0, 1
    report = run(args)
    print(f"{'search on':<10} {'ingest p99 ms':>14} {'search p95 ms':>14} {'searches/s':>11}")
    for target, row in report["summary"].items():
        print(f"{target:<10} {row['ingest_p99_ms']:>14} {row['search_p95_ms']:>14} "
              f"{row['searches_per_second']:>11}")
    support.results_write(RESULTS, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Single-event beacons (text/plain, publishable key, Origin) next to single-event native JSON.

What a page's ``navigator.sendBeacon`` sends on close, one event per request: a
``text/plain`` body ``{"schema": ..., "events": [event]}`` POSTed to
``/api/v1/events?api_key=<publishable key>&traceparent=...`` with an ``Origin`` the key
allows (so the origin check, the per-IP limit's Redis call and the CORS answer are on the
path). The native side is bench/ingest_e2e.py's single-event mode: an
``application/json`` body with a Bearer ingest key to ``/api/v1/events?schema=...``. The
events are the same fixture shape (unique ids, occurred-at in the last hour).

Both run open loop at the same rate (200/s by default) from a pool of client threads, in
alternating segments (``--rounds``; beacon first in odd rounds, JSON first in even ones),
against the same gunicorn (run as the Procfile runs it, ``DEBUG=false``) and the same
database (``tgp_bench_beacon``, created, bootstrapped and dropped here), Redis db 10. Each
request opens its own connection, as a closing page's beacon does. Latency is measured from
each request's scheduled send time (a stalled server cannot hide queueing) and from its
actual send ("service"). Every event must be accepted. The per-IP limit of publishable keys
(``TELEMETRY_PUBLISHABLE_IP_EVENTS_PER_SECOND``) is raised for the run: all requests come
from 127.0.0.1, and latency, not the limit, is measured.

Prints a table and writes ``bench/results/beacon.json``; ~40 s (``--quick``: ~15 s).

Run: /work/main/.venv/bin/python bench/beacon.py [--rate 200] [--seconds 6] [--rounds 3]
     [--wait-quiet 60] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import ingest_e2e as e2e  # noqa: E402 (needs the repo on sys.path)
from bench import support  # noqa: E402
from tests.factories import CLIENT_TELEMETRY_SCHEMA  # noqa: E402 (no Django settings)

RESULT = ROOT / "bench" / "results" / "beacon.json"
ORIGIN = "https://app.bench.test"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
PATHS = ("beacon", "native JSON")

Request = e2e.Request


def publishable_key(env: dict[str, str]) -> str:
    """A publishable key for the client telemetry schema, used from ``ORIGIN``."""
    return support.manage(
        "create_api_key", "--name", "bench-web", "--kind", "publishable",
        "--schema", CLIENT_TELEMETRY_SCHEMA, "--origin", ORIGIN, env=env,
    ).strip()  # fmt: skip


def beacon_requests(tag: str, count: int, key: str, start_ms: int) -> list[Request]:
    """What sendBeacon sends: text/plain, key and traceparent in the query, the page's Origin."""
    path = f"/api/v1/events?api_key={key}&traceparent={TRACEPARENT}"
    headers = {"Content-Type": "text/plain;charset=UTF-8", "Origin": ORIGIN}
    return [(path, _body(tag, k, start_ms, with_schema=True), headers) for k in range(count)]


def native_requests(tag: str, count: int, secret: str, start_ms: int) -> list[Request]:
    """bench/ingest_e2e.py's single-event JSON request."""
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    return [(e2e.INGEST_PATH, _body(tag, k, start_ms), headers) for k in range(count)]


def _body(tag: str, k: int, start_ms: int, *, with_schema: bool = False) -> bytes:
    document: dict[str, Any] = {"events": e2e.make_events(tag, k, 1, start_ms + k)}
    if with_schema:
        document = {"schema": CLIENT_TELEMETRY_SCHEMA, **document}
    return json.dumps(document, separators=(",", ":")).encode()


def summarize(records: list[tuple], rate: float, segment_seconds: float) -> dict[str, Any]:
    """p50/p99 from the scheduled time and from the send, achieved rate over the segments."""
    ok = [r for r in records if r[3]]
    from_due = sorted(done - due for due, _, done, _ in ok)
    from_send = sorted(done - sent for _, sent, done, _ in ok)
    late = sorted(sent - due for due, sent, _, _ in records)

    def ms(values: list[float], pct: float) -> float:
        return round(e2e.percentile(values, pct) * 1000, 2)

    return {
        "target_rate_per_s": rate,
        "seconds": segment_seconds,
        "requests": len(records),
        "ok": len(ok),
        "p50_ms": ms(from_due, 50),
        "p99_ms": ms(from_due, 99),
        "max_ms": round(from_due[-1] * 1000, 2) if from_due else None,
        "service_p50_ms": ms(from_send, 50),
        "service_p99_ms": ms(from_send, 99),
        "send_lag_p99_ms": ms(late, 99),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Set up the database and gunicorn, measure both paths in alternating segments."""
    e2e.use_targets("tgp_bench_beacon", 10)
    support.database_recreate(e2e.BENCH_DB)
    env = e2e.server_env(TELEMETRY_PUBLISHABLE_IP_EVENTS_PER_SECOND="1000000")
    per_segment = int(args.rate * args.seconds)
    records: dict[str, list[tuple]] = {name: [] for name in PATHS}
    cpu: dict[str, Counter] = {name: Counter() for name in PATHS}
    wall: Counter = Counter()
    machine = e2e.machine_info(args.workers, args.threads)
    with tempfile.TemporaryDirectory() as workdir:
        try:
            secret = e2e.platform_setup(env, Path(workdir))
            key = publishable_key(env)
            metrics = Path(workdir, "prometheus")
            metrics.mkdir()
            server = e2e.Gunicorn(
                "beacon", {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}, args.workers,
                Path(workdir),
            )  # fmt: skip
            try:
                server.wait_ready()
                start_ms = e2e.now_ms() - 30 * 60 * 1000
                machine["busy_before_measuring"] = round(e2e.wait_quiet(args.wait_quiet), 3)
                print(f"machine {machine['busy_before_measuring']:.0%} busy before measuring")
                for name, batch in (
                    ("beacon", beacon_requests("bw", 100, key, start_ms)),
                    ("native JSON", native_requests("nw", 100, secret, start_ms)),
                ):
                    warm = e2e.open_loop(server.port, batch, args.rate, args.threads)[1]
                    if not all(r[3] for r in warm):
                        raise RuntimeError(f"warm-up {name} failed:\n{server.log_tail()}")
                for number in range(args.rounds):
                    order = PATHS if number % 2 == 0 else PATHS[::-1]
                    for name in order:
                        tag = f"{'b' if name == 'beacon' else 'n'}{number}-"
                        batch = (
                            beacon_requests(tag, per_segment, key, start_ms)
                            if name == "beacon"
                            else native_requests(tag, per_segment, secret, start_ms)
                        )
                        before, began = e2e.cpu_snapshot(server), time.perf_counter()
                        part = e2e.open_loop(server.port, batch, args.rate, args.threads)[1]
                        wall[name] += time.perf_counter() - began
                        cpu[name].update(e2e.cpu_seconds(before, e2e.cpu_snapshot(server)))
                        records[name].extend(part)
                        lost = sum(not r[3] for r in part)
                        print(f"round {number + 1}/{args.rounds} {name}: {len(part)} requests, "
                              f"{lost} not accepted", flush=True)  # fmt: skip
            finally:
                server.stop()
        finally:
            support.database_drop(e2e.BENCH_DB)
    runs = {
        name: {
            **summarize(part, args.rate, args.seconds * args.rounds),
            **e2e.cpu_summary(cpu[name], sum(r[3] for r in part), wall[name]),
        }
        for name, part in records.items()
    }
    return {
        "benchmark": "beacon",
        "machine": machine,
        "rate_per_s": args.rate,
        "rounds": args.rounds,
        "runs": runs,
        "beacon_over_native_p50": round(
            runs["beacon"]["p50_ms"] / runs["native JSON"]["p50_ms"], 3
        ),
    }


def print_report(report: dict[str, Any]) -> None:
    print(
        f"\nsingle-event requests, open loop {report['rate_per_s']:g}/s, "
        f"{report['rounds']} alternating rounds, one connection per request:"
    )
    columns = ("requests", "ok", "p50_ms", "p99_ms", "max_ms", "service_p50_ms", "service_p99_ms")
    print(f"{'path':<12} " + " ".join(f"{c:>14}" for c in columns))
    for name, row in report["runs"].items():
        print(f"{name:<12} " + " ".join(f"{row[c]!s:>14}" for c in columns))
    print(f"beacon p50 / native JSON p50: {report['beacon_over_native_p50']:.2f}")
    print("CPU µs per request (server = gunicorn, postgres = the bench database's backends):")
    for name, row in report["runs"].items():
        used = row["cpu_us_per_event"]
        print(
            f"  {name:<12} server {used['server']:>8} postgres {used['postgres']:>8} "
            f"redis {used['redis']:>6}  others' share of the machine "
            f"{row['others_share_of_machine']:.0%}"
        )
    print(f"load average at start: {report['machine']['load_average_at_start']} (shared machine)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second per path")
    parser.add_argument("--seconds", type=float, default=6.0, help="per path per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (Procfile: 2)")
    parser.add_argument("--threads", type=int, default=32, help="client threads")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s")
    parser.add_argument(
        "--wait-quiet", type=float, default=0.0, metavar="S",
        help="wait up to S seconds for the machine to be < 20%% busy before measuring",
    )  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = min(args.seconds, 2.0), min(args.rounds, 2)
    report = run(args)
    print_report(report)
    support.results_write(RESULT, report)
    return 0 if all(row["ok"] == row["requests"] for row in report["runs"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

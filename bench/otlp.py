"""OTLP logs (protobuf, through HTTP into PostgreSQL) next to the native protobuf endpoint.

Both sides send batches of 500 control-service audit records with the same fields
(event_name, request_id, outcome, occurred-at, session_id, two attributes): natively as a
binary ``telemetry.v1.EventBatch`` of ``telemetry.v1.AuditEvent`` to
``/api/v1/events?schema=telemetry.audit_event.v1``, over OTLP as an
``ExportLogsServiceRequest`` of records of the ``audit`` scope to ``/v1/logs`` (routed onto
the same schema). Same gunicorn (as the Procfile runs it), same database (``tgp_bench_otlp``,
created, bootstrapped and dropped here), Redis db 12. Rounds interleave the two sides and
alternate which goes first, so a neighbour's burst on a shared machine falls on both; each
round's own ratio is reported next to the totals. Every record must be accepted. Prints a
table and writes ``bench/results/otlp.json``.

Run: /work/main/.venv/bin/python bench/otlp.py [--events N] [--rounds R] [--quick]
     [--wait-quiet S]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import ingest_e2e as e2e  # noqa: E402 (needs the repo on sys.path)
from bench import support  # noqa: E402

BATCH = 500
RESULT = ROOT / "bench" / "results" / "otlp.json"


def audit_fields(tag: str, batch: int, index: int, now_ns: int) -> dict[str, str | int]:
    return {
        "event_name": "auth.session.created",
        "request_id": f"req_{tag}_{batch:05d}_{index:04d}",
        "outcome": "success",
        "session_id": f"sess_{batch}_{index}",
        "time_ns": now_ns - (batch * BATCH + index) * 1000,
    }


def native_bodies(tag: str, batches: int) -> list[tuple[bytes, int]]:
    from governance.defaults import platform_proto_sources
    from governance.platform_protos import event_batch_class
    from governance.protoc import compile_protos
    from governance.schemas import load_schema

    file_set = compile_protos(platform_proto_sources())
    audit_class = load_schema(file_set.SerializeToString(), "telemetry.v1.AuditEvent").message_class
    now_ns = time.time_ns() - 60 * 10**9
    bodies = []
    for b in range(batches):
        batch = event_batch_class()()
        for i in range(BATCH):
            f = audit_fields(tag, b, i, now_ns)
            event = audit_class(
                event_name=f["event_name"],
                request_id=f["request_id"],
                outcome=f["outcome"],
                session_id=f["session_id"],
                attributes={"scopes": "runtime.read", "ttl_seconds": "300"},
            )
            event.occurred_at.FromNanoseconds(f["time_ns"])
            batch.events.add().event = event.SerializeToString()
        bodies.append((batch.SerializeToString(), BATCH))
    return bodies


def otlp_bodies(tag: str, batches: int) -> list[tuple[bytes, int]]:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    now_ns = time.time_ns() - 60 * 10**9
    bodies = []
    for b in range(batches):
        request = ExportLogsServiceRequest()
        resource_logs = request.resource_logs.add()
        kv = resource_logs.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", "control-service"
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.name = "audit"
        for i in range(BATCH):
            f = audit_fields(tag, b, i, now_ns)
            record = scope_logs.log_records.add(
                time_unix_nano=f["time_ns"], event_name=f["event_name"]
            )
            for key in ("request_id", "outcome", "session_id"):
                attr = record.attributes.add()
                attr.key, attr.value.string_value = key, f[key]
            for key, value in (("scopes", "runtime.read"), ("ttl_seconds", "300")):
                attr = record.attributes.add()
                attr.key, attr.value.string_value = key, value
        bodies.append((request.SerializeToString(), BATCH))
    return bodies


def count_otlp(status: int, data: bytes) -> tuple[int, str]:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

    if status != 200:
        return 0, f"HTTP {status}: {data[:200]!r}"
    answer = ExportLogsServiceResponse.FromString(data)
    rejected = answer.partial_success.rejected_log_records
    return BATCH - rejected, answer.partial_success.error_message[:200] if rejected else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="records per side per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 5,000 records a side")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each round, wait up to S seconds for the machine to be under 20%% busy",
    )
    args = parser.parse_args()
    if args.quick:
        args.events, args.rounds = 5_000, 2
    e2e.use_targets("tgp_bench_otlp", 12)
    support.database_recreate(e2e.BENCH_DB)
    env = e2e.server_env()
    runs: dict[str, list] = {"native protobuf": [], "OTLP protobuf": []}
    busy: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as workdir:
        support.manage("bootstrap", "--verbosity", "0", env=env)
        secret = support.manage("create_api_key", "--name", "bench", env=env).strip()
        server = e2e.Gunicorn("otlp", env, args.workers, Path(workdir))
        try:
            server.wait_ready()
            batches = max(1, args.events // BATCH)
            for round_number in range(args.rounds):
                tag = f"r{round_number}"
                sides = {
                    "native protobuf": (
                        "/api/v1/events?schema=telemetry.audit_event.v1",
                        native_bodies(f"n{tag}", batches),
                        e2e.count_ours,
                    ),
                    "OTLP protobuf": ("/v1/logs", otlp_bodies(f"o{tag}", batches), count_otlp),
                }
                order = list(sides) if round_number % 2 == 0 else list(reversed(sides))
                busy[round_number] = round(e2e.wait_quiet(args.wait_quiet), 3)
                for name in order:
                    path, bodies, count = sides[name]
                    headers = {
                        "Authorization": f"Bearer {secret}",
                        "Content-Type": "application/x-protobuf",
                    }
                    runs[name].append(
                        e2e.post_batches(server.port, path, bodies, headers, args.threads, count)[
                            "raw"
                        ][0]
                    )
        finally:
            server.stop()
            support.database_drop(e2e.BENCH_DB)
    summary = {name: e2e.summarize(parts) for name, parts in runs.items()}
    ratio = summary["OTLP protobuf"]["events_per_s"] / max(
        1, summary["native protobuf"]["events_per_s"]
    )
    print(f"{'path':<18} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'accepted':>9} problems")
    for name, row in summary.items():
        print(
            f"{name:<18} {row['events_per_s']:>10} {row['request_ms_p50']:>8} "
            f"{row['request_ms_p99']:>8} {row['accepted']:>9} {row['problems'] or ''}"
        )
    per_round = [
        round(
            (o["accepted"] / o["wall"]) / max(1e-9, n["accepted"] / n["wall"]),
            3,
        )
        for n, o in zip(runs["native protobuf"], runs["OTLP protobuf"], strict=True)
    ]
    print(f"OTLP / native: {ratio:.2f} (target >= 0.80); per round: {per_round}")
    RESULT.parent.mkdir(exist_ok=True)
    report = {
        "machine": e2e.machine_info(args.workers, args.threads),
        "batch": BATCH,
        "runs": {k: {x: y for x, y in v.items() if x != "raw"} for k, v in summary.items()},
        "otlp_over_native": round(ratio, 3),
        "otlp_over_native_per_round": per_round,
        "machine_busy_before_round": busy,
        "quick": args.quick,
    }
    RESULT.write_text(json.dumps(report, indent=2) + "\n")
    ok = ratio >= 0.8 and all(not row["problems"] for row in summary.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

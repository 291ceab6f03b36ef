"""Decode + validate throughput of a 1,000-event client telemetry batch on one core (no storage).

Rows: (1) JSON naive: ``json.loads`` of the batch body, then ``json_format.ParseDict`` per
event; (2) JSON ours: ``json.loads``, then ``governance.fastjson`` per event with ParseDict
as the fallback; (3) binary: ``EventBatch.ParseFromString`` of the body, then
``ParseFromString`` per event. Prints a table with events/s (best and median of the
repeats) against the targets, and writes ``bench/results/validation.json``.

Run: /work/main/.venv/bin/python bench/validation.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from google.protobuf import descriptor_pool, json_format, message_factory

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import support  # noqa: E402 (needs the repo on sys.path)
from governance.fastjson import compile_json_parser  # noqa: E402 (needs the repo on sys.path)
from governance.protoc import compile_protos  # noqa: E402

BATCH_SIZE = 1_000
JSON_TARGET = 20_000
BINARY_TARGET = 200_000
SCHEMA = "openagents.sync.v1.ClientTelemetryEvent"

CLIENT_TELEMETRY_PROTO = """
syntax = "proto3";
package openagents.sync.v1;
message ClientTelemetryEvent {
  string schema_version = 1; string event_id = 2; int64 occurred_at_unix_ms = 3;
  ClientSurface surface = 4;
  string client_build_id = 5; string app_version = 6; string protocol_version = 7;
  string topic = 8; string topic_class = 9;
  string actor_scope_hash = 10; string session_id = 11;
  oneof event {
    ClientReconnect reconnect = 20; ClientAuthFailure auth_failure = 21;
    ClientReplay replay = 22; ClientDeliveryError delivery_error = 23;
  }
}
enum ClientSurface {
  CLIENT_SURFACE_UNSPECIFIED = 0; CLIENT_SURFACE_WEB = 1; CLIENT_SURFACE_DESKTOP = 2;
  CLIENT_SURFACE_IOS = 3; CLIENT_SURFACE_ONYX = 4;
}
message ClientReconnect {
  uint32 attempt = 1; uint32 backoff_ms = 2; bool resumed = 3; uint64 last_applied_seq = 4;
  string reason_code = 5;
}
message ClientAuthFailure {
  uint32 http_status = 1; string reason_code = 2; bool refresh_attempted = 3;
}
message ClientReplay {
  string status = 1; uint64 requested_after_seq = 2; uint64 oldest_available_seq = 3;
  uint64 head_seq = 4; uint64 catchup_duration_ms = 5;
}
message ClientDeliveryError {
  string channel = 1; string reason_code = 2; uint32 rolling_error_count_5m = 3;
}
"""

# Same shape as proto/telemetry/v1/batch.proto, inlined so the bench is self-contained.
BATCH_PROTO = """
syntax = "proto3";
package telemetry.v1;
message BatchItem { string schema = 1; bytes event = 2; }
message EventBatch { repeated BatchItem events = 1; }
"""

FIXTURE_EVENT = {
    "schema_version": "openagents.sync.client_telemetry.v1",
    "event_id": "evt_reconnect_001",
    "occurred_at_unix_ms": 1771700400000,
    "surface": "CLIENT_SURFACE_IOS",
    "client_build_id": "ios-2026.02.21.1",
    "app_version": "1.0.0",
    "protocol_version": "openagents.sync.v1",
    "topic": "run:019c7f31:events",
    "topic_class": "run_events",
    "actor_scope_hash": "sha256:7d8b8f5b9a8d9ff2b2730f517fef2a9bbd2d0c2c8f5ddf2c2f57d01f70b8f4b3",
    "session_id": "sess_abc123",
}
PAYLOADS = [
    (
        "reconnect",
        {
            "attempt": 2,
            "backoff_ms": 950,
            "resumed": True,
            "last_applied_seq": 307,
            "reason_code": "network_path_changed",
        },
    ),
    (
        "auth_failure",
        {"http_status": 401, "reason_code": "token_too_old", "refresh_attempted": True},
    ),
    (
        "replay",
        {
            "status": "stale_cursor",
            "requested_after_seq": 0,
            "oldest_available_seq": 940,
            "head_seq": 1320,
            "catchup_duration_ms": 0,
        },
    ),
    (
        "delivery_error",
        {"channel": "ws", "reason_code": "slow_consumer", "rolling_error_count_5m": 3},
    ),
]


def load_classes() -> tuple[type, type, object]:
    """Compile the contract and the batch container: (event class, batch class, descriptor)."""
    file_set = compile_protos(
        {"client_telemetry.proto": CLIENT_TELEMETRY_PROTO, "batch.proto": BATCH_PROTO},
        include_platform_protos=False,
    )
    pool = descriptor_pool.DescriptorPool()
    for file_proto in file_set.file:
        pool.Add(file_proto)
    event_descriptor = pool.FindMessageTypeByName(SCHEMA)
    event_class = message_factory.GetMessageClass(event_descriptor)
    batch_class = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("telemetry.v1.EventBatch")
    )
    return event_class, batch_class, event_descriptor


def make_events() -> list[dict]:
    """1,000 fixture-shaped events: distinct ids and times, the four oneof members in turn."""
    events = []
    for index in range(BATCH_SIZE):
        event = dict(FIXTURE_EVENT)
        event["event_id"] = f"evt_{index:06d}"
        event["occurred_at_unix_ms"] = FIXTURE_EVENT["occurred_at_unix_ms"] + index * 37
        kind, payload = PAYLOADS[index % len(PAYLOADS)]
        event[kind] = dict(payload)
        events.append(event)
    return events


def json_body(events: list[dict]) -> bytes:
    """The ingest API's self-describing JSON batch: {"events": [{"schema", "event"}...]}."""
    items = [{"schema": SCHEMA, "event": event} for event in events]
    return json.dumps({"events": items}).encode("utf-8")


def binary_body(events: list[dict], event_class: type, batch_class: type) -> bytes:
    batch = batch_class()
    for event in events:
        item = batch.events.add()
        item.schema = SCHEMA
        item.event = json_format.ParseDict(event, event_class()).SerializeToString()
    return batch.SerializeToString()


def run_json_naive(body: bytes, event_class: type) -> list:
    document = json.loads(body.decode("utf-8"))
    parse_dict = json_format.ParseDict
    return [parse_dict(item["event"], event_class()) for item in document["events"]]


def make_run_json_ours(parse: Callable[[dict], object]) -> Callable[[bytes, type], list]:
    def run_json_ours(body: bytes, event_class: type) -> list:
        document = json.loads(body.decode("utf-8"))
        parse_dict = json_format.ParseDict
        out = []
        for item in document["events"]:
            data = item["event"]
            message = parse(data)
            if message is None:
                message = parse_dict(data, event_class())
            out.append(message)
        return out

    return run_json_ours


def make_run_binary(batch_class: type) -> Callable[[bytes, type], list]:
    def run_binary(body: bytes, event_class: type) -> list:
        batch = batch_class()
        batch.ParseFromString(body)
        from_string = event_class.FromString
        return [from_string(item.event) for item in batch.events]

    return run_binary


def measure(run: Callable[[bytes, type], list], body: bytes, event_class: type, repeats: int):
    run(body, event_class)  # warm-up: class caches, allocator
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(body, event_class)
        seconds.append(time.perf_counter() - start)
    return BATCH_SIZE / min(seconds), BATCH_SIZE / statistics.median(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    pinning = support.pin_to_one_core()
    event_class, batch_class, event_descriptor = load_classes()
    parse = compile_json_parser(event_descriptor, event_class)
    events = make_events()
    body_json = json_body(events)
    body_binary = binary_body(events, event_class, batch_class)

    # Correctness first: every row must yield the same messages, and ours must not
    # have quietly fallen back for this well-formed batch.
    expected = [
        m.SerializeToString(deterministic=True) for m in run_json_naive(body_json, event_class)
    ]
    run_ours = make_run_json_ours(parse)
    run_binary = make_run_binary(batch_class)
    for run, body in ((run_ours, body_json), (run_binary, body_binary)):
        got = [m.SerializeToString(deterministic=True) for m in run(body, event_class)]
        assert got == expected, f"{run.__name__} disagrees with ParseDict"
    fast_hits = sum(parse(item["event"]) is not None for item in json.loads(body_json)["events"])

    rows = [
        ("JSON naive (json.loads + ParseDict)", run_json_naive, body_json, JSON_TARGET),
        ("JSON ours (json.loads + fastjson)", run_ours, body_json, JSON_TARGET),
        ("binary (EventBatch + ParseFromString)", run_binary, body_binary, BINARY_TARGET),
    ]
    results = []
    for label, run, body, target in rows:
        best, median = measure(run, body, event_class, args.repeats)
        results.append(
            {
                "name": label,
                "events_per_s_best": round(best),
                "events_per_s_median": round(median),
                "target_events_per_s": target,
                "passed": best >= target,
                "body_bytes": len(body),
            }
        )

    machine = {
        "processor": platform.processor() or platform.machine(),
        "cpu_model": support.cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "protobuf": support.protobuf_version(),
        "cores_visible": os.cpu_count(),
        "pinning": pinning,
    }
    print(f"machine: {machine['processor']} ({machine['cpu_model']}) | {machine['platform']}")
    print(f"python {machine['python']} | protobuf {machine['protobuf']} | {pinning}")
    print(
        f"batch: {BATCH_SIZE} events, {args.repeats} repeats; "
        f"fast path hits {fast_hits}/{BATCH_SIZE}"
    )
    print()
    header = f"{'row':<40} {'best ev/s':>12} {'median ev/s':>12} {'target':>10}  result"
    print(header)
    print("-" * len(header))
    for row in results:
        verdict = "PASS" if row["passed"] else "FAIL"
        print(
            f"{row['name']:<40} {row['events_per_s_best']:>12,} {row['events_per_s_median']:>12,} "
            f"{row['target_events_per_s']:>10,}  {verdict}"
        )

    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path = out_dir / "validation.json"
    report = {
        "benchmark": "validation",
        "batch_size": BATCH_SIZE,
        "repeats": args.repeats,
        "fast_path_hits": fast_hits,
        "machine": machine,
        "rows": results,
    }
    out_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out_path.relative_to(ROOT)}")
    return 0 if all(row["passed"] for row in results) else 1


if __name__ == "__main__":
    sys.exit(main())

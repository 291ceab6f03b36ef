"""The telemetry client library: delivery to the live ingest API, batching, drops and retries.

Delivery tests run against the real application served by pytest-django's
``live_server`` (PostgreSQL + Redis, real commits: ``transaction=True``). Retry and
transport behaviour is checked against a tiny scripted ``http.server`` stub, which
can answer 503/400 on demand.
"""

from __future__ import annotations

import gzip
import json
import logging
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from google.protobuf import json_format

from governance.selectors import schema_plans
from ingest.models import Event
from telemetry_client import TelemetryClient, envelope
from telemetry_client._batch import encode_event_batch
from tests.factories import AUDIT_SCHEMA, REPO_ROOT, audit_event

live = pytest.mark.django_db(transaction=True)

# Long enough that no time-triggered batch goes out during a test that did not ask for one.
NEVER = 60.0


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture
def make_client() -> Iterator[Callable[..., TelemetryClient]]:
    """Build clients; every one is closed at teardown so no sender thread outlives its test."""
    clients: list[TelemetryClient] = []

    def make(endpoint: str, *, api_key: str = "tgp_stub", **options: Any) -> TelemetryClient:
        client = TelemetryClient(endpoint=endpoint, api_key=api_key, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=5)


@pytest.fixture
def live_client(live_server, api_key, make_client) -> Iterator[Callable[..., TelemetryClient]]:
    """Build clients of the live ingest API (tests/conftest.py empties the event table after)."""
    url = f"{live_server.url}/api/v1/events"
    yield lambda **options: make_client(url, api_key=api_key.secret, **options)


def stored(request_ids: list[str]) -> list[Event]:
    return list(Event.objects.filter(request_id__in=request_ids))


@dataclass
class Recorded:
    at: float
    headers: dict[str, str]
    body: bytes

    def events(self) -> list[dict[str, Any]]:
        body = self.body
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        return json.loads(body)["events"]


@dataclass
class StubServer:
    """Answers POSTs from a script of (status, headers); the last entry repeats.

    A 200 answers every event ``accepted``, like the real API.
    """

    script: list[tuple[int, dict[str, str]]]
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""

    def answer(self, recorded: Recorded) -> tuple[int, dict[str, str], bytes]:
        self.requests.append(recorded)
        status, headers = self.script[min(len(self.requests), len(self.script)) - 1]
        if status == 200:
            results = [
                {"index": index, "status": "accepted"} for index in range(len(recorded.events()))
            ]
            return 200, headers, json.dumps({"results": results}).encode()
        error = {"error": {"code": f"stub_{status}", "message": "scripted", "field": ""}}
        return status, headers, json.dumps(error).encode()


@pytest.fixture
def stub() -> Iterator[Any]:
    """Start scripted stub servers on free ports; stop them at teardown."""
    servers: list[ThreadingHTTPServer] = []

    def start(*script: tuple[int, dict[str, str]], drop_kept_alive: bool = False) -> StubServer:
        state = StubServer(list(script))

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1 answers keep the connection open; with drop_kept_alive the stub then
            # closes it silently, as servers do with idle keep-alive connections.
            protocol_version = "HTTP/1.1" if drop_kept_alive else "HTTP/1.0"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, extra, answer = state.answer(Recorded(time.monotonic(), headers, body))
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **extra}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        state.url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/events"
        return state

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# -- delivery to the live API ---------------------------------------------------------


@live
def test_json_mode_delivers_events_to_the_store(live_client):
    """JSON mode: emitted events are posted as {"events": [{schema, event}]} and stored."""
    client = live_client(flush_interval=NEVER)
    events = [audit_event() for _ in range(3)]
    for event in events:
        client.emit(schema=AUDIT_SCHEMA, event=event)

    result = client.flush(timeout=10)

    assert result.completed and result.pending == 0
    assert (result.sent, result.duplicates, result.rejected, result.failed) == (3, 0, 0, 0)
    rows = stored([event["request_id"] for event in events])
    assert len(rows) == 3
    assert {row.payload["event_name"] for row in rows} == {"auth.session.created"}
    stats = client.stats
    assert stats["emitted"] == stats["sent"] == 3
    assert stats["requests"] == stats["batches"] == 1


@live
def test_protobuf_mode_delivers_bytes_messages_and_registered_dicts(live_client):
    """Protobuf mode: an EventBatch of bytes, message instances and dicts (via schema_message_classes)."""
    schema_plans.refresh(force=True)
    message_class = schema_plans.get(AUDIT_SCHEMA).compiled.message_class
    client = live_client(
        encoding="protobuf",
        flush_interval=NEVER,
        schema_message_classes={AUDIT_SCHEMA: message_class},
    )
    as_bytes, as_message, as_dict = audit_event(), audit_event(), audit_event()
    client.emit(AUDIT_SCHEMA, json_format.ParseDict(as_bytes, message_class()).SerializeToString())
    client.emit(AUDIT_SCHEMA, json_format.ParseDict(as_message, message_class()))
    client.emit(AUDIT_SCHEMA, as_dict)

    result = client.flush(timeout=10)

    assert result.completed and result.sent == 3
    assert len(stored([e["request_id"] for e in (as_bytes, as_message, as_dict)])) == 3
    with pytest.raises(TypeError):
        client.emit("telemetry.service_metric.v1", {"name": "no class registered"})


@live
def test_duplicates_are_counted_as_delivered(live_client):
    """Re-sending a stored event is answered duplicate: counted apart, not retried or failed."""
    client = live_client(flush_interval=NEVER)
    event = audit_event()
    client.emit(AUDIT_SCHEMA, event)
    first = client.flush(timeout=10)
    client.emit(AUDIT_SCHEMA, event)
    second = client.flush(timeout=10)

    assert (first.sent, first.duplicates) == (1, 0)
    assert (second.sent, second.duplicates) == (0, 1)
    stats = client.stats
    assert (stats["sent"], stats["duplicates"], stats["failed_batches"]) == (1, 1, 0)
    assert stats["retries"] == 0
    assert len(stored([event["request_id"]])) == 1


@live
def test_rejected_events_are_counted_by_code_and_reported(live_client):
    """Per-event rejections: counted per code, passed to on_rejected, never retried."""
    client = live_client(flush_interval=NEVER)
    seen: list[tuple[int, str, str, str, str]] = []
    client.on_rejected = lambda *args: seen.append(args)
    missing_time = audit_event()
    del missing_time["occurred_at"]
    client.emit(AUDIT_SCHEMA, audit_event())
    client.emit("telemetry.nope.v1", audit_event())
    client.emit(AUDIT_SCHEMA, missing_time)

    result = client.flush(timeout=10)

    assert (result.sent, result.rejected) == (1, 2)
    stats = client.stats
    assert stats["rejected"] == {"unknown_schema": 1, "missing_field": 1}
    assert stats["requests"] == 1 and stats["retries"] == 0 and stats["failed_batches"] == 0
    assert [(index, schema, code) for index, schema, code, _, _ in seen] == [
        (1, "telemetry.nope.v1", "unknown_schema"),
        (2, AUDIT_SCHEMA, "missing_field"),
    ]
    assert seen[1][3] == "occurred_at" and seen[1][4]


@live
def test_batches_by_event_count(live_client):
    """25 events with max_batch_events=10: two full batches go at once, flush sends the last 5."""
    client = live_client(max_batch_events=10, flush_interval=NEVER)
    events = [audit_event() for _ in range(25)]
    for event in events:
        client.emit(AUDIT_SCHEMA, event)

    assert client.flush(timeout=10).completed

    rows = stored([event["request_id"] for event in events])
    per_request = Counter(row.ingest_request_id for row in rows)
    assert sorted(per_request.values()) == [5, 10, 10]
    assert all(request_id.startswith("tc-") for request_id in per_request)
    assert client.stats["requests"] == 3 and client.stats["sent"] == 25


@live
def test_batches_by_time(live_client):
    """Without flush(), a partial batch goes out once its oldest event is flush_interval old."""
    client = live_client(flush_interval=0.3)
    emitted_at = time.monotonic()
    client.emit(AUDIT_SCHEMA, audit_event())
    client.emit(AUDIT_SCHEMA, audit_event())

    while client.stats["sent"] < 2 and time.monotonic() - emitted_at < 5:
        time.sleep(0.02)

    assert client.stats["sent"] == 2
    assert client.stats["requests"] == 1
    assert time.monotonic() - emitted_at >= 0.3


@live
def test_full_queue_drops_the_oldest_events(live_client):
    """max_queue=5 and nothing sent yet: 8 emits drop the 3 oldest, counted; the newest 5 arrive."""
    client = live_client(max_queue=5, max_batch_events=100, flush_interval=NEVER)
    events = [audit_event() for _ in range(8)]
    for event in events:
        client.emit(AUDIT_SCHEMA, event)

    assert client.stats["dropped_queue_full"] == 3
    assert client.stats["queued"] == 5
    result = client.flush(timeout=10)

    assert result.sent == 5
    delivered = {row.request_id for row in stored([event["request_id"] for event in events])}
    assert delivered == {event["request_id"] for event in events[3:]}


@live
def test_close_flushes_and_later_emits_are_dropped(live_client):
    """close() sends what is queued and stops the sender; emit() afterwards only counts a drop."""
    client = live_client(flush_interval=NEVER)
    events = [audit_event() for _ in range(4)]
    for event in events:
        client.emit(AUDIT_SCHEMA, event)

    result = client.close(timeout=10)

    assert result.completed and result.sent == 4
    assert len(stored([event["request_id"] for event in events])) == 4
    client.emit(AUDIT_SCHEMA, audit_event())
    assert client.stats["dropped_closed"] == 1
    assert not client._thread.is_alive()


@live
def test_envelope_helper_builds_an_accepted_platform_envelope(live_client):
    """envelope(): a uuid4 event id and RFC 3339 now that the platform accepts and stores."""
    client = live_client(flush_interval=NEVER)
    env = envelope(
        source="control-service",
        surface="web",
        app_version="1.2.3",
        request_id="req_envelope_1",
        session_id="sess_raw",
        actor_scope_hash="sha256:" + "ab" * 32,
    )
    client.emit(
        "telemetry.client_diagnostic.v1",
        {"envelope": env, "name": "ws.reconnect", "reason_code": "network_path_changed"},
    )

    assert client.flush(timeout=10).sent == 1

    row = Event.objects.get(event_id=env["event_id"])
    assert len(env["event_id"]) == 32 and env["occurred_at"].endswith("Z")
    assert row.payload["envelope"]["build"] == {"app_version": "1.2.3"}
    # The platform hashes the session id; the raw value never reaches the store.
    assert "sess_raw" not in json.dumps(row.payload)
    with pytest.raises(ValueError):
        envelope(actor_scope_hash="user_929583699")


# -- retries and transport, against a stub ------------------------------------------


def test_503_with_retry_after_is_retried_after_waiting(stub, make_client):
    """503 + Retry-After: 1 → the client waits ≥ 1 s, retries the same batch, then succeeds."""
    server = stub((503, {"Retry-After": "1"}), (200, {}))
    client = make_client(server.url, flush_interval=NEVER, backoff_base=0.01)
    client.emit(AUDIT_SCHEMA, audit_event())

    result = client.flush(timeout=10)

    assert result.completed and result.sent == 1
    first, second = server.requests
    assert second.at - first.at >= 0.95
    assert first.headers["x-request-id"] == second.headers["x-request-id"]
    assert first.body == second.body
    assert client.stats["retries"] == 1 and client.stats["failed_batches"] == 0


def test_400_is_not_retried_and_not_logged_with_contents(stub, make_client, caplog):
    """400: one request only, the batch counted failed, the log names the code but no event data."""
    server = stub((400, {}))
    client = make_client(server.url, flush_interval=NEVER, backoff_base=0.01)
    caplog.set_level(logging.INFO, logger="telemetry_client")
    client.emit(AUDIT_SCHEMA, audit_event(user_id="user_secret_value_42"))

    result = client.flush(timeout=10)

    time.sleep(0.2)  # a (wrong) retry would have come by now
    assert len(server.requests) == 1
    assert result.completed and result.failed == 1
    stats = client.stats
    assert (stats["failed_batches"], stats["failed_events"], stats["retries"]) == (1, 1, 0)
    assert "stub_400" in caplog.text
    assert "user_secret_value_42" not in caplog.text


def test_connection_errors_are_retried_then_the_batch_is_dropped(make_client):
    """Nothing listening: max_retries retries with jittered backoff, then one failed batch."""
    client = make_client(
        "http://127.0.0.1:9/api/v1/events",
        flush_interval=NEVER,
        max_retries=2,
        backoff_base=0.01,
        timeout=1,
    )
    client.emit(AUDIT_SCHEMA, audit_event())

    result = client.flush(timeout=10)

    assert result.completed and result.failed == 1
    stats = client.stats
    assert (stats["requests"], stats["retries"], stats["failed_batches"]) == (3, 2, 1)


def test_a_kept_alive_connection_closed_by_the_server_is_reopened(stub, make_client):
    """A stale keep-alive socket is reconnected transparently: no retry, no failure."""
    server = stub((200, {}), drop_kept_alive=True)
    client = make_client(server.url, flush_interval=NEVER, max_retries=0)
    for _ in range(2):
        client.emit(AUDIT_SCHEMA, audit_event())
        assert client.flush(timeout=10).sent == 1

    assert len(server.requests) == 2
    stats = client.stats
    assert (stats["requests"], stats["retries"], stats["failed_batches"]) == (2, 0, 0)


def test_batches_by_bytes_and_gzips_large_bodies(stub, make_client):
    """max_batch_bytes bounds each (uncompressed) body; bodies over 1 KiB are sent gzipped."""
    server = stub((200, {}))
    client = make_client(server.url, max_batch_bytes=2_000, flush_interval=NEVER)
    events = [audit_event(attributes={"note": "x" * 200}) for _ in range(12)]
    for event in events:
        client.emit(AUDIT_SCHEMA, event)

    assert client.flush(timeout=10).sent == 12

    assert len(server.requests) > 1
    for request in server.requests:
        assert request.headers["content-encoding"] == "gzip"
        assert len(gzip.decompress(request.body)) <= 2_000
    received = [item["event"]["request_id"] for r in server.requests for item in r.events()]
    assert received == [event["request_id"] for event in events]


def test_protobuf_batch_encoding_matches_the_platforms_event_batch():
    """The client's descriptor-literal EventBatch decodes with the platform's compiled one."""
    from governance.platform_protos import event_batch_class

    body = encode_event_batch([(AUDIT_SCHEMA, b"\x0a\x03abc"), ("", b"")])
    batch = event_batch_class().FromString(body)
    assert [(item.schema, item.event) for item in batch.events] == [
        (AUDIT_SCHEMA, b"\x0a\x03abc"),
        ("", b""),
    ]


def test_exiting_interpreter_flushes_and_library_does_not_import_the_project(stub):
    """A program that never calls close() still delivers at exit; the library loads no Django."""
    server = stub((200, {}))
    script = f"""
import sys
from telemetry_client import TelemetryClient
project = {{"django", "governance", "ingest", "telemetry_platform"}}
assert not project & {{name.split(".")[0] for name in sys.modules}}, "imports the project"
client = TelemetryClient(endpoint={server.url!r}, api_key="tgp_x", flush_interval=60)
client.emit("{AUDIT_SCHEMA}", {{"event_name": "process.exit"}})
"""
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=20,
    )

    assert completed.returncode == 0, completed.stderr
    assert len(server.requests) == 1
    assert server.requests[0].events() == [
        {"schema": AUDIT_SCHEMA, "event": {"event_name": "process.exit"}}
    ]

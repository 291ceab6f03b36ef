"""Optional OpenTelemetry tracing: off without OTEL_*; on, spans reach an OTLP/HTTP receiver."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from telemetry_platform import tracing

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PERSONAL = "alice@example.com"
QUERY = "actor=alice%40example.com"


# --- the switch -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "false"}, True),
    ],
)
def test_tracing_switch_rule(environ, enabled):
    """On with OTEL_TRACES_EXPORTER=otlp or an OTLP endpoint; OTEL_SDK_DISABLED=true wins."""
    assert tracing.tracing_enabled(environ) is enabled


OFF_PROBE = """
import json, sys
from telemetry_platform.wsgi import application
from telemetry_platform import celery, tracing
from telemetry_platform import logging as platform_logging
from django.conf import settings
# redis-py imports the OpenTelemetry API when it is installed (its own, unused metrics).
traced = ("opentelemetry.instrumentation", "opentelemetry.exporter", "opentelemetry.sdk.trace")
configured = tracing.tracing_configure()
modules = sorted(m for m in sys.modules if m.startswith(traced))
from opentelemetry import trace
print(json.dumps({
    "configured": configured,
    "modules": modules,
    "provider": type(trace.get_tracer_provider()).__name__,
    "middleware": [m for m in settings.MIDDLEWARE if "opentelemetry" in m],
    "trace_id_source": platform_logging._span_trace_id.__name__,
}))
"""


@pytest.mark.parametrize(
    "otel_env",
    [{}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"}],
)
def test_tracing_stays_off_without_otel_variables(otel_env):
    """Without OTEL_* (or with OTEL_SDK_DISABLED) a web process installs no tracer provider,
    middleware, instrumentation or exporter: nothing of tracing is on the ingest path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(otel_env, DJANGO_SETTINGS_MODULE="telemetry_platform.test_settings")
    done = subprocess.run(
        [sys.executable, "-c", OFF_PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe == {
        "configured": False,
        "modules": [],
        "provider": "ProxyTracerProvider",
        "middleware": [],
        "trace_id_source": "_no_span_trace_id",
    }


def test_request_hook_replaces_query_strings_in_span_attributes(rf):
    """Whatever URL attribute the instrumentation records (old or new conventions), the query
    string is replaced by REDACTED; the path stays."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    request = rf.get(f"/api/v1/audit-events?{QUERY}")
    span = provider.get_tracer("test").start_span(
        "GET api/v1/audit-events",
        attributes={
            "http.target": f"/api/v1/audit-events?{QUERY}",
            "http.url": f"http://testserver/api/v1/audit-events?{QUERY}",
            "url.full": f"http://testserver/api/v1/audit-events?{QUERY}",
            "url.path": "/api/v1/audit-events",
            "url.query": QUERY,
        },
    )
    tracing._django_request_hook(span, request)
    span.end()
    (finished,) = exporter.get_finished_spans()
    assert dict(finished.attributes) == {
        "http.target": "/api/v1/audit-events?REDACTED",
        "http.url": "http://testserver/api/v1/audit-events?REDACTED",
        "url.full": "http://testserver/api/v1/audit-events?REDACTED",
        "url.path": "/api/v1/audit-events",
        "url.query": "REDACTED",
    }


# --- an OTLP/HTTP receiver --------------------------------------------------------------


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


class OtlpReceiver:
    """Accepts POST /v1/traces (protobuf ExportTraceServiceRequest) and keeps the spans."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    import gzip

                    body = gzip.decompress(body)
                receiver.add(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            resource = {a.key: _any_value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    entry = {
                        "service": resource.get("service.name"),
                        "resource": resource,
                        "name": span.name,
                        "kind": span.kind,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "attributes": {a.key: _any_value(a.value) for a in span.attributes},
                        "events": [
                            {a.key: _any_value(a.value) for a in event.attributes}
                            for event in span.events
                        ],
                    }
                    with self.lock:
                        self.spans.append(entry)

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [span for span in self.spans if predicate(span)]
            if found:
                return found[0]
            time.sleep(0.05)
        with self.lock:
            names = [(s["service"], s["name"], s["trace_id"]) for s in self.spans]
        raise AssertionError(f"no such span exported; got {names}")


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


# --- gunicorn and a Celery worker with tracing on ---------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _traced_env(receiver: OtlpReceiver, service: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="telemetry_platform.test_settings",
        DATABASE_URL=f"postgres://root@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        TEST_DATABASE_NAME=connection.settings_dict["NAME"],
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_SERVICE_NAME=service,
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test",
        OTEL_BSP_SCHEDULE_DELAY="100",
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
    )
    return env


def _json_lines(path: Path) -> list[dict[str, Any]]:
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _request(
    url: str, *, method: str = "GET", headers: dict[str, str], body: bytes | None = None
) -> int:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture
def traced_platform(otlp_receiver, tmp_path, transactional_db, empty_broker):
    """gunicorn (Procfile's config, one worker) and a prefork Celery worker, both exporting
    to the receiver; yields the base URL and the two log files."""
    port = _free_port()
    web_log, worker_log = tmp_path / "web.log", tmp_path / "worker.log"
    with web_log.open("w") as web_out, worker_log.open("w") as worker_out:
        web = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "telemetry_platform.wsgi",
                "--config",
                "telemetry_platform/gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
            ],
            cwd=ROOT,
            env=_traced_env(otlp_receiver, "tgp-test-web"),
            stdout=web_out,
            stderr=subprocess.STDOUT,
        )
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "telemetry_platform",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "1",
                "--queues",
                "maintenance",
                "--loglevel",
                "INFO",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=_traced_env(otlp_receiver, "tgp-test-worker"),
            stdout=worker_out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while _request_quietly(f"{base}/healthz") != 200:
            assert web.poll() is None, web_log.read_text()
            assert time.monotonic() < deadline, "gunicorn did not come up"
            time.sleep(0.2)
        yield base, web_log, worker_log
    finally:
        _stop(web)
        _stop(worker)


def _request_quietly(url: str) -> int:
    try:
        return _request(url, headers={})
    except OSError:
        return 0


def _spans_mention(spans: list[dict[str, Any]], needles: tuple[str, ...]) -> list[str]:
    text = json.dumps(spans)
    return [needle for needle in needles if needle in text]


@pytest.mark.django_db(transaction=True)
def test_web_and_worker_spans_continue_the_incoming_trace(
    traced_platform, otlp_receiver, platform_config, client, django_user_model
):
    """Under gunicorn with OTEL_* set: the Django span is the child of the incoming
    traceparent, carries no query string, joins its log lines by trace id; a task enqueued by
    a request runs in a worker span of the same trace, whose log lines name that trace too."""
    base, web_log, worker_log = traced_platform
    admin = django_user_model.objects.create_superuser("otel-admin", "", "pw-otel-admin")
    client.force_login(admin)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    csrf = "a" * 32
    cookies = f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={csrf}"

    # 1. Audit search with raw identifiers in the query string, under an incoming trace.
    search_trace, search_parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    status = _request(
        f"{base}/api/v1/audit-events?{QUERY}",
        headers={
            "Cookie": cookies,
            "traceparent": f"00-{search_trace}-{search_parent}-01",
            "X-Request-Id": "otel-search",
        },
    )
    assert status == 200
    server = otlp_receiver.wait_for(
        lambda s: s["trace_id"] == search_trace and s["kind"] == 2  # SERVER
    )
    assert server["service"] == "tgp-test-web"
    assert server["resource"]["deployment.environment"] == "test"
    assert server["parent_span_id"] == search_parent
    assert server["name"] == "GET api/v1/audit-events"
    assert server["attributes"]["request_id"] == "otel-search"
    target = server["attributes"].get("http.target") or server["attributes"].get("url.path")
    assert target.startswith("/api/v1/audit-events")
    # The search's queries are children in the same trace (psycopg instrumentation).
    database = otlp_receiver.wait_for(
        lambda s: s["trace_id"] == search_trace and s["attributes"].get("db.system")
    )
    assert database["service"] == "tgp-test-web"

    # 2. A request without traceparent: its log line names the span's own (new) trace.
    status = _request(f"{base}/no-such-page?{QUERY}", headers={"X-Request-Id": "otel-not-found"})
    assert status == 404
    not_found = otlp_receiver.wait_for(
        lambda s: s["attributes"].get("request_id") == "otel-not-found"
    )
    assert not_found["parent_span_id"] == ""

    # 3. An admin action enqueues the purge; the worker continues the request's trace.
    purge_trace, purge_parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    status = _request(
        f"{base}/admin/ingest/purgerun/run-now/",
        method="POST",
        body=b"event_class=audit_event",
        headers={
            "Cookie": cookies,
            "X-CSRFToken": csrf,
            "Content-Type": "application/x-www-form-urlencoded",
            "traceparent": f"00-{purge_trace}-{purge_parent}-01",
            "X-Request-Id": "otel-purge",
        },
    )
    assert status == 302
    publish = otlp_receiver.wait_for(
        lambda s: s["trace_id"] == purge_trace and s["name"].startswith("apply_async/")
    )
    run = otlp_receiver.wait_for(
        lambda s: s["trace_id"] == purge_trace and s["name"].startswith("run/"), timeout=60
    )
    assert publish["service"] == "tgp-test-web"
    assert run["service"] == "tgp-test-worker"
    assert run["name"] == "run/ingest.tasks.purge_expired_events"
    assert run["parent_span_id"] == publish["span_id"]

    # Log lines agree with the spans.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        web_entries, worker_entries = _json_lines(web_log), _json_lines(worker_log)
        warning = [e for e in web_entries if e.get("request_id") == "otel-not-found"]
        purged = [e for e in worker_entries if e["message"].startswith("purged audit_event")]
        if warning and purged:
            break
        time.sleep(0.2)
    assert warning and warning[0]["logger"] == "django.request"
    assert warning[0]["trace_id"] == not_found["trace_id"]
    assert purged, worker_log.read_text()[-3000:]
    assert purged[0]["trace_id"] == purge_trace

    # No span anywhere carries the searched identifier or the query string.
    with otlp_receiver.lock:
        spans = list(otlp_receiver.spans)
    assert _spans_mention(spans, (PERSONAL, "alice", QUERY, "actor=")) == []

"""The web emitter and real posthog-js in Debian's chromium, from a page on another origin.

The pages are served by a small static server on a port of their own, so the platform
(the live server) is another origin: every request is a real cross-origin one, with the
browser's own preflights, CORS checks and beacons on page close.
"""

from __future__ import annotations

import http.client
import json
import shutil
import threading
import time
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from ingest.models import ApiKey, Event
from ingest.services import api_key_create
from tests.browser.chromium import CHROMIUM_ARGS, TIMEOUT_MS, require_chromium
from tests.factories import CLIENT_TELEMETRY_SCHEMA, REPO_ROOT, client_telemetry_schema_register

WEB = REPO_ROOT / "clients/web"
EMITTER = WEB / "dist/emitter.min.js"
POSTHOG = WEB / "node_modules/posthog-js/dist/array.no-external.js"
BEACON_WAIT_SECONDS = 3.0

EMITTER_PAGE = """<!doctype html><meta charset="utf-8"><title>emitter</title>
<script src="emitter.min.js"></script>
<script>
  const params = new URLSearchParams(location.search);
  window.emitter = new TelemetryEmitter.Emitter({
    endpoint: params.get("endpoint"), apiKey: params.get("key"),
    flushIntervalMs: 600000, maxRetries: Number(params.get("retries") || 0),
    base: {surface: "CLIENT_SURFACE_WEB", client_build_id: "web-test", app_version: "1.0.0"},
  });
</script>"""

POSTHOG_PAGE = """<!doctype html><meta charset="utf-8"><title>posthog</title>
<script src="posthog.js"></script>
<script>
  const params = new URLSearchParams(location.search);
  posthog.init(params.get("key"), {
    api_host: params.get("host"), autocapture: false, capture_pageview: false,
    disable_session_recording: true, persistence: "memory",
    // Headless chromium has a bot user agent, which posthog-js drops by default.
    opt_out_useragent_filter: true,
  });
</script>"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def page_server(tmp_path):
    """A static server for the test pages on a free port: (base url, its origin)."""
    if not EMITTER.is_file() or not POSTHOG.is_file():
        pytest.fail(
            "clients/web is not built: run `make web-client` (npm ci && npm test)", pytrace=False
        )
    shutil.copy(EMITTER, tmp_path / "emitter.min.js")
    shutil.copy(POSTHOG, tmp_path / "posthog.js")
    (tmp_path / "emitter.html").write_text(EMITTER_PAGE)
    (tmp_path / "posthog.html").write_text(POSTHOG_PAGE)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=tmp_path))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}", port
    server.shutdown()
    server.server_close()


class _FlakyPlatform(BaseHTTPRequestHandler):
    """Forwards to the live server; answers the next ``fail`` POSTs 503 (Retry-After: 60,
    readable by the page) instead, holds the next POST ``delay`` seconds before forwarding
    it, and records the event ids of every POST it receives."""

    upstream: tuple[str, int]
    state: dict

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_OPTIONS(self) -> None:
        self._forward(b"")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ids = [event["event_id"] for event in json.loads(body)["events"]]
        with self.state["lock"]:
            self.state["posts"].append(ids)
            fail = self.state["fail"] > 0
            self.state["fail"] -= fail
            delay = self.state["delay"]
            self.state["delay"] = 0
        if not fail:
            time.sleep(delay)
            self._forward(body)
            return
        self.send_response(503)
        for name, value in (
            ("Access-Control-Allow-Origin", self.headers["Origin"]),
            ("Access-Control-Expose-Headers", "retry-after"),
            ("Retry-After", "60"),
            ("Content-Type", "application/json"),
            ("Content-Length", "40"),
        ):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(b'{"error":{"code":"store_unavailable"}} ')

    def _forward(self, body: bytes) -> None:
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        skip = {"host", "connection", "content-length"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        connection.request(self.command, self.path, body=body or None, headers=headers)
        answer = connection.getresponse()
        content = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in {"connection", "transfer-encoding", "content-length"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)
        connection.close()


@pytest.fixture
def flaky_platform(live_server):
    """A proxy in front of the live server: (its url, its state: fail count, POSTed ids)."""
    url = urlsplit(live_server.url)
    state = {"lock": threading.Lock(), "fail": 0, "delay": 0.0, "posts": []}
    handler = type(
        "Handler", (_FlakyPlatform,), {"upstream": (url.hostname, url.port), "state": state}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def wait_until(ready, seconds: float = 10.0) -> None:
    """Wait until ``ready()`` holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def publishable_key(origin: str, *schemas: str) -> str:
    return api_key_create(
        name=f"page-{schemas[0]}",
        source="web-page",
        actor=None,
        kind=ApiKey.Kind.PUBLISHABLE,
        allowed_schemas=list(schemas),
        allowed_origins=[origin],
    ).secret


def launch(playwright):
    return playwright.chromium.launch(executable_path=require_chromium(), args=CHROMIUM_ARGS)


@pytest.mark.django_db(transaction=True)
def test_emitter_beacon_on_close_delivers_the_queue_and_other_origins_are_refused(
    live_server, platform_config, page_server
):
    """Events queued in a page on an allowed origin are delivered by sendBeacon when the page
    closes; a preflighted fetch from that origin passes; the same page on an origin the key
    does not allow is refused and stores nothing."""
    client_telemetry_schema_register()
    base, origin, port = page_server
    key = publishable_key(origin, CLIENT_TELEMETRY_SCHEMA)
    endpoint = f"{live_server.url}/api/v1/events"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context()
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            page.goto(f"{base}/emitter.html?endpoint={endpoint}&key={key}")
            # A preflighted request (traceparent, x-request-id, JSON) from the allowed origin.
            sent = page.evaluate(
                """async () => {
                  emitter.emit({reconnect: {attempt: 1, reason_code: "preflighted"}});
                  await emitter.flush();
                  return emitter.stats();
                }"""
            )
            assert sent["sent"] == 1 and sent["rejected"] == 0, sent
            queued = page.evaluate(
                """() => {
                  for (let i = 0; i < 7; i++)
                    emitter.emit({replay: {status: "live", head_seq: i}});
                  return emitter.queue.size;
                }"""
            )
            assert queued == 7
            page.close(run_before_unload=True)  # pagehide: the queue goes by beacon

            # The same page served as http://localhost:PORT is another origin.
            other = context.new_page()
            other.goto(f"http://localhost:{port}/emitter.html?endpoint={endpoint}&key={key}")
            refused = other.evaluate(
                """async () => {
                  emitter.emit({replay: {status: "refused"}});
                  await emitter.flush();
                  return emitter.stats();
                }"""
            )
            assert refused["sent"] == 0 and refused["rejected"] == 1, refused
            time.sleep(BEACON_WAIT_SECONDS)
        finally:
            browser.close()
    payloads = [event.payload for event in Event.objects.filter(source="web-page")]
    # proto3 JSON leaves out zero values: the first replay's head_seq 0 is absent.
    replays = sorted(int(p["replay"].get("head_seq", 0)) for p in payloads if "replay" in p)
    assert replays == list(range(7)), replays
    assert next(p for p in payloads if p.get("reconnect"))["reconnect"]["reason_code"] == (
        "preflighted"
    )
    assert not any(p.get("replay", {}).get("status") == "refused" for p in payloads)


@pytest.mark.django_db(transaction=True)
def test_a_retry_pending_at_page_close_is_beaconed_and_answered_events_are_not_resent(
    live_server, platform_config, page_server, flaky_platform
):
    """A batch answered 503 waits 60 s for its retry; the page closes meanwhile: the beacon
    carries it with the queue, and each event is stored once. On another page a batch
    answered 200 before the close is not in that page's beacon. On a third, a slow request
    still in flight at the close arrives as well as the beacon: stored once."""
    client_telemetry_schema_register()
    base, origin, _ = page_server
    proxy, state = flaky_platform
    key = publishable_key(origin, CLIENT_TELEMETRY_SCHEMA)
    page_url = f"{base}/emitter.html?endpoint={proxy}/api/v1/events&key={key}&retries=3"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context()
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            page.goto(page_url)
            state["fail"] = 1
            page.evaluate(
                """() => {
                  for (let i = 0; i < 3; i++) emitter.emit({reconnect: {attempt: i + 1}});
                  void emitter.flush();  // answered 503: waits for Retry-After (60 s)
                }"""
            )
            page.wait_for_function("emitter.stats().retries === 1")
            page.evaluate("emitter.emit({reconnect: {attempt: 4, reason_code: 'queued'}})")
            assert page.evaluate("emitter.unacknowledged") == 3
            page.close(run_before_unload=True)

            answered = context.new_page()
            answered.goto(page_url)
            stats = answered.evaluate(
                """async () => {
                  emitter.emit({replay: {status: "answered", head_seq: 1}});
                  await emitter.flush();
                  emitter.emit({replay: {status: "after", head_seq: 2}});
                  return emitter.stats();
                }"""
            )
            assert stats["sent"] == 1, stats
            answered.close(run_before_unload=True)

            # A slow request still in flight at the close: it and the beacon both arrive.
            slow = context.new_page()
            slow.goto(page_url)
            time.sleep(0.2)  # the previous page's beacon is in
            state["delay"] = 1.5
            slow.evaluate(
                """() => {
                  for (let i = 0; i < 2; i++) emitter.emit({auth_failure: {http_status: 401 + i}});
                  void emitter.flush();
                }"""
            )
            wait_until(lambda: len(state["posts"]) == 5)
            slow.close(run_before_unload=True)
            time.sleep(BEACON_WAIT_SECONDS)
        finally:
            browser.close()
    failed, beacon, fetched, last, in_flight, *rest = state["posts"]
    assert rest == [in_flight], "the slow fetch once, and its events once by beacon"
    assert len(failed) == 3 and len(fetched) == 1 and len(last) == 1, state["posts"]
    assert beacon[:3] == failed and len(beacon) == 4, "the 503'd batch, then the queue"
    assert not set(last) & set(fetched), "an answered event is not sent again"
    events = list(Event.objects.filter(source="web-page"))
    stored = [event.event_id for event in events]
    assert sorted(stored) == sorted(beacon + fetched + last + in_flight), "each stored once"
    statuses = sorted(
        int(e.payload["auth_failure"]["http_status"]) for e in events if "auth_failure" in e.payload
    )
    assert statuses == [401, 402]
    attempts = sorted(
        int(e.payload["reconnect"]["attempt"]) for e in events if "reconnect" in e.payload
    )
    assert attempts == [1, 2, 3, 4]


@pytest.mark.django_db(transaction=True)
def test_real_posthog_js_events_are_stored_hashed_without_ip(
    live_server, platform_config, page_server
):
    """posthog-js from npm, api_host pointed at the platform, works unchanged: its captured
    events are stored under posthog.capture.v1, distinct_id hashed, no $ip."""
    base, origin, port = page_server
    key = publishable_key(origin, "posthog.capture.v1")
    host = f"{live_server.url}/posthog"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context()
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            page.goto(f"{base}/posthog.html?host={host}&key={key}")
            page.evaluate(
                """() => {
                  posthog.identify("jane.doe@example.com", {email: "jane.doe@example.com"});
                  posthog.capture("checkout_started", {plan: "pro", step: 2});
                }"""
            )
            page.close(run_before_unload=True)  # posthog-js flushes its queue on unload
            other = context.new_page()
            other.goto(f"http://localhost:{port}/posthog.html?host={host}&key={key}")
            other.evaluate("""() => posthog.capture("from_another_origin")""")
            other.close(run_before_unload=True)
            time.sleep(BEACON_WAIT_SECONDS)
        finally:
            browser.close()
    events = list(Event.objects.filter(source="web-page").select_related("schema_revision__schema"))
    names = {event.payload["event"] for event in events}
    assert "checkout_started" in names, names
    assert "from_another_origin" not in names
    for event in events:
        assert event.schema_revision.schema.name == "posthog.capture.v1"
        assert "ip" not in event.payload and "person_properties" not in event.payload
        assert "jane.doe@example.com" not in str(event.payload)
        assert event.payload["distinct_id"] != "jane.doe@example.com"
    checkout = next(e for e in events if e.payload["event"] == "checkout_started")
    assert checkout.payload["properties"]["plan"] == "pro"
    assert checkout.payload["lib"] == "web"

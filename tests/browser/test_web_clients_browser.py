"""The web emitter and real posthog-js in Debian's chromium, from a page on another origin.

The pages are served by a small static server on a port of their own, so the platform
(the live server) is another origin: every request is a real cross-origin one, with the
browser's own preflights, CORS checks and beacons on page close.
"""

from __future__ import annotations

import shutil
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

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
    flushIntervalMs: 600000, maxRetries: 0,
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

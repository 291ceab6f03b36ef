// The emitter outside a browser, as the desktop and iOS shells run it: no sendBeacon, no
// pagehide, no localStorage. Node's fetch against a real HTTP server started here, which
// answers 503 once and deduplicates by event id like the platform.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import vm from "node:vm";
import { createEmitter, fetchTransport } from "../dist/index.js";

const BUNDLE = new URL("../dist/emitter.min.js", import.meta.url);
export const GZIP_BOUND = 6 * 1024;

/** A platform stand-in: POST bodies recorded; the first ``failures`` answered 503. */
async function platform({ failures = 0 } = {}) {
  const requests = [];
  const stored = new Map(); // event id -> times received with a 200
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (part) => (body += part));
    req.on("end", () => {
      const batch = JSON.parse(body);
      const ids = batch.events.map((event) => event.event_id);
      requests.push({ url: req.url, headers: req.headers, ids, batch });
      if (requests.length <= failures) {
        res.writeHead(503, { "Retry-After": "60", "Content-Type": "application/json" });
        return res.end('{"error":{"code":"store_unavailable"}}');
      }
      let accepted = 0;
      for (const id of ids) {
        if (!stored.has(id)) accepted++;
        stored.set(id, (stored.get(id) ?? 0) + 1);
      }
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ received: ids.length, accepted, duplicate: ids.length - accepted, rejected: 0 }));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${server.address().port}/api/v1/events`;
  return { endpoint, requests, stored, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** Wait until ``ready()`` holds (at most 10 s, then fail). */
async function until(ready) {
  const deadline = Date.now() + 10000;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A desktop shell's storage: one JSON file in the app's data directory. */
function fileStorage(path) {
  const read = () => (existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) : {});
  return {
    getItem: (key) => read()[key] ?? null,
    setItem: (key, value) => writeFileSync(path, JSON.stringify({ ...read(), [key]: value })),
    removeItem: (key) => { const all = read(); delete all[key]; writeFileSync(path, JSON.stringify(all)); },
  };
}

test("Node has none of the browser's globals the default adapters use", () => {
  assert.equal(globalThis.navigator?.sendBeacon, undefined);
  assert.equal(globalThis.addEventListener, undefined);
  assert.equal(globalThis.localStorage, undefined);
});

test("desktop shell: before-quit awaits close(), which sends a batch waiting after a 503 once", async () => {
  const server = await platform({ failures: 1 });
  const dir = mkdtempSync(join(tmpdir(), "tgp-desktop-"));
  try {
    const app = new EventEmitter(); // Electron's app: before-quit, then quit
    const emitter = createEmitter({
      endpoint: server.endpoint,
      apiKey: "tgp_pub_desktop",
      transport: fetchTransport(fetch),
      storage: fileStorage(join(dir, "telemetry.json")),
      persistKey: "unsent",
      lifecycle: null,
      base: { surface: "CLIENT_SURFACE_DESKTOP", client_build_id: "desktop-1", app_version: "2.0.0" },
    });
    let quit = false;
    app.on("before-quit", async (event) => {
      event.preventDefault();
      await emitter.close();
      quit = true;
    });
    for (let i = 0; i < 3; i++) emitter.emit({ reconnect: { attempt: i + 1 } });
    const flushed = emitter.flush();
    await until(() => server.requests.length >= 1 && emitter.stats().retries >= 1);
    assert.equal(emitter.unacknowledged, 3, "the 503'd batch waits 60 s for its retry");
    const event = { preventDefault() {} };
    app.emit("before-quit", event);
    await flushed;
    await until(() => quit);
    assert.equal(server.requests.length, 2);
    assert.deepEqual(server.requests[1].ids, server.requests[0].ids, "the same events, unchanged");
    assert.deepEqual([...server.stored.values()], [1, 1, 1], "each event stored once");
    assert.equal(server.requests[1].batch.events[0].surface, "CLIENT_SURFACE_DESKTOP");
    assert.equal(server.requests[1].headers["content-type"], "text/plain");
    assert.match(server.requests[1].headers.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    assert.match(server.requests[1].url, /\?api_key=tgp_pub_desktop$/);
    assert.equal(emitter.unacknowledged, 0);
    assert.equal(fileStorage(join(dir, "telemetry.json")).getItem("unsent"), null);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("desktop shell: a close() with the platform unreachable persists; the next start sends them", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tgp-desktop-"));
  const storage = fileStorage(join(dir, "telemetry.json"));
  const options = { apiKey: "tgp_pub_desktop", transport: fetchTransport(fetch), storage, persistKey: "unsent", lifecycle: null };
  try {
    const down = await platform();
    await down.close(); // nothing listens on its port any more
    const first = createEmitter({ ...options, endpoint: down.endpoint });
    first.emit({ replay: { status: "live" } });
    first.emit({ replay: { status: "catching_up" } });
    await first.close();
    const saved = JSON.parse(storage.getItem("unsent"));
    assert.equal(saved.length, 2);
    const server = await platform();
    try {
      const next = createEmitter({ ...options, endpoint: server.endpoint, flushIntervalMs: 999999 });
      await next.close();
      assert.deepEqual(server.requests.flatMap((r) => r.ids), saved.map((e) => e.event_id));
      assert.equal(storage.getItem("unsent"), null);
    } finally {
      await server.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("iOS JavaScriptCore shell: the bundle runs with no web globals, sending through a native bridge", async () => {
  const server = await platform({ failures: 1 });
  try {
    // A bare JavaScriptCore context: ECMAScript only (no fetch, setTimeout, Blob,
    // TextEncoder, URLSearchParams, navigator, localStorage).
    const context = vm.createContext({});
    vm.runInContext(readFileSync(BUNDLE, "utf8"), context);
    assert.equal(vm.runInContext("typeof fetch + typeof setTimeout + typeof TextEncoder", context), "undefinedundefinedundefined");
    // What the Swift side exposes: a message handler that sends with URLSession (here
    // Node's fetch) and answers, and its own timer; hide() is called on didEnterBackground.
    const native = {
      async send(request) {
        const response = await fetch(request.url, { method: "POST", body: request.body, headers: request.headers });
        return { status: response.status, retryAfter: response.headers.get("Retry-After"), ...(response.status === 200 ? await response.json() : {}) };
      },
      setTimer: (fn, ms) => setTimeout(fn, ms).unref(),
      endpoint: server.endpoint,
    };
    context.native = native;
    vm.runInContext(`
      var hideHandlers = [];
      var emitter = TelemetryEmitter.createEmitter({
        endpoint: native.endpoint, apiKey: "tgp_pub_ios", sessionId: "sess_ios_1",
        transport: { send: function (request) { return native.send(request); } },
        lifecycle: { onHide: function (hide) { hideHandlers.push(hide); } },
        setTimer: native.setTimer, flushIntervalMs: 999999,
        base: { surface: "CLIENT_SURFACE_IOS", client_build_id: "ios-1", app_version: "3.1.0" },
      });
      for (var i = 0; i < 4; i++) emitter.emit({ replay: { head_seq: i } });
      var flushed = emitter.flush();
    `, context);
    await until(() => server.requests.length >= 1 && vm.runInContext("emitter.stats().retries", context) >= 1);
    vm.runInContext("hideHandlers.forEach(function (hide) { hide(); })", context); // the app goes to the background
    await vm.runInContext("flushed", context);
    await until(() => server.requests.length >= 2 && !vm.runInContext("emitter.unacknowledged", context));
    assert.equal(server.requests.length, 2);
    assert.deepEqual(server.requests[1].ids, server.requests[0].ids);
    assert.deepEqual([...server.stored.values()], [1, 1, 1, 1]);
    const event = server.requests[1].batch.events[0];
    assert.equal(event.surface, "CLIENT_SURFACE_IOS");
    assert.equal(event.session_id, "sess_ios_1");
  } finally {
    await server.close();
  }
});

test(`the page bundle is under ${GZIP_BOUND} bytes minified and gzipped`, () => {
  const gzipped = gzipSync(readFileSync(BUNDLE), { level: 9 }).length;
  assert.ok(gzipped < GZIP_BOUND, `${gzipped} bytes`);
  assert.deepEqual(JSON.parse(readFileSync(new URL("../dist/size.json", import.meta.url))).gzipped_bytes, gzipped);
});

// Unit tests of the emitter in Node: queue bounds, drop counting, backoff, batch splitting.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  BoundedQueue, Emitter, KEEPALIVE_LIMIT, backoffMs, byteLength, retryable, splitBatches,
  traceparentNew,
} from "../dist/index.js";

const SCHEMA = "openagents.sync.client_telemetry.v1";

test("the queue keeps at most its limit and counts what it drops (oldest first)", () => {
  const queue = new BoundedQueue(3);
  for (let i = 0; i < 5; i++) queue.push(i);
  assert.equal(queue.size, 3);
  assert.equal(queue.dropped, 2);
  assert.deepEqual(queue.drain(), [2, 3, 4]);
});

test("batches are split to stay under 64 KiB, every event kept once and in order", () => {
  const events = Array.from({ length: 300 }, (_, i) => ({ event_id: `e${i}`, topic: "x".repeat(700) }));
  const bodies = splitBatches(SCHEMA, events, 60 * 1024);
  assert.ok(bodies.length > 3);
  for (const body of bodies) assert.ok(byteLength(body) <= 60 * 1024, `${byteLength(body)}`);
  const ids = bodies.flatMap((body) => JSON.parse(body).events.map((e) => e.event_id));
  assert.deepEqual(ids, events.map((e) => e.event_id));
  assert.equal(JSON.parse(bodies[0]).schema, SCHEMA);
  assert.ok(60 * 1024 < KEEPALIVE_LIMIT);
});

test("batches are split by count as well as size", () => {
  const bodies = splitBatches(SCHEMA, Array.from({ length: 25 }, (_, i) => ({ i })), 60000, 10);
  assert.deepEqual(bodies.map((b) => JSON.parse(b).events.length), [10, 10, 5]);
});

test("backoff honours Retry-After, else grows with full jitter up to the cap", () => {
  assert.equal(backoffMs(1, "7", () => 0.5), 7000);
  const low = backoffMs(3, null, () => 0, 500, 30000);
  const high = backoffMs(3, null, () => 0.999, 500, 30000);
  assert.equal(low, 1000);
  assert.ok(high > 1900 && high <= 2000);
  assert.ok(backoffMs(20, null, () => 0.999, 500, 30000) <= 30000);
});

test("400 and 413 are never retried; 429, 503 and network errors are", () => {
  for (const status of [400, 401, 403, 413]) assert.equal(retryable(status), false, `${status}`);
  for (const status of [0, 408, 429, 500, 503]) assert.equal(retryable(status), true, `${status}`);
});

test("traceparent is W3C version 00 with non-zero ids", () => {
  assert.match(traceparentNew(), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
});

function fakeFetch(answers) {
  const calls = [];
  const fn = async (url, init) => {
    calls.push({ url, init });
    const [status, headers = {}] = answers.shift() ?? [200];
    const body = JSON.parse(init.body);
    return {
      status,
      headers: { get: (name) => headers[name] ?? null },
      json: async () => ({ accepted: body.events.length, rejected: 0 }),
    };
  };
  return { fn, calls };
}

function emitter(fetchImpl, extra = {}) {
  const timers = [];
  const e = new Emitter({
    endpoint: "https://platform.test/api/v1/events",
    apiKey: "tgp_abc_secret",
    fetch: fetchImpl,
    // Retry waits run at once; the flush timer (flushIntervalMs) never fires by itself.
    setTimer: (fn, ms) => { timers.push(ms); if (ms < 100000) fn(); },
    random: () => 0.5,
    base: { surface: "CLIENT_SURFACE_WEB" },
    ...extra,
  });
  return { e, timers };
}

test("a 429 is retried after its Retry-After; a 400 is dropped without retry", async () => {
  const { fn, calls } = fakeFetch([[429, { "Retry-After": "2" }], [200]]);
  const { e, timers } = emitter(fn, { flushIntervalMs: 999999 });
  e.emit({ reconnect: { attempt: 1 } });
  await e.flush();
  assert.equal(calls.length, 2);
  assert.ok(timers.includes(2000));
  assert.equal(e.stats().sent, 1);
  assert.equal(e.stats().retries, 1);
  assert.equal(e.waits.size, 0, "a retry wait that ended is forgotten");
  const bad = fakeFetch([[400]]);
  const second = emitter(bad.fn, { flushIntervalMs: 999999 }).e;
  second.emit({ replay: { status: "live" } });
  await second.flush();
  assert.equal(bad.calls.length, 1);
  assert.equal(second.stats().rejected, 1);
});

test("requests carry the key in the query, traceparent and x-request-id, keepalive under 64 KiB", async () => {
  const { fn, calls } = fakeFetch([]);
  const { e } = emitter(fn, { flushIntervalMs: 999999, traceparent: "00-" + "a".repeat(32) + "-" + "b".repeat(16) + "-01" });
  e.emit({ auth_failure: { http_status: 401 } });
  await e.flush();
  const { url, init } = calls[0];
  assert.match(url, /\?api_key=tgp_abc_secret$/);
  assert.equal(init.headers.traceparent, "00-" + "a".repeat(32) + "-" + "b".repeat(16) + "-01");
  assert.match(init.headers["x-request-id"], /^[0-9a-f]{32}$/);
  assert.equal(init.keepalive, true);
  assert.equal(init.credentials, "omit");
  const event = JSON.parse(init.body).events[0];
  assert.equal(event.surface, "CLIENT_SURFACE_WEB");
  assert.match(event.session_id, /^sess_/);
});

test("dropped events are counted and reported as a delivery_error event", async () => {
  const { fn, calls } = fakeFetch([]);
  const { e } = emitter(fn, { maxQueue: 3, maxBatchEvents: 50, flushIntervalMs: 999999 });
  for (let i = 0; i < 5; i++) e.emit({ replay: { head_seq: i } });
  assert.equal(e.stats().dropped, 2);
  await e.flush();
  const events = calls.flatMap((c) => JSON.parse(c.init.body).events);
  const report = events.find((ev) => ev.delivery_error);
  assert.equal(report.delivery_error.reason_code, "queue_full_dropped_oldest");
  assert.equal(report.delivery_error.rolling_error_count_5m, 2);
  assert.deepEqual(events.filter((ev) => ev.replay).map((ev) => ev.replay.head_seq), [2, 3, 4]);
});

test("on page hide the queue goes by beacon in text/plain bodies under 64 KiB; refused ones persist", () => {
  const beacons = [];
  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v), removeItem: (k) => store.delete(k) };
  let accept = true;
  const { e } = emitter(fakeFetch([]).fn, {
    flushIntervalMs: 999999, maxBatchEvents: 1000, maxQueue: 1000, persistKey: "tgp.unsent", storage,
    sendBeacon: (url, blob) => { beacons.push({ url, blob }); const ok = accept; accept = false; return ok; },
  });
  for (let i = 0; i < 200; i++) e.emit({ delivery_error: { channel: "ws", reason_code: "x".repeat(600) } });
  e.flushBeacon();
  assert.ok(beacons.length >= 2);
  for (const { url, blob } of beacons) {
    assert.ok(blob.size <= 60 * 1024);
    assert.equal(blob.type, "text/plain");
    assert.match(url, /api_key=tgp_abc_secret&traceparent=00-/);
  }
  const saved = JSON.parse(store.get("tgp.unsent"));
  assert.ok(saved.length > 0 && saved.length <= 200);
  const { e: next } = emitter(fakeFetch([]).fn, { flushIntervalMs: 999999, persistKey: "tgp.unsent", storage, setTimer: () => 0 });
  assert.equal(next.queue.size, saved.length);
  assert.equal(store.has("tgp.unsent"), false);
});

// Retries are not lost when the page goes away: what is in flight or waiting for a retry
// goes by beacon with the queue, and what was already answered is not sent again.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Emitter, byteLength, chunkEvents } from "../dist/index.js";

const SCHEMA = "openagents.sync.client_telemetry.v1";

/** A transport whose answers the test releases one by one, and a beacon that records. */
function controlled() {
  const sends = [];
  const beacons = [];
  return {
    sends,
    beacons,
    transport: {
      send(request) {
        return new Promise((resolve) => sends.push({ ...request, ids: ids(request.body), answer: resolve }));
      },
      beacon(url, body) {
        beacons.push({ url, body, ids: ids(body) });
        return true;
      },
    },
  };
}

const ids = (body) => JSON.parse(body).events.map((event) => event.event_id);
const tick = () => new Promise((resolve) => setImmediate(resolve));

function emitterWith(transport, extra = {}) {
  const timers = [];
  const e = new Emitter({
    endpoint: "https://platform.test/api/v1/events",
    apiKey: "tgp_pub_secret",
    transport,
    lifecycle: null,
    flushIntervalMs: 999999,
    random: () => 0.5,
    // Timers never fire by themselves: the test calls them.
    setTimer: (fn, ms) => { timers.push({ fn, ms }); return timers.length; },
    ...extra,
  });
  return { e, timers };
}

test("events waiting for a retry (after a 503) go by beacon on hide, and the retry then sends nothing", async () => {
  const { sends, beacons, transport } = controlled();
  const { e, timers } = emitterWith(transport);
  for (let i = 0; i < 3; i++) e.emit({ replay: { head_seq: i } });
  const flushed = e.flush();
  await tick();
  const [first] = sends;
  first.answer({ status: 503, retryAfter: "30" });
  await tick();
  assert.equal(e.unacknowledged, 3);
  assert.ok(timers.some((t) => t.ms === 30000), "the retry waits for Retry-After");
  e.emit({ replay: { head_seq: 3 } }); // queued meanwhile
  e.hide();
  const beaconed = beacons.flatMap((b) => b.ids);
  assert.deepEqual(beaconed.slice(0, 3), first.ids, "the 503'd batch first, unchanged");
  assert.equal(beaconed.length, 4, "then what was queued");
  assert.equal(new Set(beaconed).size, 4);
  assert.match(beacons[0].url, /api_key=tgp_pub_secret&traceparent=00-/);
  await flushed; // the hide ended the retry wait: the retry finds nothing of its own
  for (const t of timers.filter((t) => t.ms === 30000)) t.fn();
  await tick();
  assert.equal(sends.length, 1, "nothing is sent again after the beacon");
  assert.equal(e.waits.size, 0, "no retry wait is left behind");
  assert.equal(e.unacknowledged, 0);
  assert.equal(e.stats().beacons, 1);
});

test("events whose fetch was answered 200 are not in the beacon; unanswered ones are, and are not retried", async () => {
  const { sends, beacons, transport } = controlled();
  const { e } = emitterWith(transport, { maxBatchEvents: 2 });
  for (let i = 0; i < 2; i++) e.emit({ replay: { head_seq: i } }); // a full batch: sent at once
  await tick();
  for (let i = 2; i < 4; i++) e.emit({ replay: { head_seq: i } });
  await tick();
  assert.equal(sends.length, 2);
  sends[0].answer({ status: 200, accepted: 2, rejected: 0 });
  await tick();
  e.emit({ replay: { head_seq: 4 } });
  e.hide(); // the second batch is still in flight
  const beaconed = beacons.flatMap((b) => b.ids);
  assert.deepEqual(beaconed.slice(0, 2), sends[1].ids, "the in-flight batch goes again by beacon");
  assert.equal(beaconed.length, 3);
  for (const id of sends[0].ids) assert.ok(!beaconed.includes(id), "an answered event is not resent");
  sends[1].answer({ status: 503, retryAfter: "1" }); // the in-flight fetch fails after the hide
  await tick();
  await tick();
  assert.equal(sends.length, 2, "no retry of what the beacon took over");
  assert.equal(e.stats().sent, 2);
});

test("a page that stays (visibilitychange back to visible) keeps working after a hide", async () => {
  const { sends, beacons, transport } = controlled();
  const { e } = emitterWith(transport);
  e.emit({ replay: { head_seq: 1 } });
  e.hide();
  assert.equal(beacons.length, 1);
  e.emit({ replay: { head_seq: 2 } });
  const flushed = e.flush();
  await tick();
  sends[0].answer({ status: 200, accepted: 1 });
  await flushed;
  assert.equal(sends[0].ids.length, 1);
  assert.ok(!beacons[0].ids.includes(sends[0].ids[0]));
});

test("on hide, pending and queued events are split into beacon bodies under 64 KiB", async () => {
  const { sends, beacons, transport } = controlled();
  const { e } = emitterWith(transport, { maxBatchEvents: 100, maxQueue: 1000 });
  for (let i = 0; i < 100; i++) e.emit({ delivery_error: { channel: "ws", reason_code: "x".repeat(900) } });
  await tick(); // a full batch of ~90 KiB goes as two fetches of at most 60 KiB
  assert.equal(sends.length, 2);
  assert.equal(sends[0].keepalive, true);
  assert.equal(sends[1].keepalive, false, "keepalive only while the in-flight total fits 64 KiB");
  for (let i = 0; i < 50; i++) e.emit({ delivery_error: { channel: "ws", reason_code: "y".repeat(900) } });
  e.hide();
  assert.ok(beacons.length >= 3);
  for (const b of beacons) assert.ok(byteLength(b.body) <= 60 * 1024, `${byteLength(b.body)}`);
  const beaconed = beacons.flatMap((b) => b.ids);
  assert.equal(beaconed.length, 150);
  assert.equal(new Set(beaconed).size, 150);
});

test("a refused beacon keeps its events queued and persisted for the next load", async () => {
  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v), removeItem: (k) => store.delete(k) };
  const { sends, transport } = controlled();
  transport.beacon = () => false;
  const { e } = emitterWith(transport, { persistKey: "tgp.unsent", storage });
  e.emit({ replay: { head_seq: 7 } });
  const flushed = e.flush();
  await tick();
  sends[0].answer({ status: 0 }); // network error: waiting for a retry, persisted
  await tick();
  assert.equal(JSON.parse(store.get("tgp.unsent")).length, 1);
  e.hide();
  await flushed;
  assert.equal(e.queue.size, 1);
  const saved = JSON.parse(store.get("tgp.unsent"));
  assert.deepEqual(saved.map((ev) => ev.event_id), sends[0].ids);
  const next = emitterWith(controlled().transport, { persistKey: "tgp.unsent", storage }).e;
  assert.deepEqual(next.queue.peek().map((ev) => ev.event_id), sends[0].ids, "the same event, unchanged");
});

test("byteLength counts UTF-8 without TextEncoder; chunks respect it", () => {
  const text = JSON.stringify({ a: "é€😀x" });
  assert.equal(byteLength(text), new TextEncoder().encode(text).length);
  const events = Array.from({ length: 40 }, (_, i) => ({ event_id: `${i}`, t: "😀".repeat(300) }));
  for (const chunk of chunkEvents(SCHEMA, events, 8000)) {
    assert.ok(new TextEncoder().encode(JSON.stringify({ schema: SCHEMA, events: chunk })).length <= 8000);
  }
});

// One emitter for the web, desktop and mobile shells: typed events of the client telemetry
// contract, a bounded queue (drop-oldest, counted and reported), batches by size and time,
// retries with jittered backoff honouring Retry-After (never for 400/413), fetch keepalive
// under the 64 KiB quota, sendBeacon on pagehide/visibilitychange (what is in flight or
// waiting for a retry included), optional persistence. What differs between a browser, a
// desktop shell (Electron, Tauri) and an iOS shell (WKWebView, JavaScriptCore) is three
// small adapters: the transport, the storage and the lifecycle (when the app goes away).

export type ClientSurface =
  | "CLIENT_SURFACE_UNSPECIFIED"
  | "CLIENT_SURFACE_WEB"
  | "CLIENT_SURFACE_DESKTOP"
  | "CLIENT_SURFACE_IOS"
  | "CLIENT_SURFACE_ONYX";

export interface ClientReconnect { attempt?: number; backoff_ms?: number; resumed?: boolean; last_applied_seq?: number; reason_code?: string }
export interface ClientAuthFailure { http_status?: number; reason_code?: string; refresh_attempted?: boolean }
export interface ClientReplay { status?: string; requested_after_seq?: number; oldest_available_seq?: number; head_seq?: number; catchup_duration_ms?: number }
export interface ClientDeliveryError { channel?: string; reason_code?: string; rolling_error_count_5m?: number }

/** openagents.sync.v1.ClientTelemetryEvent in the proto3 JSON mapping: one oneof member. */
export interface ClientTelemetryEvent {
  schema_version?: string;
  event_id?: string;
  occurred_at_unix_ms?: number;
  surface?: ClientSurface;
  client_build_id?: string;
  app_version?: string;
  protocol_version?: string;
  topic?: string;
  topic_class?: string;
  actor_scope_hash?: string;
  session_id?: string;
  reconnect?: ClientReconnect;
  auth_failure?: ClientAuthFailure;
  replay?: ClientReplay;
  delivery_error?: ClientDeliveryError;
}

export const CLIENT_TELEMETRY_SCHEMA = "openagents.sync.client_telemetry.v1";
/** Browsers refuse keepalive/beacon bodies beyond 64 KiB in flight; keep a margin. */
export const KEEPALIVE_LIMIT = 64 * 1024;
const BATCH_BYTES = 60 * 1024;

/** One batch to send: the body is the JSON batch, sent as text/plain (no preflight needed). */
export interface TransportRequest { url: string; body: string; headers: Record<string, string>; keepalive: boolean }
/** The platform's answer: status 0 for a network error; counts from a 200's body. */
export interface TransportAnswer { status: number; retryAfter?: string | null; accepted?: number; rejected?: number }

/** How batches reach the platform. ``beacon`` hands a body over when the app is going away
 * (no answer; false when refused); without it the emitter sends with ``send`` instead. */
export interface Transport {
  send(request: TransportRequest): Promise<TransportAnswer>;
  beacon?(url: string, body: string): boolean;
}

/** Synchronous key/value storage for unsent events (localStorage, or a shell's own). */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** When the app is going away: call ``hide`` then (pagehide, before-quit, a native message). */
export interface Lifecycle { onHide(hide: () => void): void }

export interface EmitterOptions {
  endpoint: string; // https://platform/api/v1/events
  apiKey: string; // a publishable key
  schema?: string;
  base?: Partial<ClientTelemetryEvent>; // fields every event gets (surface, build, version)
  maxQueue?: number;
  maxBatchEvents?: number;
  maxBatchBytes?: number;
  flushIntervalMs?: number;
  maxRetries?: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  persistKey?: string; // storage key for unsent events across reloads; unset: off
  persistMax?: number;
  traceparent?: string; // propagate the page's trace; otherwise one is generated
  sessionId?: string; // otherwise sessionStorage's (browser) or a new one
  transport?: Transport; // default: fetchTransport(fetch, sendBeacon)
  storage?: KeyValueStorage | null; // default: localStorage when persistKey is set
  lifecycle?: Lifecycle | null; // default: browserLifecycle(); null: the shell calls hide()
  fetch?: typeof fetch; // for the default transport
  sendBeacon?: ((url: string, body: Blob) => boolean) | null; // for the default transport
  random?: () => number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown; // JavaScriptCore has no setTimeout
}

export interface EmitterStats { queued: number; sent: number; dropped: number; rejected: number; retries: number; beacons: number }

type Event = ClientTelemetryEvent & { event_id: string };

/** A FIFO of at most ``limit`` items; pushing onto a full one drops the oldest (counted). */
export class BoundedQueue<T> {
  private items: T[] = [];
  dropped = 0;
  constructor(readonly limit: number) {}
  push(item: T): void { this.unshiftAll([], item); }
  /** Put ``items`` back in front (they are older than what is queued), keeping the bound. */
  unshiftAll(items: T[], last?: T): void {
    this.items = items.concat(this.items);
    if (last !== undefined) this.items.push(last);
    while (this.items.length > this.limit) {
      this.items.shift();
      this.dropped++;
    }
  }
  take(count: number): T[] { return this.items.splice(0, count); }
  drain(): T[] { return this.items.splice(0); }
  peek(): T[] { return this.items.slice(); }
  get size(): number { return this.items.length; }
}

/** UTF-8 length of ``text`` (no TextEncoder: JavaScriptCore has none). JSON.stringify never
 * leaves a lone surrogate, so a high surrogate always starts a 4-byte pair. */
export function byteLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xdc00 ? (i++, 4) : 3;
  }
  return n;
}

/** The batch body for ``events`` (bare bodies of ``schema``). */
export function batchBody(schema: string, events: object[]): string {
  return JSON.stringify({ schema, events });
}

/** ``events`` in groups whose batch bodies are at most ``maxBytes`` (one oversized event alone). */
export function chunkEvents<T extends object>(schema: string, events: T[], maxBytes: number, maxEvents = 1000): T[][] {
  const chunks: T[][] = [];
  const overhead = byteLength(batchBody(schema, []));
  let current: T[] = [];
  let size = overhead;
  for (const event of events) {
    const cost = byteLength(JSON.stringify(event)) + 1;
    if (current.length && (size + cost > maxBytes + 1 || current.length >= maxEvents)) {
      chunks.push(current);
      current = [];
      size = overhead;
    }
    current.push(event);
    size += cost;
  }
  if (current.length) chunks.push(current);
  return chunks;
}

/** Split ``events`` into batch bodies of at most ``maxBytes`` each (one oversized event alone). */
export function splitBatches(schema: string, events: object[], maxBytes: number, maxEvents = 1000): string[] {
  return chunkEvents(schema, events, maxBytes, maxEvents).map((chunk) => batchBody(schema, chunk));
}

/** Milliseconds before retry ``attempt`` (1-based): Retry-After when given, else full jitter. */
export function backoffMs(attempt: number, retryAfter: string | null | undefined, random: () => number, base = 500, cap = 30000): number {
  if (retryAfter) {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, cap * 4);
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return Math.max(0, Math.min(date - Date.now(), cap * 4));
  }
  const ceiling = Math.min(cap, base * 2 ** (attempt - 1));
  return Math.floor(ceiling / 2 + random() * (ceiling / 2));
}

/** Whether a status means "send the batch again later". 400/413 never: the same batch fails. */
export function retryable(status: number): boolean {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

const hex = (bytes: number, random: () => number): string => {
  let out = "";
  for (let i = 0; i < bytes; i++) out += Math.floor(random() * 256).toString(16).padStart(2, "0");
  return out;
};

/** A W3C traceparent (version 00, sampled) with fresh ids. */
export function traceparentNew(random: () => number = Math.random): string {
  return `00-${hex(16, random)}-${hex(8, random)}-01`;
}

/** A device or user id as the platform wants it kept: "sha256:" + hex of its SHA-256. */
export async function hashedId(raw: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(raw));
  return "sha256:" + Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

const g = globalThis as any;

/** The browser transport (also Electron/Tauri renderers, WKWebView, Node 18+): ``fetch``
 * with keepalive and credentials omitted; ``sendBeacon`` (text/plain) when there is one. */
export function fetchTransport(
  fetchImpl: typeof fetch = (...args) => g.fetch(...args),
  sendBeacon: ((url: string, body: Blob) => boolean) | null = g.navigator?.sendBeacon ? (u, b) => g.navigator.sendBeacon(u, b) : null,
): Transport {
  return {
    async send({ url, body, headers, keepalive }) {
      try {
        const response = await fetchImpl(url, { method: "POST", body, keepalive, credentials: "omit", headers });
        const answer = response.status === 200 ? await response.json().catch(() => ({})) : {};
        return { status: response.status, retryAfter: response.headers.get("Retry-After"), ...answer };
      } catch {
        return { status: 0 }; // network error, CORS refusal, page teardown
      }
    },
    beacon: sendBeacon ? (url, body) => sendBeacon(url, new Blob([body], { type: "text/plain" })) : undefined,
  };
}

/** The page is going away: ``pagehide``, or ``visibilitychange`` to hidden (mobile browsers
 * often kill a hidden tab without a pagehide). */
export function browserLifecycle(): Lifecycle {
  return {
    onHide(hide) {
      g.addEventListener?.("pagehide", hide);
      g.document?.addEventListener?.("visibilitychange", () => {
        if (g.document.visibilityState === "hidden") hide();
      });
    },
  };
}

/** localStorage when the page may use it (it throws in some private modes), else null. */
export function browserStorage(): KeyValueStorage | null {
  try {
    return g.localStorage ?? null;
  } catch {
    return null;
  }
}

export class Emitter {
  readonly queue: BoundedQueue<Event>;
  readonly sessionId: string;
  readonly traceparent: string;
  private stats_: EmitterStats = { queued: 0, sent: 0, dropped: 0, rejected: 0, retries: 0, beacons: 0 };
  private reportedDrops = 0;
  private timer: unknown = null;
  private inFlight = 0;
  private counter = 0;
  private owner = 0;
  // Events sent and not yet answered, or waiting for a retry, by event id: the batch that
  // owns each. A hide or close takes them over, and the earlier batch then leaves them be.
  private readonly pending = new Map<string, [Event, number]>();
  private readonly waits = new Set<() => void>();
  private readonly transport: Transport;
  private readonly storage: KeyValueStorage | null;
  private readonly o: Required<Pick<EmitterOptions, "schema" | "base" | "maxQueue" | "maxBatchEvents" | "maxBatchBytes" | "flushIntervalMs" | "maxRetries" | "baseBackoffMs" | "maxBackoffMs" | "persistMax" | "random" | "now" | "setTimer">> & EmitterOptions;

  constructor(options: EmitterOptions) {
    this.o = {
      schema: CLIENT_TELEMETRY_SCHEMA,
      base: {},
      maxQueue: 1000,
      maxBatchEvents: 100,
      maxBatchBytes: BATCH_BYTES,
      flushIntervalMs: 2000,
      maxRetries: 5,
      baseBackoffMs: 500,
      maxBackoffMs: 30000,
      persistMax: 200,
      random: Math.random,
      now: Date.now,
      setTimer: (fn: () => void, ms: number) => {
        const timer = g.setTimeout(fn, ms);
        timer?.unref?.(); // Node: a pending retry does not keep a quitting process alive
        return timer;
      },
      ...options,
    };
    this.transport = options.transport ?? fetchTransport(options.fetch, options.sendBeacon);
    this.storage = options.persistKey ? (options.storage === undefined ? browserStorage() : options.storage) : null;
    this.queue = new BoundedQueue(this.o.maxQueue);
    this.traceparent = options.traceparent || traceparentNew(this.o.random);
    this.sessionId = options.sessionId || this.sessionLoad();
    this.restore();
    (options.lifecycle === undefined ? browserLifecycle() : options.lifecycle)?.onHide(() => this.hide());
  }

  /** Queue one event; the batch goes when it is full or after flushIntervalMs. */
  emit(event: ClientTelemetryEvent): void {
    const full = {
      schema_version: this.o.schema,
      occurred_at_unix_ms: this.o.now(),
      session_id: this.sessionId,
      ...this.o.base,
      ...event,
    } as Event;
    full.event_id ||= `evt_${this.sessionId}_${(this.counter++).toString(36)}_${hex(4, this.o.random)}`;
    this.queue.push(full);
    this.stats_.queued++;
    if (this.queue.size >= this.o.maxBatchEvents) void this.flush();
    else this.schedule(this.o.flushIntervalMs);
  }

  stats(): EmitterStats {
    return { ...this.stats_, dropped: this.queue.dropped };
  }

  /** How many events are sent and unanswered or waiting for a retry. */
  get unacknowledged(): number {
    return this.pending.size;
  }

  /** Send what is queued (keepalive when it fits); retried on 429/5xx/network. */
  async flush(): Promise<void> {
    const events = [...this.dropReport(), ...this.queue.take(this.o.maxBatchEvents)];
    if (!events.length) return;
    await this.sendAll(events, false);
    if (this.queue.size) this.schedule(0);
  }

  /** The app is going away (pagehide, a shell's quit or background message). Everything not
   * yet acknowledged (queued, in flight, waiting for a retry) goes by beacon in bodies under
   * 64 KiB; what the transport refuses stays queued and persisted for the next start. An
   * event whose fetch was already answered is not pending any more, so it is not sent twice;
   * one still in flight may arrive twice, and the platform stores it once (same source,
   * event id and occurred-at). Without a beacon, this is ``close()`` not awaited. */
  hide(): void {
    const beacon = this.transport.beacon;
    if (!beacon) {
      this.save(); // if the shell is killed before close() is answered, the next start resends
      void this.close();
      return;
    }
    const events = this.takeOver();
    const refused: Event[] = [];
    for (const chunk of chunkEvents(this.o.schema, events, this.o.maxBatchBytes, this.o.maxBatchEvents)) {
      if (beacon(this.url(true), batchBody(this.o.schema, chunk))) this.stats_.beacons++;
      else refused.push(...chunk);
    }
    this.queue.unshiftAll(refused);
    this.save();
  }

  /** Kept for pages written against 0.1: the same as ``hide()``. */
  flushBeacon(): void {
    this.hide();
  }

  /** Send everything not yet acknowledged now, one attempt each, and resolve when answered:
   * for a desktop shell's quit (``await emitter.close()`` before the app exits). What fails
   * with a retryable status stays queued and persisted for the next start. */
  async close(): Promise<void> {
    await this.sendAll(this.takeOver(), true);
  }

  /** The drop report, the pending events and the queue, in that order, owned by nobody:
   * every earlier batch leaves them be; its retry waits end now. */
  private takeOver(): Event[] {
    const events = [...this.dropReport(), ...[...this.pending.values()].map(([event]) => event), ...this.queue.drain()];
    this.pending.clear();
    this.waits.forEach((wake) => wake());
    return events;
  }

  private async sendAll(events: Event[], closing: boolean): Promise<void> {
    const owner = ++this.owner;
    for (const event of events) this.pending.set(event.event_id, [event, owner]);
    const chunks = chunkEvents(this.o.schema, events, this.o.maxBatchBytes, this.o.maxBatchEvents);
    await Promise.all(chunks.map((chunk) => this.deliver(chunk, owner, 1, closing)));
  }

  private url(beacon: boolean): string {
    let url = `${this.o.endpoint}?api_key=${encodeURIComponent(this.o.apiKey)}`;
    if (beacon) url += `&traceparent=${this.traceparent}`; // a beacon cannot set headers
    return url;
  }

  /** Send the events of ``chunk`` still owned by ``owner``; retry while allowed. */
  private async deliver(chunk: Event[], owner: number, attempt: number, closing: boolean): Promise<void> {
    const live = chunk.filter((event) => this.pending.get(event.event_id)?.[1] === owner);
    if (!live.length) return; // taken over by a hide or close meanwhile
    const body = batchBody(this.o.schema, live);
    const size = byteLength(body);
    this.inFlight += size;
    const answer = await this.transport.send({
      url: this.url(false),
      body,
      keepalive: this.inFlight <= KEEPALIVE_LIMIT,
      headers: { "Content-Type": "text/plain", traceparent: this.traceparent, "x-request-id": hex(16, this.o.random) },
    });
    this.inFlight -= size;
    const mine = live.filter((event) => this.pending.get(event.event_id)?.[1] === owner);
    const { status } = answer;
    if (status === 200) {
      this.stats_.sent += answer.accepted ?? 0;
      this.stats_.rejected += answer.rejected ?? 0;
    } else if (retryable(status) && mine.length && (closing || attempt <= this.o.maxRetries)) {
      if (closing) {
        this.release(mine);
        this.queue.unshiftAll(mine);
        this.save();
        return;
      }
      this.stats_.retries++;
      this.save(); // a page killed during the wait keeps them for its next load
      const wait = backoffMs(attempt, answer.retryAfter, this.o.random, this.o.baseBackoffMs, this.o.maxBackoffMs);
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waits.delete(wake);
          resolve();
        };
        this.waits.add(wake);
        this.o.setTimer(wake, wait);
      });
      return this.deliver(mine, owner, attempt + 1, closing);
    } else {
      this.stats_.rejected += mine.length;
    }
    this.release(mine);
    this.save();
  }

  private release(events: Event[]): void {
    for (const event of events) this.pending.delete(event.event_id);
  }

  private schedule(ms: number): void {
    if (this.timer !== null) return;
    this.timer = this.o.setTimer(() => {
      this.timer = null;
      void this.flush();
    }, ms);
  }

  /** The drops since the last report, as one delivery_error event of the contract (or none);
   * it travels ahead of the batch, outside the queue, so it displaces no event. */
  private dropReport(): Event[] {
    const dropped = this.queue.dropped - this.reportedDrops;
    if (dropped <= 0) return [];
    this.reportedDrops = this.queue.dropped;
    return [{
      schema_version: this.o.schema,
      event_id: `evt_${this.sessionId}_drop_${this.reportedDrops}`,
      occurred_at_unix_ms: this.o.now(),
      session_id: this.sessionId,
      ...this.o.base,
      delivery_error: { channel: "telemetry_queue", reason_code: "queue_full_dropped_oldest", rolling_error_count_5m: dropped },
    }];
  }

  private sessionLoad(): string {
    const created = `sess_${hex(12, this.o.random)}`;
    try {
      const existing = g.sessionStorage?.getItem("tgp.session_id");
      if (existing) return existing;
      g.sessionStorage?.setItem("tgp.session_id", created);
    } catch {
      // no sessionStorage (a shell, a sandboxed frame): a session per emitter
    }
    return created;
  }

  /** Persist what is not acknowledged (pending, then queued; the newest persistMax). */
  private save(): void {
    const storage = this.storage;
    if (!storage) return;
    const events = [...[...this.pending.values()].map(([event]) => event), ...this.queue.peek()];
    try {
      if (!events.length) storage.removeItem(this.o.persistKey!);
      else storage.setItem(this.o.persistKey!, JSON.stringify(events.slice(-this.o.persistMax)));
    } catch {
      // storage full or disabled: the events are lost, as without persistence
    }
  }

  private restore(): void {
    const storage = this.storage;
    if (!storage) return;
    try {
      const saved = JSON.parse(storage.getItem(this.o.persistKey!) || "[]");
      storage.removeItem(this.o.persistKey!);
      if (Array.isArray(saved) && saved.length) {
        this.queue.unshiftAll(saved.slice(-this.o.persistMax));
        this.schedule(0);
      }
    } catch {
      storage.removeItem(this.o.persistKey!);
    }
  }
}

/** ``new Emitter(options)``: the name the shells' examples use. */
export function createEmitter(options: EmitterOptions): Emitter {
  return new Emitter(options);
}

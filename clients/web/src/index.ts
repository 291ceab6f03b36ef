// One emitter for the web, desktop and mobile shells: typed events of the client telemetry
// contract, a bounded queue (drop-oldest, counted and reported), batches by size and time,
// retries with jittered backoff honouring Retry-After (never for 400/413), fetch keepalive
// under the 64 KiB quota, sendBeacon on pagehide/visibilitychange, optional persistence.

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
  persistKey?: string; // localStorage key for unsent events across reloads; unset: off
  persistMax?: number;
  traceparent?: string; // propagate the page's trace; otherwise one is generated
  fetch?: typeof fetch;
  sendBeacon?: (url: string, body: Blob) => boolean;
  storage?: Pick<Storage, "getItem" | "setItem" | "removeItem">;
  random?: () => number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
}

export interface EmitterStats { queued: number; sent: number; dropped: number; rejected: number; retries: number; beacons: number }

/** A FIFO of at most ``limit`` items; pushing onto a full one drops the oldest (counted). */
export class BoundedQueue<T> {
  private items: T[] = [];
  dropped = 0;
  constructor(readonly limit: number) {}
  push(item: T): void {
    this.items.push(item);
    while (this.items.length > this.limit) {
      this.items.shift();
      this.dropped++;
    }
  }
  unshiftAll(items: T[]): void {
    this.items = items.concat(this.items);
    while (this.items.length > this.limit) {
      this.items.shift();
      this.dropped++;
    }
  }
  take(count: number): T[] { return this.items.splice(0, count); }
  drain(): T[] { return this.items.splice(0); }
  get size(): number { return this.items.length; }
}

const encoder = new TextEncoder();
export const byteLength = (text: string): number => encoder.encode(text).length;

/** The batch body for ``events`` (bare bodies of ``schema``). */
export function batchBody(schema: string, events: object[]): string {
  return JSON.stringify({ schema, events });
}

/** Split ``events`` into bodies of at most ``maxBytes`` each (one oversized event alone). */
export function splitBatches(schema: string, events: object[], maxBytes: number, maxEvents = 1000): string[] {
  const bodies: string[] = [];
  const overhead = byteLength(batchBody(schema, []));
  let current: string[] = [];
  let size = overhead;
  for (const event of events) {
    const json = JSON.stringify(event);
    const cost = byteLength(json) + (current.length ? 1 : 0);
    if (current.length && (size + cost > maxBytes || current.length >= maxEvents)) {
      bodies.push(`{"schema":${JSON.stringify(schema)},"events":[${current.join(",")}]}`);
      current = [];
      size = overhead;
    }
    current.push(json);
    size += byteLength(json) + (current.length > 1 ? 1 : 0);
  }
  if (current.length) bodies.push(`{"schema":${JSON.stringify(schema)},"events":[${current.join(",")}]}`);
  return bodies;
}

/** Milliseconds before retry ``attempt`` (1-based): Retry-After when given, else full jitter. */
export function backoffMs(attempt: number, retryAfter: string | null, random: () => number, base = 500, cap = 30000): number {
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
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(raw));
  return "sha256:" + Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Emitter {
  readonly queue: BoundedQueue<ClientTelemetryEvent>;
  readonly sessionId: string;
  readonly traceparent: string;
  private stats_: EmitterStats = { queued: 0, sent: 0, dropped: 0, rejected: 0, retries: 0, beacons: 0 };
  private reportedDrops = 0;
  private timer: unknown = null;
  private inFlight = 0;
  private counter = 0;
  private readonly o: Required<Omit<EmitterOptions, "persistKey" | "traceparent" | "storage" | "sendBeacon">> & EmitterOptions;

  constructor(options: EmitterOptions) {
    const g = globalThis as any;
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
      fetch: (...args: Parameters<typeof fetch>) => g.fetch(...args),
      random: Math.random,
      now: Date.now,
      setTimer: (fn: () => void, ms: number) => setTimeout(fn, ms),
      sendBeacon: g.navigator?.sendBeacon ? (u: string, b: Blob) => g.navigator.sendBeacon(u, b) : undefined,
      storage: options.persistKey ? g.localStorage : undefined,
      ...options,
    } as any;
    this.queue = new BoundedQueue(this.o.maxQueue);
    this.traceparent = options.traceparent || traceparentNew(this.o.random);
    this.sessionId = this.sessionLoad();
    this.restore();
    if (g.addEventListener) {
      g.addEventListener("pagehide", () => this.flushBeacon());
      g.document?.addEventListener?.("visibilitychange", () => {
        if (g.document.visibilityState === "hidden") this.flushBeacon();
      });
    }
  }

  /** Queue one event; the batch goes when it is full or after flushIntervalMs. */
  emit(event: ClientTelemetryEvent): void {
    const full: ClientTelemetryEvent = {
      schema_version: this.o.schema,
      event_id: `evt_${this.sessionId}_${(this.counter++).toString(36)}_${hex(4, this.o.random)}`,
      occurred_at_unix_ms: this.o.now(),
      session_id: this.sessionId,
      ...this.o.base,
      ...event,
    };
    this.queue.push(full);
    this.stats_.queued++;
    if (this.queue.size >= this.o.maxBatchEvents) void this.flush();
    else this.schedule(this.o.flushIntervalMs);
  }

  stats(): EmitterStats {
    return { ...this.stats_, dropped: this.queue.dropped };
  }

  /** Send what is queued with fetch (keepalive when it fits); retried on 429/5xx/network. */
  async flush(): Promise<void> {
    const events = [...this.dropReport(), ...this.queue.take(this.o.maxBatchEvents)];
    if (!events.length) return;
    for (const body of splitBatches(this.o.schema, events, this.o.maxBatchBytes, this.o.maxBatchEvents)) {
      await this.send(body, 1);
    }
    if (this.queue.size) this.schedule(0);
  }

  /** Page is going away: everything queued goes by sendBeacon in bodies under 64 KiB;
   * what the browser refuses is kept in storage for the next page. */
  flushBeacon(): void {
    const events = [...this.dropReport(), ...this.queue.drain()];
    if (!events.length) return;
    const beacon = this.o.sendBeacon;
    const unsent: object[] = [];
    for (const body of splitBatches(this.o.schema, events, this.o.maxBatchBytes, this.o.maxBatchEvents)) {
      const ok = beacon ? beacon(this.url(true), new Blob([body], { type: "text/plain" })) : false;
      if (ok) this.stats_.beacons++;
      else unsent.push(...JSON.parse(body).events);
    }
    this.persist(unsent);
  }

  private url(beacon: boolean): string {
    const params = new URLSearchParams({ api_key: this.o.apiKey });
    if (beacon) params.set("traceparent", this.traceparent); // a beacon cannot set headers
    return `${this.o.endpoint}?${params}`;
  }

  private async send(body: string, attempt: number): Promise<void> {
    const size = byteLength(body);
    let status = 0;
    let retryAfter: string | null = null;
    this.inFlight += size;
    try {
      const response = await this.o.fetch(this.url(false), {
        method: "POST",
        body,
        keepalive: this.inFlight <= KEEPALIVE_LIMIT,
        credentials: "omit",
        headers: {
          "Content-Type": "text/plain",
          traceparent: this.traceparent,
          "x-request-id": hex(16, this.o.random),
        },
      });
      status = response.status;
      retryAfter = response.headers.get("Retry-After");
      if (status === 200) {
        const answer = await response.json().catch(() => ({}));
        this.stats_.sent += answer.accepted ?? 0;
        this.stats_.rejected += answer.rejected ?? 0;
        return;
      }
    } catch {
      status = 0; // network error, CORS refusal, page teardown
    } finally {
      this.inFlight -= size;
    }
    if (!retryable(status) || attempt > this.o.maxRetries) {
      this.stats_.rejected += JSON.parse(body).events.length;
      return;
    }
    this.stats_.retries++;
    const wait = backoffMs(attempt, retryAfter, this.o.random, this.o.baseBackoffMs, this.o.maxBackoffMs);
    // Until the retry goes, the events are persisted: a page closed meanwhile keeps them.
    const events = JSON.parse(body).events;
    this.persist(events);
    await new Promise<void>((resolve) => this.o.setTimer(resolve, wait));
    this.persist([]);
    await this.send(body, attempt + 1);
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
  private dropReport(): ClientTelemetryEvent[] {
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
    const g = globalThis as any;
    try {
      const existing = g.sessionStorage?.getItem("tgp.session_id");
      if (existing) return existing;
      const created = `sess_${hex(12, this.o.random)}`;
      g.sessionStorage?.setItem("tgp.session_id", created);
      return created;
    } catch {
      return `sess_${hex(12, this.o.random)}`;
    }
  }

  private persist(events: object[]): void {
    const storage = this.o.storage;
    if (!this.o.persistKey || !storage) return;
    try {
      if (!events.length) storage.removeItem(this.o.persistKey);
      else storage.setItem(this.o.persistKey, JSON.stringify(events.slice(-this.o.persistMax)));
    } catch {
      // storage full or disabled: the events are lost, as without persistence
    }
  }

  private restore(): void {
    const storage = this.o.storage;
    if (!this.o.persistKey || !storage) return;
    try {
      const saved = JSON.parse(storage.getItem(this.o.persistKey) || "[]");
      storage.removeItem(this.o.persistKey);
      if (Array.isArray(saved) && saved.length) {
        this.queue.unshiftAll(saved.slice(-this.o.persistMax));
        this.schedule(0);
      }
    } catch {
      storage.removeItem(this.o.persistKey);
    }
  }
}

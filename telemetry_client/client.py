"""``TelemetryClient``: a bounded in-memory queue drained by one background sender thread.

``emit()`` encodes the event in the caller's thread (so a bad event fails right
there, not later inside a batch) and appends it to the queue; it never touches the
network. The sender thread takes batches off the front of the queue when one is
full (by events or bytes), when the oldest queued event has waited
``flush_interval`` seconds, or when ``flush()``/``close()`` asks, and posts them to
``POST /api/v1/events`` with retries.
"""

from __future__ import annotations

import atexit
import email.utils
import gzip
import json
import logging
import random
import threading
import time
import uuid
import weakref
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from ._batch import encode_event_batch, item_size
from ._version import __version__
from .envelope import rfc3339
from .transport import HttpResponse, HttpTransport, TransportError

logger = logging.getLogger("telemetry_client")

ENCODINGS = ("json", "protobuf")
CONTENT_TYPES = {"json": "application/json", "protobuf": "application/x-protobuf"}
# Below this a gzip header and CPU time cost more than the bytes they save.
GZIP_THRESHOLD_BYTES = 1024
# 408/429/5xx say "not now"; every other non-200 answer (400 malformed, 401/403 key
# problems, 413 too large, 404 wrong endpoint) would fail the same way again.
RETRYABLE_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
# Bytes of ``{"events":[`` + ``]}`` around the JSON items.
_JSON_BATCH_OVERHEAD = 13
# Queue-full warnings are rate limited: a saturated client would otherwise log per event.
_DROP_WARNING_INTERVAL = 60.0

RejectedCallback = Callable[[int, str, str, str, str], None]


@dataclass(frozen=True)
class FlushResult:
    """What ``flush()`` achieved.

    ``completed`` is True when every event queued at the call was resolved (delivered,
    rejected, failed or dropped) before the timeout; ``pending`` counts those still
    queued or in flight otherwise. The counts are what the client resolved while the
    call ran (they include events emitted concurrently that went out meanwhile).
    """

    completed: bool
    pending: int
    sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class _Item:
    seq: int
    schema: str
    payload: bytes  # JSON: the encoded {"schema", "event"} item; protobuf: the event's bytes
    size: int  # bytes the item adds to a request body
    enqueued_at: float  # time.monotonic()


class TelemetryClient:
    """Batches events and sends them to the platform's ingest API from a background thread.

    See the package docstring for the parameters and policies. Thread-safe: any
    thread may ``emit()``, ``flush()`` or read ``stats``.
    """

    def __init__(
        self,
        endpoint: str,
        api_key: str,
        *,
        encoding: str = "json",
        max_batch_events: int = 500,
        max_batch_bytes: int = 1_000_000,
        flush_interval: float = 2.0,
        max_queue: int = 10_000,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 10.0,
        gzip: bool = True,
        schema_message_classes: Mapping[str, type[Message]] | None = None,
        on_rejected: RejectedCallback | None = None,
        atexit_timeout: float = 5.0,
        transport: Any = None,
    ) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}")
        if not api_key:
            raise ValueError("api_key is required")
        for name, value in (
            ("max_batch_events", max_batch_events),
            ("max_batch_bytes", max_batch_bytes),
            ("max_queue", max_queue),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1")
        if max_retries < 0 or backoff_base < 0 or backoff_max < 0:
            raise ValueError("max_retries, backoff_base and backoff_max must not be negative")
        if flush_interval <= 0 or timeout <= 0:
            raise ValueError("flush_interval and timeout must be positive")
        self.encoding = encoding
        self.max_batch_events = max_batch_events
        self.max_batch_bytes = max_batch_bytes
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.gzip = gzip
        self.schema_message_classes = dict(schema_message_classes or {})
        self.on_rejected = on_rejected
        self.atexit_timeout = atexit_timeout
        # Anything with ``post(body, headers) -> HttpResponse`` (raising TransportError)
        # will do; tests wrap the default one to count requests.
        self._transport = transport or HttpTransport(endpoint, timeout=timeout)
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": CONTENT_TYPES[encoding],
            "Accept": "application/json",
            "User-Agent": f"telemetry-client-python/{__version__}",
        }

        # One lock guards all mutable state; the sender waits on ``_wakeup`` for work,
        # flush() waits on ``_progress`` for batches to resolve.
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._progress = threading.Condition(self._lock)
        self._queue: deque[_Item] = deque()
        self._queued_bytes = 0
        self._last_seq = 0
        self._flush_upto = 0  # the sender sends eagerly until every seq <= this is handled
        self._in_flight: list[_Item] = []
        self._closed = False  # emit() refuses new events
        self._stop = False  # the sender exits once the queue is empty
        self._abort = threading.Event()  # close() timed out: abandon backoff waits
        self._counters: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._last_drop_warning = -_DROP_WARNING_INTERVAL

        self._thread = threading.Thread(
            target=self._run, name="telemetry-client-sender", daemon=True
        )
        self._thread.start()
        _register_for_exit(self)

    # -- public API -------------------------------------------------------------------

    def emit(self, schema: str, event: Any) -> None:
        """Queue one event of ``schema``; never waits on the network.

        JSON mode: ``event`` is a dict in the schema's proto3 JSON form (aware
        datetimes become RFC 3339 strings) or a message instance. Protobuf mode: the
        event's serialised bytes, a message instance, or a dict when
        ``schema_message_classes`` maps the schema to its message class.
        Raises ``TypeError``/``ValueError`` for an event that cannot be encoded. When
        the queue is full the OLDEST queued event is dropped (``dropped_queue_full``);
        after ``close()`` the event is dropped (``dropped_closed``).
        """
        if not isinstance(schema, str) or not schema:
            raise ValueError("schema must be a non-empty string")
        payload, size = self._encode(schema, event)
        now = time.monotonic()
        with self._lock:
            if self._closed:
                self._counters["dropped_closed"] += 1
                return
            self._last_seq += 1
            self._counters["emitted"] += 1
            if len(self._queue) >= self.max_queue:
                # Drop-oldest: under sustained overload the newest events describe the
                # present, and the memory bound matters more than any single event.
                oldest = self._queue.popleft()
                self._queued_bytes -= oldest.size
                self._counters["dropped_queue_full"] += 1
                self._progress.notify_all()  # a flush may have been waiting on it
                self._warn_dropped(now)
            self._queue.append(_Item(self._last_seq, schema, payload, size, now))
            self._queued_bytes += size
            # Wake the sender only when that changes its plan: the first event starts
            # the flush_interval timer, a full batch goes out at once.
            if len(self._queue) == 1 or self._batch_full():
                self._wakeup.notify()

    def flush(self, timeout: float | None = None) -> FlushResult:
        """Send everything queued now and wait until it is resolved (or ``timeout`` passes)."""
        if threading.current_thread() is self._thread:
            # Called from on_rejected: the sender cannot wait for itself.
            return FlushResult(completed=False, pending=self.stats["queued"])
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._last_seq
            before = self._snapshot()
            if target > self._flush_upto:
                self._flush_upto = target
                self._wakeup.notify()
            while not self._resolved(target) and self._thread.is_alive():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._progress.wait(remaining)
            completed = self._resolved(target)
            pending = self._pending(target)
            after = self._snapshot()
        delta = {name: after[name] - before[name] for name in after}
        return FlushResult(
            completed=completed,
            pending=pending,
            sent=delta["sent"],
            duplicates=delta["duplicates"],
            rejected=delta["rejected"],
            failed=delta["failed_events"],
            dropped=delta["dropped_queue_full"] + delta["dropped_on_close"],
        )

    def close(self, timeout: float | None = None) -> FlushResult:
        """Flush (waiting at most ``timeout``), then stop the sender thread.

        Events still unsent when the timeout runs out are dropped and counted as
        ``dropped_on_close``. Later ``emit()`` calls drop their event. Idempotent.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            already = self._closed
            self._closed = True
        _unregister_for_exit(self)
        if already:
            self._thread.join(timeout)
            return FlushResult(completed=True, pending=0)
        result = self.flush(timeout)
        if not result.completed:
            self._abort.set()  # ends a backoff wait now rather than after it
        with self._lock:
            self._stop = True
            self._wakeup.notify_all()
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        # An HTTP request in progress may outlive the timeout; the thread is a daemon,
        # so it cannot hold the interpreter open.
        self._thread.join(remaining if result.completed else min(remaining or 0.0, 0.5))
        with self._lock:
            if self._queue:
                self._counters["dropped_on_close"] += len(self._queue)
                logger.warning(
                    "telemetry client closed with %d unsent events; they are dropped",
                    len(self._queue),
                )
                self._queue.clear()
                self._queued_bytes = 0
                self._progress.notify_all()
        return result

    @property
    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters (``rejected`` is a dict of counts per code)."""
        with self._lock:
            counters = {name: self._counters[name] for name in _COUNTER_NAMES}
            counters["rejected"] = dict(self._rejected)
            counters["queued"] = len(self._queue)
            return counters

    def __enter__(self) -> TelemetryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- encoding ---------------------------------------------------------------------

    def _encode(self, schema: str, event: Any) -> tuple[bytes, int]:
        if self.encoding == "json":
            if isinstance(event, Message):
                body = json_format.MessageToDict(event, preserving_proto_field_name=True)
            elif isinstance(event, Mapping):
                body = event
            else:
                raise TypeError("in JSON mode an event is a dict or a protobuf message")
            # allow_nan=False: a bare NaN is not JSON and would make the server refuse
            # the whole batch (proto3 JSON spells it "NaN").
            payload = json.dumps(
                {"schema": schema, "event": body},
                separators=(",", ":"),
                ensure_ascii=False,
                allow_nan=False,
                default=_json_default,
            ).encode("utf-8")
            return payload, len(payload) + 1  # + the comma between items
        if isinstance(event, bytes | bytearray | memoryview):
            data = bytes(event)
        elif isinstance(event, Message):
            data = event.SerializeToString()
        elif isinstance(event, Mapping):
            message_class = self._message_class(schema)
            if message_class is None:
                raise TypeError(
                    f"in protobuf mode a dict event needs schema_message_classes[{schema!r}]"
                )
            message = message_class()
            json_format.ParseDict(event, message)
            data = message.SerializeToString()
        else:
            raise TypeError("in protobuf mode an event is bytes, a protobuf message or a dict")
        return data, item_size(schema, data)

    def _message_class(self, schema: str) -> type[Message] | None:
        # A pinned name (NAME@2) uses NAME's class unless the pin has its own entry.
        return self.schema_message_classes.get(schema) or self.schema_message_classes.get(
            schema.partition("@")[0]
        )

    def _body(self, batch: list[_Item]) -> bytes:
        if self.encoding == "json":
            return b'{"events":[' + b",".join(item.payload for item in batch) + b"]}"
        return encode_event_batch([(item.schema, item.payload) for item in batch])

    # -- the sender thread ------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    while True:
                        if self._abort.is_set():
                            return
                        wait = self._seconds_until_ready()
                        if wait == 0:
                            break
                        if wait is None and self._stop:
                            return
                        self._wakeup.wait(wait)
                    batch = self._take_batch()
                    self._in_flight = batch
                try:
                    self._deliver(batch)
                except Exception:  # a bug here must not kill the thread and strand the queue
                    logger.exception("telemetry batch of %d events failed unexpectedly", len(batch))
                    self._count(failed_batches=1, failed_events=len(batch))
                finally:
                    with self._lock:
                        self._in_flight = []
                        self._progress.notify_all()
        finally:
            close_transport = getattr(self._transport, "close", None)
            if close_transport is not None:
                close_transport()

    def _seconds_until_ready(self) -> float | None:
        """0 when a batch should go now, None when there is nothing to send, else seconds."""
        if not self._queue:
            return None
        if self._stop or self._queue[0].seq <= self._flush_upto or self._batch_full():
            return 0
        age = time.monotonic() - self._queue[0].enqueued_at
        return max(0.0, self.flush_interval - age)

    def _batch_full(self) -> bool:
        return (
            len(self._queue) >= self.max_batch_events
            or self._queued_bytes + _JSON_BATCH_OVERHEAD >= self.max_batch_bytes
        )

    def _take_batch(self) -> list[_Item]:
        batch: list[_Item] = []
        size = _JSON_BATCH_OVERHEAD
        while self._queue and len(batch) < self.max_batch_events:
            item = self._queue[0]
            # An event bigger than max_batch_bytes on its own still goes, alone: the
            # server decides whether it is too large.
            if batch and size + item.size > self.max_batch_bytes:
                break
            self._queue.popleft()
            self._queued_bytes -= item.size
            size += item.size
            batch.append(item)
        return batch

    def _deliver(self, batch: list[_Item]) -> None:
        body = self._body(batch)
        headers = dict(self._headers)
        if self.gzip and len(body) >= GZIP_THRESHOLD_BYTES:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        # One id per batch, kept across retries, so the server's records tie them together.
        request_id = f"tc-{uuid.uuid4().hex}"
        headers["X-Request-Id"] = request_id
        attempt = 0
        while True:
            self._count(requests=1)
            response: HttpResponse | None = None
            problem = ""
            try:
                response = self._transport.post(body, headers)
            except TransportError as exc:
                problem = str(exc)
            if response is not None and response.status == 200:
                self._record_results(batch, response, request_id)
                return
            if response is not None:
                problem = _describe_error(response)
                if response.status not in RETRYABLE_STATUSES:
                    self._fail(batch, request_id, problem)
                    return
            if attempt >= self.max_retries:
                self._fail(batch, request_id, f"{problem}; gave up after {attempt} retries")
                return
            delay = self._backoff(attempt, response)
            attempt += 1
            self._count(retries=1)
            logger.info(
                "telemetry batch %s (%d events): %s; retry %d/%d in %.2fs",
                request_id,
                len(batch),
                problem,
                attempt,
                self.max_retries,
                delay,
            )
            if self._abort.wait(delay):
                self._count(dropped_on_close=len(batch))
                logger.warning(
                    "telemetry batch %s (%d events) dropped: client closed while retrying",
                    request_id,
                    len(batch),
                )
                return

    def _backoff(self, attempt: int, response: HttpResponse | None) -> float:
        """Seconds before retry ``attempt + 1``: Retry-After if given, else full jitter."""
        if response is not None:
            retry_after = _retry_after_seconds(response.headers.get("retry-after", ""))
            if retry_after is not None:
                return min(retry_after, self.backoff_max)
        # Full jitter (uniform in [0, capped exponential]) keeps many clients that
        # failed together from retrying together.
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return random.uniform(0, ceiling)  # noqa: S311 (jitter, not cryptography)

    def _record_results(self, batch: list[_Item], response: HttpResponse, request_id: str) -> None:
        try:
            results = json.loads(response.body)["results"]
            if not isinstance(results, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            self._fail(batch, request_id, "HTTP 200 without readable per-event results")
            return
        sent = duplicates = 0
        rejected: list[tuple[int, str, str, str, str]] = []
        for result in results:
            if not isinstance(result, dict):
                continue
            index = result.get("index")
            if not isinstance(index, int) or not 0 <= index < len(batch):
                continue
            status = result.get("status")
            if status == "accepted":
                sent += 1
            elif status == "duplicate":
                duplicates += 1
            elif status == "rejected":
                rejected.append(
                    (
                        index,
                        batch[index].schema,
                        str(result.get("code", "")),
                        str(result.get("field", "")),
                        str(result.get("message", "")),
                    )
                )
        with self._lock:
            self._counters["sent"] += sent
            self._counters["duplicates"] += duplicates
            self._counters["batches"] += 1
            for _, _, code, _, _ in rejected:
                self._rejected[code] += 1
        if not rejected:
            return
        # Codes and field paths only: the server's messages never repeat values, but
        # the events themselves stay out of the log.
        codes = Counter(code for _, _, code, _, _ in rejected)
        logger.warning(
            "telemetry batch %s: %d of %d events rejected (%s)",
            request_id,
            len(rejected),
            len(batch),
            ", ".join(f"{code}={count}" for code, count in sorted(codes.items())),
        )
        callback = self.on_rejected
        if callback is None:
            return
        for rejection in rejected:
            try:
                callback(*rejection)
            except Exception:
                logger.exception("telemetry on_rejected callback raised")

    def _fail(self, batch: list[_Item], request_id: str, problem: str) -> None:
        self._count(failed_batches=1, failed_events=len(batch))
        logger.warning(
            "telemetry batch %s (%d events) dropped: %s", request_id, len(batch), problem
        )

    # -- bookkeeping (callers hold the lock unless noted) -------------------------------

    def _count(self, **increments: int) -> None:
        """Add to counters; takes the lock itself."""
        with self._lock:
            self._counters.update(increments)

    def _resolved(self, target: int) -> bool:
        # Items leave the queue in seq order and the sender is single-threaded, so the
        # front of the in-flight batch and of the queue are the oldest unresolved events.
        if self._in_flight and self._in_flight[0].seq <= target:
            return False
        return not (self._queue and self._queue[0].seq <= target)

    def _pending(self, target: int) -> int:
        count = sum(1 for item in self._in_flight if item.seq <= target)
        for item in self._queue:
            if item.seq > target:
                break
            count += 1
        return count

    def _snapshot(self) -> dict[str, int]:
        snapshot = {name: self._counters[name] for name in _COUNTER_NAMES}
        snapshot["rejected"] = sum(self._rejected.values())
        return snapshot

    def _warn_dropped(self, now: float) -> None:
        if now - self._last_drop_warning >= _DROP_WARNING_INTERVAL:
            self._last_drop_warning = now
            logger.warning(
                "telemetry queue full (%d events): dropping the oldest; %d dropped so far",
                self.max_queue,
                self._counters["dropped_queue_full"],
            )


_COUNTER_NAMES = (
    "emitted",
    "sent",
    "duplicates",
    "dropped_queue_full",
    "dropped_closed",
    "dropped_on_close",
    "retries",
    "failed_batches",
    "failed_events",
    "requests",
    "batches",
)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _retry_after_seconds(value: str) -> float | None:
    """Parse ``Retry-After``: delay-seconds, or an HTTP date; None when absent or invalid."""
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _describe_error(response: HttpResponse) -> str:
    """``HTTP 400 malformed_json``: the status and the server's error code, nothing of the body."""
    code = ""
    try:
        error = json.loads(response.body).get("error", {})
        code = str(error.get("code", ""))[:64]
    except (ValueError, AttributeError):
        pass
    return f"HTTP {response.status} {code}".rstrip()


# -- flush on exit --------------------------------------------------------------------

# Weak, so a client the program dropped without closing can still be collected once its
# thread has ended; one atexit hook serves every client.
_open_clients: weakref.WeakSet[TelemetryClient] = weakref.WeakSet()
_exit_hook_lock = threading.Lock()
_exit_hook_registered = False


def _register_for_exit(client: TelemetryClient) -> None:
    global _exit_hook_registered
    with _exit_hook_lock:
        _open_clients.add(client)
        if not _exit_hook_registered:
            atexit.register(_close_open_clients)
            _exit_hook_registered = True


def _unregister_for_exit(client: TelemetryClient) -> None:
    with _exit_hook_lock:
        _open_clients.discard(client)


def _close_open_clients() -> None:
    """At interpreter exit: flush and close every client, each within its atexit_timeout."""
    with _exit_hook_lock:
        clients = list(_open_clients)
    for client in clients:
        try:
            client.close(timeout=client.atexit_timeout)
        except Exception:
            logger.exception("telemetry client failed to flush at exit")

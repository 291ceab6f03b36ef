"""A small client for emitting events to the telemetry platform (``POST /api/v1/events``).

Standard library HTTP plus ``protobuf``; it does not import the platform itself::

    from telemetry_client import TelemetryClient, envelope

    client = TelemetryClient(
        endpoint="http://127.0.0.1:8000/api/v1/events",
        api_key="tgp_...",
        encoding="json",            # or "protobuf" (a binary telemetry.v1.EventBatch)
        max_batch_events=500,       # a batch goes out when it holds this many events,
        max_batch_bytes=1_000_000,  # or this many (uncompressed) body bytes,
        flush_interval=2.0,         # or its oldest event has waited this long (seconds)
        max_queue=10_000,           # bounded queue; when full the OLDEST event is dropped
        max_retries=5,              # retries after the first attempt
        backoff_base=0.5, backoff_max=30.0,  # full-jitter exponential backoff, capped
        timeout=10.0,               # per HTTP request
        gzip=True,                  # Content-Encoding: gzip for bodies of 1 KiB or more
        schema_message_classes=None,  # protobuf mode: {schema name: message class} for dicts
    )
    client.emit(schema="telemetry.audit_event.v1", event={...})  # thread-safe, no network
    result = client.flush(timeout=None)  # -> FlushResult(completed, pending, sent, ...)
    client.close()                       # flush, stop the sender thread (also run at exit)
    client.stats                         # counters, see below
    client.on_rejected = lambda index, schema, code, field, message: ...

``emit()`` encodes the event at once (``TypeError``/``ValueError`` for one that cannot be
encoded) and queues it; a daemon thread sends batches. In JSON mode an event is a
proto3 JSON dict (aware datetimes become RFC 3339) or a message; in protobuf mode it
is serialised bytes, a message, or a dict whose schema is in ``schema_message_classes``.

Answers. Each event of a 200 answer is counted by its own result: ``accepted``
(``stats["sent"]``), ``duplicate`` (``stats["duplicates"]``; already stored, so
delivered too) or ``rejected`` (``stats["rejected"][code]``, passed to
``on_rejected(index_in_batch, schema, code, field, message)``, never retried: the same
event would be rejected again).

Retry policy. 408, 429, 5xx and connection errors/timeouts are retried up to
``max_retries`` times. The wait is ``Retry-After`` (seconds or an HTTP date) when the
server sends it, capped at ``backoff_max``; otherwise full jitter, uniform in
``[0, min(backoff_max, backoff_base * 2**attempt)]``. Any other answer (400 malformed,
401/403 key problems, 413 too large, ...) is not retried. A batch that is not
delivered is dropped and counted (``failed_batches``, ``failed_events``); the log line
names the batch's request id, the HTTP status and the server's error code, never the
events. Every attempt of one batch carries the same ``X-Request-Id`` (``tc-<hex>``).

Drop policy. At most ``max_queue`` events wait in memory (plus the one batch being
sent). When ``emit()`` finds the queue full it drops the OLDEST queued event
(``dropped_queue_full``; a warning at most once a minute): under overload the newest
events describe the present, and memory stays bounded. Events emitted after
``close()`` are dropped (``dropped_closed``); events still unsent when ``close()``'s
timeout runs out are dropped (``dropped_on_close``).

Exit. Every open client is closed by an ``atexit`` hook, waiting at most
``atexit_timeout`` seconds (default 5) per client. Create clients after forking
(e.g. in a gunicorn ``post_fork`` hook): a forked child has no sender thread.

``stats`` keys: ``emitted``, ``sent``, ``duplicates``, ``rejected`` (dict per code),
``dropped_queue_full``, ``dropped_closed``, ``dropped_on_close``, ``retries``,
``failed_batches``, ``failed_events``, ``requests`` (HTTP attempts), ``batches`` (200
answers), ``queued``.

``envelope(...)`` builds the ``telemetry.v1.Envelope`` dict of the platform schemas
(a uuid4 event id and an RFC 3339 occurred-at unless given).
"""

from __future__ import annotations

from ._version import __version__
from .client import FlushResult, TelemetryClient
from .envelope import envelope, rfc3339
from .transport import HttpResponse, HttpTransport, TransportError

__all__ = [
    "FlushResult",
    "HttpResponse",
    "HttpTransport",
    "TelemetryClient",
    "TransportError",
    "__version__",
    "envelope",
    "rfc3339",
]

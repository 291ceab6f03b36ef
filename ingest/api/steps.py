"""Steps every ingest endpoint shares: the bounded body, the key's context and rate limit,
and answering pipeline errors (400/413 as they say, 503 with Retry-After)."""

from __future__ import annotations

import hashlib
import hmac
import time
import zlib
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingest import metrics, pipeline
from ingest.codes import BatchCode, BrowserCode
from ingest.models import ApiKey
from ingest.ratelimit import Bucket, rate_limits_take
from telemetry_platform.api_errors import (
    RETRY_AFTER_SECONDS,
    STORE_UNREACHABLE,
    error_response,
    store_unavailable_response,
)
from telemetry_platform.conf import telemetry_settings

from .authentication import ApiKeyClient


class IsApiKeyClient(permissions.BasePermission):
    """Allow only requests authenticated with an API key."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        """Return True if the request carries a valid ingest API key (not a check-only key).

        A publishable key is refused with its own code: it may only send events.
        """
        if not isinstance(request.user, ApiKeyClient):
            return False
        kind = request.user.api_key.kind
        if kind == ApiKey.Kind.PUBLISHABLE:
            raise exceptions.PermissionDenied(
                "a publishable key may only send events (POST /api/v1/events, capture)",
                code=BrowserCode.PUBLISHABLE_KEY_NOT_ALLOWED,
            )
        return kind == ApiKey.Kind.INGEST


# Codes of BatchError answered with another status than 400.
BATCH_ERROR_STATUSES = {
    BatchCode.BODY_TOO_LARGE: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    BatchCode.TOO_MANY_EVENTS: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
}


def batch_error_status(code: str) -> int:
    """The HTTP status that answers a request refused with ``code``."""
    return BATCH_ERROR_STATUSES.get(code, status.HTTP_400_BAD_REQUEST)


def answered(respond: Callable[[], Response]) -> Response:
    """Run ``respond``; pipeline errors become their error responses. Times the request."""
    started = time.perf_counter()
    try:
        response = respond()
    except pipeline.BatchError as exc:
        response = error_response(
            exc.code, exc.message, status=batch_error_status(exc.code), field=exc.field
        )
    except pipeline.RetryableError as exc:
        response = error_response(
            BatchCode.STORE_UNAVAILABLE, str(exc), status=status.HTTP_503_SERVICE_UNAVAILABLE
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    except pipeline.StoreRefusedError as exc:
        # Not "retry later": the same batch would be refused again. The class is logged.
        response = error_response(
            BatchCode.STORE_REFUSED, str(exc), status=status.HTTP_500_INTERNAL_SERVER_ERROR
        )
    except STORE_UNREACHABLE:
        # Before the pipeline's own transaction: the plan refresh (policy epoch) or a read.
        response = store_unavailable_response()
    metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
    return response


def request_body(request: Request) -> bytes:
    """The raw body within TELEMETRY_MAX_BODY_BYTES, inflated when gzip (bounded too)."""
    limit = telemetry_settings.MAX_BODY_BYTES
    too_large = pipeline.BatchError(
        BatchCode.BODY_TOO_LARGE,
        f"request body is larger than {limit} bytes",
    )
    length = request.META.get("CONTENT_LENGTH") or ""
    if not length and _chunked(request):
        body = _chunked_body(request, limit, too_large)
    else:
        if not (length or "0").isdigit() or int(length or "0") > limit:
            raise too_large
        try:
            body = request.body
        except RequestDataTooBig:
            raise too_large from None
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise pipeline.BatchError(
            BatchCode.UNSUPPORTED_CONTENT_ENCODING, "Content-Encoding must be gzip or identity"
        )
    return gunzip_bounded(body, telemetry_settings.MAX_DECOMPRESSED_BYTES)


def _chunked(request: Request) -> bool:
    """Whether the body comes chunked, with no Content-Length (the server de-chunks it)."""
    meta = request.META
    return "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() and bool(
        meta.get("wsgi.input_terminated")
    )


def _chunked_body(request: Request, limit: int, too_large: pipeline.BatchError) -> bytes:
    """Read a chunked body to its end, refusing (413) one beyond ``limit`` bytes.

    Django reads ``Content-Length`` bytes, so with none it would see an empty body; the
    WSGI server marks a de-chunked input that ends by itself (``wsgi.input_terminated``).
    """
    stream = request.META["wsgi.input"]
    parts, size = [], 0
    while size <= limit:
        part = stream.read(min(64 * 1024, limit + 1 - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        raise too_large
    return b"".join(parts)


def gunzip_bounded(body: bytes, limit: int) -> bytes:
    """Decompress gzip ``body``, refusing (413) anything that inflates beyond ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise pipeline.BatchError(
            BatchCode.MALFORMED_GZIP, "request body is not valid gzip"
        ) from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise pipeline.BatchError(
            BatchCode.BODY_TOO_LARGE,
            f"request body inflates beyond {limit} bytes",
        )
    if not inflater.eof:
        raise pipeline.BatchError(BatchCode.MALFORMED_GZIP, "request body is truncated gzip")
    return data


def key_context(request: Request, *, trace_id: str = "") -> pipeline.IngestContext:
    """The pipeline context of the request's API key: its source and scope."""
    api_key: ApiKey = request.auth
    return pipeline.IngestContext(
        source=api_key.source,
        request_id=getattr(request, "request_id", ""),
        scope=pipeline.KeyScope(
            sources=frozenset(api_key.allowed_sources),
            surfaces=frozenset(api_key.allowed_surfaces),
            event_classes=frozenset(api_key.allowed_event_classes),
            schemas=tuple(api_key.allowed_schemas),
        ),
        trace_id=trace_id,
    )


def rate_limited(request: Request, cost: int, size: int) -> Response | None:
    """Take ``cost`` events and ``size`` bytes from the key's buckets: None, or the 429.

    Bytes are counted as well as events: scanning and storing cost grows with size, so
    a few huge events must not pass where many small ones would be throttled.
    """
    api_key: ApiKey = request.auth
    rate = api_key.rate_limit_per_second
    if rate is None:
        rate = telemetry_settings.RATE_LIMIT_EVENTS_PER_SECOND
    byte_rate = telemetry_settings.RATE_LIMIT_BYTES_PER_SECOND
    burst_seconds = telemetry_settings.RATE_LIMIT_BURST_SECONDS
    buckets = [
        Bucket(f"key:{api_key.pk}", rate, rate * burst_seconds, cost),
        Bucket(f"key-bytes:{api_key.pk}", byte_rate, byte_rate * burst_seconds, size),
    ]
    ip_rate = 0.0
    if api_key.kind == ApiKey.Kind.PUBLISHABLE:
        ip_rate = api_key.rate_limit_per_ip_per_second
        if ip_rate is None:
            ip_rate = telemetry_settings.PUBLISHABLE_IP_EVENTS_PER_SECOND
        client = client_bucket_id(request.META.get("REMOTE_ADDR", ""))
        buckets.append(Bucket(f"ip:{api_key.pk}:{client}", ip_rate, ip_rate * burst_seconds, cost))
    decision = rate_limits_take(buckets)
    if decision.allowed:
        return None
    if decision.short.startswith("key-bytes:"):
        message = f"rate limit of {byte_rate:g} bytes/s for this key exceeded; retry later"
    elif decision.short.startswith("ip:"):
        message = f"rate limit of {ip_rate:g} events/s per client for this key exceeded"
    else:
        message = f"rate limit of {rate:g} events/s for this key exceeded; retry later"
    response = error_response(
        BatchCode.RATE_LIMITED, message, status=status.HTTP_429_TOO_MANY_REQUESTS
    )
    response["Retry-After"] = str(decision.retry_after)
    return response


def client_bucket_id(address: str) -> str:
    """A keyed hash of the client's address, for the bucket's name: the IP is never stored."""
    digest = hmac.new(settings.SECRET_KEY.encode(), address.encode(), hashlib.sha256)
    return digest.hexdigest()[:24]

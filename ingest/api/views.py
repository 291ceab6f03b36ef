"""Ingest API views: parse the HTTP request, call the pipeline, answer."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable

from django.core.exceptions import RequestDataTooBig
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingest import metrics, pipeline
from ingest.codes import BatchCode
from ingest.models import ApiKey
from ingest.ratelimit import rate_limit_take
from telemetry_platform.api_errors import error_response
from telemetry_platform.conf import telemetry_settings
from telemetry_platform.tracecontext import TraceContextError, check_tracestate, parse_traceparent

from .authentication import ApiKeyAuthentication, ApiKeyClient
from .schema import event_batch_schema

JSON_TYPES = {"application/json"}
PROTOBUF_TYPES = {"application/x-protobuf", "application/protobuf"}
RETRY_AFTER_SECONDS = 5


class IsApiKeyClient(permissions.BasePermission):
    """Allow only requests authenticated with an API key."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        """Return True if the request carries a valid API key."""
        return isinstance(request.user, ApiKeyClient)


class EventBatchIngestApi(APIView):
    """POST /api/v1/events: a batch of events; answers per event, in order."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsApiKeyClient]
    parser_classes: list = []  # the pipeline decodes the raw body itself

    @event_batch_schema
    def post(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = self._ingest(request)
        except pipeline.BatchError as exc:
            response = error_response(exc.code, exc.message, status=exc.status, field=exc.field)
        except pipeline.RetryableError as exc:
            response = error_response(
                BatchCode.STORE_UNAVAILABLE, str(exc), status=status.HTTP_503_SERVICE_UNAVAILABLE
            )
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        return response

    def _ingest(self, request: Request) -> Response:
        api_key: ApiKey = request.auth
        decode = self._decoder(request)
        trace_id = self._trace_context(request)
        body = self._body(request)
        items = decode(body, default_schema=request.query_params.get("schema", ""))
        rate = api_key.rate_limit_per_second
        if rate is None:
            rate = telemetry_settings.RATE_LIMIT_EVENTS_PER_SECOND
        decision = rate_limit_take(
            bucket=f"key:{api_key.pk}",
            cost=len(items),
            rate=rate,
            burst=rate * telemetry_settings.RATE_LIMIT_BURST_SECONDS,
        )
        if not decision.allowed:
            response = error_response(
                BatchCode.RATE_LIMITED,
                f"rate limit of {rate:g} events/s for this key exceeded; retry later",
                status=status.HTTP_429_TOO_MANY_REQUESTS,
            )
            response["Retry-After"] = str(decision.retry_after)
            return response
        context = pipeline.IngestContext(
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
        return Response(pipeline.ingest_batch(items, context).as_dict())

    @staticmethod
    def _decoder(request: Request) -> Callable[..., list[pipeline.RawItem]]:
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type in JSON_TYPES:
            return pipeline.decode_json_batch
        if content_type in PROTOBUF_TYPES:
            return pipeline.decode_protobuf_batch
        raise pipeline.BatchError(
            BatchCode.UNSUPPORTED_CONTENT_TYPE,
            "send Content-Type: application/json or application/x-protobuf",
        )

    @staticmethod
    def _trace_context(request: Request) -> str:
        traceparent = request.headers.get("traceparent")
        tracestate = request.headers.get("tracestate")
        try:
            trace_id = parse_traceparent(traceparent).trace_id if traceparent else ""
            if tracestate:
                check_tracestate(tracestate)
        except TraceContextError as exc:
            code = (
                BatchCode.INVALID_TRACESTATE
                if "tracestate" in str(exc)
                else (BatchCode.INVALID_TRACEPARENT)
            )
            raise pipeline.BatchError(code, str(exc), field=code.removeprefix("invalid_")) from None
        return trace_id

    @staticmethod
    def _body(request: Request) -> bytes:
        limit = telemetry_settings.MAX_BODY_BYTES
        too_large = pipeline.BatchError(
            BatchCode.BODY_TOO_LARGE,
            f"request body is larger than {limit} bytes",
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > limit:
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
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if not inflater.eof:
        raise pipeline.BatchError(BatchCode.MALFORMED_GZIP, "request body is truncated gzip")
    return data

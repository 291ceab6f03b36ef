"""Ingest API views: parse the HTTP request, call the pipeline, answer."""

from __future__ import annotations

from collections.abc import Callable

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingest import pipeline
from ingest.codes import BatchCode
from telemetry_platform.tracecontext import TraceContextError, check_tracestate, parse_traceparent

from .browser import (
    BEACON_TYPES,
    BrowserIngestMixin,
    BrowserKeyAuthentication,
    IsEventSender,
    beacon_allowed,
    content_type,
    publishable_trace_parameters,
    unsupported_beacon,
)
from .schema import event_batch_schema
from .steps import answered, key_context, rate_limited, request_body

JSON_TYPES = {"application/json"}
PROTOBUF_TYPES = {"application/x-protobuf", "application/protobuf"}


class EventBatchIngestApi(BrowserIngestMixin, APIView):
    """POST /api/v1/events: a batch of events; answers per event, in order.

    Publishable keys may also send from pages: CORS, and text/plain (beacon) bodies.
    """

    authentication_classes = [BrowserKeyAuthentication]
    permission_classes = [IsEventSender]
    parser_classes: list = []  # the pipeline decodes the raw body itself

    @event_batch_schema
    def post(self, request: Request) -> Response:
        return answered(lambda: self._ingest(request))

    def _ingest(self, request: Request) -> Response:
        decode = self._decoder(request)
        trace_id = self._trace_context(request)
        body = request_body(request)
        items = decode(body, default_schema=request.query_params.get("schema", ""))
        refused = rate_limited(request, len(items), len(body))
        if refused is not None:
            return refused
        context = key_context(request, trace_id=trace_id)
        return Response(pipeline.ingest_batch(items, context).as_dict())

    @staticmethod
    def _decoder(request: Request) -> Callable[..., list[pipeline.RawItem]]:
        media_type = content_type(request)
        if media_type in JSON_TYPES:
            return pipeline.decode_json_batch
        if media_type in PROTOBUF_TYPES:
            return pipeline.decode_protobuf_batch
        if media_type in BEACON_TYPES:
            if not beacon_allowed(request):
                raise unsupported_beacon()
            return pipeline.decode_json_batch
        raise pipeline.BatchError(
            BatchCode.UNSUPPORTED_CONTENT_TYPE,
            "send Content-Type: application/json or application/x-protobuf",
        )

    @staticmethod
    def _trace_context(request: Request) -> str:
        beacon = publishable_trace_parameters(request) if beacon_allowed(request) else {}
        traceparent = request.headers.get("traceparent") or beacon.get("traceparent")
        tracestate = request.headers.get("tracestate") or beacon.get("tracestate")
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

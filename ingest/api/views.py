"""Ingest API views: parse the HTTP request, call the pipeline, answer."""

from __future__ import annotations

from collections.abc import Callable

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingest import pipeline
from ingest.codes import BatchCode
from telemetry_platform.tracecontext import TraceContextError, check_tracestate, parse_traceparent

from .authentication import ApiKeyAuthentication
from .schema import event_batch_schema
from .steps import IsApiKeyClient, answered, key_context, rate_limited, request_body

JSON_TYPES = {"application/json"}
PROTOBUF_TYPES = {"application/x-protobuf", "application/protobuf"}


class EventBatchIngestApi(APIView):
    """POST /api/v1/events: a batch of events; answers per event, in order."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsApiKeyClient]
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

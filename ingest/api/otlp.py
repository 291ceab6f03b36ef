"""OTLP/HTTP receivers: ``/v1/logs`` and ``/v1/metrics`` (``/v1/traces`` refused), so an
OpenTelemetry SDK or Collector pointed at the platform (OTEL_EXPORTER_OTLP_ENDPOINT) works.

Same steps as the native endpoint (bearer key, bounded and gzip body, rate limit, store
errors): answers are OTLP's, in the encoding of the request, 200 with ``partial_success``
when records were rejected, errors as a ``google.rpc.Status`` with Retry-After on 429/503.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.urls import path
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.otlp import otlp_log_routes
from governance.plans import SchemaRefusal
from governance.selectors import schema_plans
from ingest import pipeline
from ingest.codes import BatchCode, RejectCode
from ingest.otlp import (
    LogTarget,
    OtlpEncoding,
    log_items,
    metric_items,
    otlp_decode,
    otlp_encode,
    outcome_of,
)
from ingest.otlp.codes import OtlpCode
from telemetry_platform.conf import telemetry_settings

from .authentication import ApiKeyAuthentication
from .steps import IsApiKeyClient, answered, key_context, rate_limited, request_body

ENCODINGS = {
    "application/x-protobuf": OtlpEncoding.PROTOBUF,
    "application/protobuf": OtlpEncoding.PROTOBUF,
    "application/json": OtlpEncoding.JSON,
}
# google.rpc.Code of each HTTP status an OTLP answer can carry.
RPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 413: 3, 415: 3, 429: 8, 500: 13, 501: 12,
             503: 14}  # fmt: skip
TRACES_REFUSAL = (
    "this platform is not a trace store: send traces to a tracing backend; "
    "logs are accepted at /v1/logs and metrics at /v1/metrics"
)
_targets: dict[int, LogTarget] = {}


def request_encoding(request: Request) -> OtlpEncoding | None:
    """The OTLP encoding the request's Content-Type names, or None."""
    media = (request.content_type or "").split(";")[0].strip().lower()
    return ENCODINGS.get(media)


def status_response(
    status: int, code: str, message: str, encoding: OtlpEncoding | None
) -> HttpResponse:
    """An OTLP error answer: a google.rpc.Status naming ``code``, in the request's encoding."""
    encoding = encoding or OtlpEncoding.JSON
    body = Status(code=RPC_CODES.get(status, 2), message=f"{code}: {message}")
    return HttpResponse(otlp_encode(body, encoding), status=status, content_type=encoding.value)


class OtlpReceiverApi(APIView):
    """Shared by the receivers: content type, and errors re-encoded as OTLP answers."""

    schema = None  # OTLP's API, specified by OpenTelemetry (README), not in our OpenAPI
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsApiKeyClient]
    parser_classes: list = []

    def finalize_response(
        self, request: Request, response: Any, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """Answer errors (the platform's JSON error body) as a Status in the request's encoding."""
        response = super().finalize_response(request, response, *args, **kwargs)
        data = getattr(response, "data", None)
        if not isinstance(response, Response) or not isinstance(data, dict) or "error" not in data:
            return response
        error = data["error"]
        field = f" (field {error['field']})" if error.get("field") else ""
        answer = status_response(
            response.status_code,
            str(error.get("code", "error")),
            f"{error.get('message', '')}{field}",
            request_encoding(request),
        )
        if response.has_header("Retry-After"):
            answer["Retry-After"] = response["Retry-After"]
        return answer

    def post(self, request: Request) -> HttpResponse:
        encoding = request_encoding(request)
        if encoding is None:
            return status_response(
                415,
                BatchCode.UNSUPPORTED_CONTENT_TYPE,
                "send Content-Type: application/x-protobuf or application/json",
                None,
            )
        return answered(lambda: self.export(request, encoding))

    def export(self, request: Request, encoding: OtlpEncoding) -> HttpResponse | Response:
        """Decode, map, rate-limit and ingest one export request; answer it."""
        raise NotImplementedError

    @staticmethod
    def ingest(request: Request, mapped: list, body_size: int) -> tuple[Response | None, Any]:
        """Take the rate limit, run the pipeline on the mapped raw items: (429, None) or
        (None, the outcome)."""
        refused = rate_limited(request, max(1, len(mapped)), body_size)
        if refused is not None:
            return refused, None
        items = [item for _, item in mapped if isinstance(item, pipeline.RawItem)]
        result = pipeline.ingest_batch(items, key_context(request)) if items else None
        return None, outcome_of(mapped, result)


class OtlpLogsApi(OtlpReceiverApi):
    """POST /v1/logs: an ExportLogsServiceRequest; log records become events by the routes."""

    def export(self, request: Request, encoding: OtlpEncoding) -> HttpResponse | Response:
        body = request_body(request)
        message = otlp_decode(body, encoding, ExportLogsServiceRequest)
        schema_plans.refresh()
        mapped = log_items(
            message,
            routes=otlp_log_routes.get(),
            target_of=log_target,
            scope=key_context(request).scope,
            unclassified=telemetry_settings.UNCLASSIFIED_FIELDS,
            max_records=telemetry_settings.MAX_EVENTS_PER_BATCH,
        )
        refused, outcome = self.ingest(request, mapped, len(body))
        if refused is not None:
            return refused
        answer = ExportLogsServiceResponse()
        if outcome.rejected:
            answer.partial_success.rejected_log_records = outcome.rejected
            answer.partial_success.error_message = outcome.error_message
        return HttpResponse(otlp_encode(answer, encoding), content_type=encoding.value)


class OtlpMetricsApi(OtlpReceiverApi):
    """POST /v1/metrics: an ExportMetricsServiceRequest; data points become service metrics."""

    def export(self, request: Request, encoding: OtlpEncoding) -> HttpResponse | Response:
        body = request_body(request)
        message = otlp_decode(body, encoding, ExportMetricsServiceRequest)
        mapped = metric_items(message, max_points=telemetry_settings.MAX_EVENTS_PER_BATCH)
        refused, outcome = self.ingest(request, mapped, len(body))
        if refused is not None:
            return refused
        answer = ExportMetricsServiceResponse()
        if outcome.rejected:
            answer.partial_success.rejected_data_points = outcome.rejected
            answer.partial_success.error_message = outcome.error_message
        return HttpResponse(otlp_encode(answer, encoding), content_type=encoding.value)


class OtlpTracesApi(APIView):
    """POST /v1/traces: refused (501, not retryable): the platform keeps no traces."""

    schema = None
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    parser_classes: list = []

    def post(self, request: Request) -> HttpResponse:
        return status_response(
            501, OtlpCode.TRACES_NOT_ACCEPTED, TRACES_REFUSAL, request_encoding(request)
        )


def log_target(schema_name: str) -> LogTarget | pipeline.Rejection:
    """What a route's schema takes of a log record (per plan revision), or why it cannot."""
    plan = schema_plans.get(schema_name)
    if plan is None:
        return pipeline.Rejection(
            RejectCode.UNKNOWN_SCHEMA, "the log route's schema is not registered", "schema"
        )
    if isinstance(plan, SchemaRefusal):
        return pipeline.Rejection(plan.code, plan.message, "schema")
    target = _targets.get(plan.revision_id)
    if target is None:
        if len(_targets) > 256:
            _targets.clear()
        target = _targets[plan.revision_id] = LogTarget.from_plan(plan)
    return target


urlpatterns = [
    path("logs", OtlpLogsApi.as_view(), name="otlp-logs"),
    path("metrics", OtlpMetricsApi.as_view(), name="otlp-metrics"),
    path("traces", OtlpTracesApi.as_view(), name="otlp-traces"),
]

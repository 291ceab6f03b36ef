"""Artifact API views: sign-off artifacts and diagnostics snapshots, through the one pipeline."""

from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingest import pipeline
from ingest.artifacts.common import ParsedArtifact
from ingest.artifacts.diagnostics import diagnostics_snapshot_parse
from ingest.artifacts.perf_signoff import perf_signoff_parse
from ingest.artifacts.services import DIAGNOSTICS, PERF_SIGNOFF, parsed_artifact_ingest
from ingest.codes import BatchCode
from telemetry_platform.conf import telemetry_settings

from .authentication import ApiKeyAuthentication
from .schema import error
from .steps import IsApiKeyClient, answered, key_context, rate_limited, request_body

MAX_LABEL_LENGTH = 200


class ArtifactResultSerializer(serializers.Serializer):
    ref = serializers.CharField(help_text="Where in the artifact: a metric path, budget or entry.")
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"])
    event_id = serializers.CharField(required=False)
    code = serializers.CharField(required=False, help_text="Why it was rejected.")
    field = serializers.CharField(required=False, help_text="Path of the offending field.")
    message = serializers.CharField(required=False, help_text="Never repeats the value.")


class ArtifactReportSerializer(serializers.Serializer):
    kind = serializers.CharField()
    received = serializers.IntegerField()
    accepted = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = ArtifactResultSerializer(many=True)
    warnings = serializers.ListField(child=serializers.CharField())


class PerfSignoffArtifactSerializer(serializers.Serializer):
    timestamp = serializers.CharField(help_text="ISO 8601, e.g. 20260222T181254Z.")
    build_id = serializers.CharField()
    samples = serializers.DictField(child=serializers.IntegerField(), required=False)
    budgets = serializers.DictField(
        child=serializers.FloatField(), required=False, help_text="Budget name -> upper bound."
    )
    metrics = serializers.DictField(help_text="Nested measured values, e.g. boot.root.p95_ms.")
    pass_ = serializers.BooleanField(required=False)
    budget_failures = serializers.ListField(required=False)


# "pass" is a Python keyword: declare the field under its wire name.
PerfSignoffArtifactSerializer._declared_fields["pass"] = (
    PerfSignoffArtifactSerializer._declared_fields.pop("pass_")
)


class DeliveryMetricsSerializer(serializers.Serializer):
    total_polls = serializers.IntegerField(required=False)
    throttled_polls = serializers.IntegerField(required=False)
    limited_polls = serializers.IntegerField(required=False)
    fairness_limited_polls = serializers.IntegerField(required=False)
    slow_consumer_evictions = serializers.IntegerField(required=False)
    served_messages = serializers.IntegerField(required=False)
    active_consumers = serializers.IntegerField(required=False)
    recent_disconnect_causes = serializers.ListField(child=serializers.CharField(), required=False)


class DiagnosticsSnapshotSerializer(serializers.Serializer):
    service = serializers.CharField(required=False)
    instance = serializers.CharField(required=False)
    timestamp = serializers.CharField(required=False, help_text="ISO 8601; default: now.")
    driver = serializers.CharField(required=False)
    delivery_metrics = DeliveryMetricsSerializer(required=False)
    topic_windows = serializers.ListField(
        child=serializers.DictField(), required=False, help_text="One object per topic."
    )
    consumers = serializers.ListField(child=serializers.DictField(), required=False)


def _artifact_schema(summary: str, request: type, parameters: list) -> Callable:
    return extend_schema(
        summary=summary,
        request={"application/json": request},
        parameters=[
            *parameters,
            OpenApiParameter(
                "Content-Encoding", str, OpenApiParameter.HEADER, enum=["gzip", "identity"]
            ),
            OpenApiParameter("X-Request-Id", str, OpenApiParameter.HEADER),
        ],
        responses={
            200: ArtifactReportSerializer,
            400: error("The artifact cannot be used at all (nothing stored)."),
            401: error("Missing, unknown, revoked or expired API key."),
            413: error("Body over the limits."),
            429: error("Rate limit exceeded; see Retry-After."),
            503: error("The store is unavailable; retry after Retry-After."),
        },
    )


SOURCE_PARAMETER = OpenApiParameter(
    "source", OpenApiTypes.STR, description="Source recorded on the events (default: the key's)."
)


class _ArtifactIngestApi(APIView):
    """Shared steps of the artifact endpoints: API key, body limits, rate limit, pipeline."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsApiKeyClient]
    parser_classes: list = []  # the artifact parsers read the raw body themselves
    kind = ""

    def parse(
        self, request: Request, body: bytes, context: pipeline.IngestContext
    ) -> ParsedArtifact:
        """Return the artifact in ``body`` as pipeline items (ArtifactError if unusable)."""
        raise NotImplementedError

    def handle_artifact(self, request: Request) -> Response:
        """Answer the artifact in the request: one result per item, or the error."""
        return answered(lambda: self._respond(request))

    def _respond(self, request: Request) -> Response:
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise pipeline.BatchError(
                BatchCode.UNSUPPORTED_CONTENT_TYPE, "send Content-Type: application/json"
            )
        body = request_body(request)
        context = key_context(request)
        parsed = self.parse(request, body, context)
        refused = rate_limited(request, max(1, len(parsed.items)), len(body))
        if refused is not None:
            return refused
        report = parsed_artifact_ingest(parsed=parsed, kind=self.kind, context=context)
        return Response(report.as_dict())

    @staticmethod
    def _label(request: Request, name: str) -> str:
        value = request.query_params.get(name, "").strip()
        if len(value) > MAX_LABEL_LENGTH or "\x00" in value:
            raise pipeline.BatchError(
                "invalid_parameter",
                f"'{name}' must be at most {MAX_LABEL_LENGTH} characters",
                field=name,
            )
        return value


class PerfSignoffIngestApi(_ArtifactIngestApi):
    """POST /api/v1/artifacts/perf-signoff: one performance_budget_sample per measured value."""

    kind = PERF_SIGNOFF

    @_artifact_schema(
        "Ingest a release performance sign-off artifact",
        PerfSignoffArtifactSerializer,
        [SOURCE_PARAMETER],
    )
    def post(self, request: Request) -> Response:
        return self.handle_artifact(request)

    def parse(
        self, request: Request, body: bytes, context: pipeline.IngestContext
    ) -> ParsedArtifact:
        """Return the artifact's samples; ids derive from build id and metric path."""
        return perf_signoff_parse(body, source=self._label(request, "source"))


class DiagnosticsSnapshotIngestApi(_ArtifactIngestApi):
    """POST /api/v1/artifacts/diagnostics: one service_metric event per delivery counter."""

    kind = DIAGNOSTICS

    @_artifact_schema(
        "Ingest a runtime delivery diagnostics snapshot",
        DiagnosticsSnapshotSerializer,
        [
            SOURCE_PARAMETER,
            OpenApiParameter("service", OpenApiTypes.STR, description="Default: the snapshot's."),
            OpenApiParameter("instance", OpenApiTypes.STR, description="Default: the snapshot's."),
        ],
    )
    def post(self, request: Request) -> Response:
        return self.handle_artifact(request)

    def parse(
        self, request: Request, body: bytes, context: pipeline.IngestContext
    ) -> ParsedArtifact:
        """Return one event per counter, labelled by topic or consumer."""
        return diagnostics_snapshot_parse(
            body,
            now=context.received_at,
            service=self._label(request, "service"),
            instance=self._label(request, "instance"),
            source=self._label(request, "source"),
            prefix=telemetry_settings.DIAGNOSTICS_METRIC_PREFIX,
        )

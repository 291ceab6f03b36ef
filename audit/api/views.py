"""Audit search API: the same filters as the admin, cursor pagination, streamed exports."""

from __future__ import annotations

from django.http import Http404, StreamingHttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.access import record_correlation, record_denied, record_search
from audit.exports import export_response
from audit.filtersets import AuditEventFilterSet
from audit.models import AuditEvent
from audit.selectors import correlation_get
from ingest.models import Event
from telemetry_platform.db_router import annotate_response, replica_reads


class CanSearchAudit(permissions.BasePermission):
    """Only holders of audit.search_auditevent (the "security analyst" role) see audit data."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        """Return True if the user may search and export audit events; record a refusal."""
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if user.has_perm("audit.search_auditevent"):
            return True
        record_denied(request, action=view.audit_action)
        return False


class AuditEventSerializer(serializers.ModelSerializer):
    schema = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = (
            "id",
            "occurred_at",
            "received_at",
            "source",
            "event_id",
            "schema",
            "request_id",
            "trace_id",
            "actor_hash",
            "payload",
            "redactions",
            "chain_seq",
        )

    def get_schema(self, event: Event) -> str:
        return f"{event.schema_revision.schema.name}@{event.schema_revision.version}"


class NewestFirstCursor(CursorPagination):
    ordering = ("-occurred_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class AuditEventListApi(generics.ListAPIView):
    """GET /api/v1/audit-events: newest first, filtered, cursor-paginated; recorded."""

    audit_action = "search"
    permission_classes = [CanSearchAudit]
    serializer_class = AuditEventSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditEventFilterSet
    pagination_class = NewestFirstCursor

    def get_queryset(self):
        # The revision's descriptor set and sources are large: never fetch them per row.
        return AuditEvent.objects.select_related("schema_revision__schema").defer(
            "schema_revision__descriptor_set", "schema_revision__proto_files"
        )

    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        filterset = AuditEventFilterSet(request.query_params, queryset=self.get_queryset())
        if filterset.is_valid():
            record_search(request, filterset, "searched")
        # Read-only and not the searcher's own writes: the replica, within its lag bound.
        with replica_reads() as source:
            response = super().list(request, *args, **kwargs)
        return annotate_response(response, source)


class AuditEventExportApi(APIView):
    """GET /api/v1/audit-events/export.<csv|jsonl>: the current filter, streamed."""

    audit_action = "export"
    permission_classes = [CanSearchAudit]

    @extend_schema(responses={(200, "text/csv"): str, (200, "application/x-ndjson"): str})
    def get(self, request: Request, export_format: str) -> StreamingHttpResponse | Response:
        if export_format not in ("csv", "jsonl"):
            return Response(
                {"error": {"code": "unknown_format", "message": "export as .csv or .jsonl"}},
                status=404,
            )
        filterset = AuditEventFilterSet(request.query_params, queryset=AuditEvent.objects.all())
        if not filterset.is_valid():
            return Response(
                {
                    "error": {
                        "code": "invalid_filter",
                        "message": "invalid filter",
                        "details": filterset.errors,
                    }
                },
                status=400,
            )
        record_search(request, filterset, "exported")
        with replica_reads() as source:
            response = export_response(filterset.qs, export_format)
        return annotate_response(response, source)


class CorrelatedEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event_class = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    source = serializers.CharField()
    event_id = serializers.CharField()
    request_id = serializers.CharField()
    trace_id = serializers.CharField()
    payload = serializers.JSONField()


class CorrelationSerializer(serializers.Serializer):
    event = serializers.IntegerField(help_text="The id of the audit event asked about.")
    timeline = CorrelatedEventSerializer(
        many=True,
        help_text="Every event of any class sharing its request or trace id, oldest first.",
    )


class AuditEventCorrelationApi(APIView):
    """GET /api/v1/audit-events/<id>/correlated: every event sharing its request or trace id."""

    audit_action = "correlate"
    permission_classes = [CanSearchAudit]

    @extend_schema(responses=CorrelationSerializer)
    def get(self, request: Request, pk: int) -> Response:
        found = correlation_get(pk)
        if found is None:
            raise Http404("no such audit event")
        event, timeline = found.event, found.timeline
        record_correlation(request, event_pk=event.pk, found=len(timeline))
        data = [
            {
                "id": item.pk,
                "event_class": item.event_class_id,
                "occurred_at": item.occurred_at,
                "source": item.source,
                "event_id": item.event_id,
                "request_id": item.request_id,
                "trace_id": item.trace_id,
                "payload": item.payload,
            }
            for item in timeline
        ]
        return annotate_response(Response({"event": event.pk, "timeline": data}), found.source)

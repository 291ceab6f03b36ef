"""The data-subject request API: submit, approve, read, certificate, summary, export."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from telemetry_platform.db_router import annotate_response, replica_reads

from ..exports import EXPORT_FORMATS, export_lines
from ..models import SubjectRequest
from ..selectors import subject_events_export, subject_summary
from ..services import (
    SUBMIT_PERMISSION,
    SubjectRequestError,
    subject_request_approve,
    subject_request_submit,
)


class HandlesSubjectRequests(permissions.BasePermission):
    """Staff holding the dedicated permission (the privacy officer role)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        """Return True if the caller is staff with privacy.add_subjectrequest."""
        user = request.user
        return bool(user and user.is_staff and user.has_perm(SUBMIT_PERMISSION))


def _error(exc: SubjectRequestError) -> Response:
    code = status.HTTP_403_FORBIDDEN if exc.code == "forbidden" else status.HTTP_400_BAD_REQUEST
    if exc.code in ("not_proposed", "four_eyes", "not_reviewed"):
        code = status.HTTP_409_CONFLICT
    return Response({"code": exc.code, "field": exc.field, "message": exc.message}, status=code)


def _public(request: SubjectRequest) -> dict:
    # The hashes stay out of the API answers: that a request exists, its kind and state.
    return {
        "id": request.pk,
        "kind": request.kind,
        "status": request.status,
        "identifier_kinds": list(request.identifier_kinds),
        "reason": request.reason,
        "ticket": request.ticket,
        "requested_by": request.requested_by.get_username(),
        "approved_by": request.approved_by.get_username() if request.approved_by else None,
        "created_at": request.created_at.isoformat(),
        "rows_erased": request.rows_erased,
        "certificate_digest": request.certificate_digest,
    }


class SubjectRequestSubmitSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=SubjectRequest.Kind.choices)
    identifiers = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField(trim_whitespace=False)),
        required=False,
    )
    reason = serializers.CharField(max_length=300)
    ticket = serializers.CharField(max_length=100, required=False, allow_blank=True)
    lifts = serializers.IntegerField(required=False)


class SubjectRequestSubmitApi(APIView):
    """POST /api/v1/subject-requests: a request from raw identifiers (hashed, not kept)."""

    permission_classes = [HandlesSubjectRequests]

    @extend_schema(request=SubjectRequestSubmitSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        serializer = SubjectRequestSubmitSerializer(data=request.data)
        if not serializer.is_valid():
            field = next(iter(serializer.errors))
            # The field's name, never the value given (it may be an identifier).
            return Response(
                {"code": "invalid", "field": field, "message": "invalid or missing"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        data = serializer.validated_data
        lifts = None
        if data.get("lifts"):
            lifts = SubjectRequest.objects.filter(pk=data["lifts"]).first()
        try:
            created = subject_request_submit(
                kind=data["kind"],
                identifiers=data.get("identifiers"),
                reason=data["reason"],
                ticket=data.get("ticket", ""),
                lifts=lifts,
                actor=request.user,
            )
        except SubjectRequestError as exc:
            return _error(exc)
        return Response(_public(created), status=status.HTTP_201_CREATED)


class SubjectRequestDetailApi(APIView):
    """GET /api/v1/subject-requests/ID: the request's state."""

    permission_classes = [HandlesSubjectRequests]

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        found = SubjectRequest.objects.filter(pk=pk).first()
        if found is None:
            return Response({"code": "not_found"}, status=status.HTTP_404_NOT_FOUND)
        return Response(_public(found))


class SubjectRequestApproveApi(APIView):
    """POST /api/v1/subject-requests/ID/approve: the second pair of eyes."""

    permission_classes = [HandlesSubjectRequests]

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, pk: int) -> Response:
        found = SubjectRequest.objects.filter(pk=pk).first()
        if found is None:
            return Response({"code": "not_found"}, status=status.HTTP_404_NOT_FOUND)
        try:
            approved = subject_request_approve(request=found, actor=request.user)
        except SubjectRequestError as exc:
            return _error(exc)
        return Response(_public(approved))


class SubjectRequestCertificateApi(APIView):
    """GET /api/v1/subject-requests/ID/certificate: the erasure certificate and its digest."""

    permission_classes = [HandlesSubjectRequests]

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        found = SubjectRequest.objects.filter(pk=pk).first()
        if found is None or found.certificate is None:
            return Response({"code": "not_found"}, status=status.HTTP_404_NOT_FOUND)
        response = Response({"certificate": found.certificate, "digest": found.certificate_digest})
        response["Content-Disposition"] = f'attachment; filename="erasure-{found.pk}.json"'
        return response


class SubjectRequestSummaryApi(APIView):
    """GET /api/v1/subject-requests/ID/summary: counts per class and schema, dates, holds."""

    permission_classes = [HandlesSubjectRequests]

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        found = SubjectRequest.objects.filter(pk=pk, kind=SubjectRequest.Kind.ACCESS).first()
        if found is None:
            return Response({"code": "not_found"}, status=status.HTTP_404_NOT_FOUND)
        return Response(subject_summary(found))


class _FormatIsTheExports(DefaultContentNegotiation):
    # DRF reads ``?format=`` as a renderer override and answered 404 for jsonl/csv: here
    # the parameter names the export's format, and errors are always JSON.
    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None):
        return renderers[0], renderers[0].media_type


class SubjectRequestExportApi(APIView):
    """GET /api/v1/subject-requests/ID/export?format=jsonl|csv: every stored event, streamed."""

    permission_classes = [HandlesSubjectRequests]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _FormatIsTheExports

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> StreamingHttpResponse | Response:
        found = SubjectRequest.objects.filter(pk=pk, kind=SubjectRequest.Kind.ACCESS).first()
        if found is None:
            return Response({"code": "not_found"}, status=status.HTTP_404_NOT_FOUND)
        kind = request.query_params.get("format", "jsonl")
        if kind not in EXPORT_FORMATS:
            return Response(
                {"code": "invalid_format", "field": "format", "message": "jsonl or csv"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        # The request was read on the primary (it may be minutes old); the events it names
        # are streamed from the replica within its lag bound.
        with replica_reads() as source:
            rows = subject_events_export(list(found.subject_hashes))
            response = StreamingHttpResponse(
                export_lines(rows, kind), content_type=EXPORT_FORMATS[kind]
            )
        response["Content-Disposition"] = f'attachment; filename="subject-{found.pk}.{kind}"'
        return annotate_response(response, source)

"""Schema registry API: register, list, inspect and move revisions through their lifecycle."""

from __future__ import annotations

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.choices import ChangeKind
from governance.models import Schema, SchemaRevision
from governance.services import (
    ChangeRequestError,
    SchemaRegistrationError,
    change_request_draft,
    schema_register,
)
from telemetry_platform.api_errors import error_response

from .serializers import (
    MAX_PROTO_BYTES,
    SchemaRegisteredSerializer,
    SchemaRegisterSerializer,
    SchemaRevisionSerializer,
    SchemaSerializer,
    StatusChangeSerializer,
    violation_data,
)

# Room for the multipart envelope around a 1 MiB file.
MAX_REQUEST_BYTES = MAX_PROTO_BYTES + 64 * 1024


class CanManageSchemas(permissions.BasePermission):
    """Reading needs view permission on schemas; changing them needs add/change permission."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        """Return True if the user holds the permission this method needs."""
        user = request.user
        if not (user and user.is_authenticated and hasattr(user, "has_perm")):
            return False
        if request.method in permissions.SAFE_METHODS:
            return user.has_perm("governance.view_schema")
        return user.has_perm("governance.add_schemarevision") and user.has_perm(
            "governance.change_schemarevision"
        )


class SchemaListRegisterApi(APIView):
    """GET: every schema with its revisions. POST: register a new revision from .proto sources."""

    permission_classes = [CanManageSchemas]
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        operation_id="schemas_list",
        responses=inline_serializer("SchemaList", {"schemas": SchemaSerializer(many=True)}),
    )
    def get(self, request: Request) -> Response:
        schemas = Schema.objects.prefetch_related(
            Prefetch("revisions", queryset=SchemaRevision.objects.order_by("version"))
        )
        return Response({"schemas": SchemaSerializer(schemas, many=True).data})

    @extend_schema(
        operation_id="schemas_register",
        request={
            "application/json": SchemaRegisterSerializer,
            "multipart/form-data": SchemaRegisterSerializer,
        },
        responses={
            201: OpenApiResponse(
                SchemaRegisteredSerializer,
                description="Registered. Annotations weaker than the previous revision's "
                "reviewed policies are not applied: policy_annotations names them and the "
                "change request proposing them.",
            ),
            200: OpenApiResponse(SchemaRegisteredSerializer, description="Identical; unchanged."),
            400: OpenApiResponse(description="Not registered: code, errors, violations."),
            413: OpenApiResponse(description="Upload over 1 MiB."),
        },
    )
    def post(self, request: Request) -> Response:
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > MAX_REQUEST_BYTES:
            return error_response(
                "upload_too_large", "uploads are limited to 1 MiB", status=413, field="file"
            )
        data = request.data
        if _largest_source(request) > MAX_PROTO_BYTES:
            return error_response(
                "upload_too_large", "each .proto is limited to 1 MiB", status=413, field="file"
            )
        if hasattr(data, "getlist"):  # multipart: several files may share the name 'file'
            data = {key: data.get(key) for key in data if key != "file"} | {
                "file": request.FILES.getlist("file")
            }
            data.pop("roles", None)
            data["roles"] = _roles_from_lines(request.data.get("roles", ""))
        serializer = SchemaRegisterSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        attrs = serializer.validated_data
        try:
            registered = schema_register(
                name=attrs["name"],
                proto_files=attrs["sources"],
                message_name=attrs["message"],
                event_class=attrs.get("event_class") or None,
                roles=attrs["roles"],
                status=attrs["status"],
                description=attrs["description"],
                actor=request.user,
            )
        except SchemaRegistrationError as exc:
            return Response(
                {
                    "error": {
                        "code": exc.code,
                        "message": "schema not registered",
                        "errors": exc.errors,
                        "violations": [violation_data(v) for v in exc.violations],
                    }
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        answer = SchemaRegisteredSerializer(registered.revision, context={"registered": registered})
        return Response(
            answer.data,
            status=status.HTTP_201_CREATED if registered.created else status.HTTP_200_OK,
        )


def _largest_source(request: Request) -> int:
    sizes = [upload.size for upload in request.FILES.getlist("file")]
    proto_files = request.data.get("proto_files") if isinstance(request.data, dict) else None
    if isinstance(proto_files, dict):
        sizes.extend(len(str(text).encode("utf-8")) for text in proto_files.values())
    return max(sizes, default=0)


def _roles_from_lines(text: str) -> dict[str, str]:
    """Multipart forms carry roles as ``ROLE=FIELD_PATH`` lines (or comma-separated)."""
    roles = {}
    for item in text.replace(",", "\n").splitlines():
        role, _, path = item.partition("=")
        if role.strip():
            roles[role.strip()] = path.strip()
    return roles


class SchemaDetailApi(APIView):
    """GET /api/v1/schemas/<name>: the schema and its revisions."""

    permission_classes = [CanManageSchemas]

    @extend_schema(operation_id="schema_detail", responses=SchemaSerializer)
    def get(self, request: Request, name: str) -> Response:
        schema = get_object_or_404(Schema, name=name)
        return Response(SchemaSerializer(schema).data)


class SchemaRevisionDetailApi(APIView):
    """GET: one revision with its field catalogue (POST .../status proposes a lifecycle move)."""

    permission_classes = [CanManageSchemas]

    @extend_schema(operation_id="schema_revision_detail", responses=SchemaRevisionSerializer)
    def get(self, request: Request, name: str, version: int) -> Response:
        revision = get_object_or_404(SchemaRevision, schema__name=name, version=version)
        return Response(SchemaRevisionSerializer(revision).data)


class SchemaRevisionStatusApi(APIView):
    """POST: propose a lifecycle move; it applies once a second person approves it."""

    permission_classes = [CanManageSchemas]

    @extend_schema(
        operation_id="schema_revision_status",
        request=StatusChangeSerializer,
        responses={
            202: inline_serializer(
                "StatusChangeProposed",
                {
                    "change_request": serializers.IntegerField(),
                    "state": serializers.CharField(),
                    "schema": serializers.CharField(),
                    "version": serializers.IntegerField(),
                    "proposed_status": serializers.CharField(),
                },
            ),
            403: OpenApiResponse(description="The user may not propose policy changes."),
            409: OpenApiResponse(description="Transition not allowed, or no change."),
        },
    )
    def post(self, request: Request, name: str, version: int) -> Response:
        revision = get_object_or_404(SchemaRevision, schema__name=name, version=version)
        serializer = StatusChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            change_request = change_request_draft(
                kind=ChangeKind.SCHEMA_STATUS,
                target=f"schema_revision:{name}@{revision.version}",
                payload={"status": serializer.validated_data["status"]},
                reason=serializer.validated_data["reason"],
                actor=request.user,
            )
        except ChangeRequestError as exc:
            if exc.code == "permission_denied":
                return error_response(exc.code, exc.message, status=403)
            code = "invalid_transition" if exc.code == "invalid_change" else exc.code
            return error_response(code, exc.message, status=409, field="status")
        return Response(
            {
                "change_request": change_request.pk,
                "state": change_request.status,
                "schema": name,
                "version": revision.version,
                "proposed_status": serializer.validated_data["status"],
            },
            status=status.HTTP_202_ACCEPTED,
        )

"""Schema check API: would these proto sources break a registered schema? Registers nothing.

It lives with the key-authenticated endpoints (a check-only API key may call it), above
governance in the layers; the check itself is governance's schema_compatibility_check.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from google.protobuf.descriptor_pb2 import FileDescriptorSet
from google.protobuf.message import DecodeError
from rest_framework import permissions, serializers
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.api.serializers import MAX_PROTO_BYTES
from governance.compatibility import Violation
from governance.models import Schema
from governance.protoc import ProtoCompileError, compile_protos_serialized
from governance.services import schema_compatibility_check
from ingest.models import ApiKey
from telemetry_platform.api_errors import error_response

from .authentication import ApiKeyAuthentication, ApiKeyClient

# Room for the JSON envelope around the sources (each at most 1 MiB, 4 MiB in all).
MAX_CHECK_REQUEST_BYTES = 4 * MAX_PROTO_BYTES + 64 * 1024


class CanCheckSchema(permissions.BasePermission):
    """A schema_check API key (scoped to the schema, if its key lists schemas), or a user
    who may view schemas. Ingest keys may not check."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        """Return True if the caller may check the schema named in the URL."""
        user = request.user
        if isinstance(user, ApiKeyClient):
            key = user.api_key
            if key.kind != ApiKey.Kind.SCHEMA_CHECK:
                return False
            name = view.kwargs.get("name", "")
            return not key.allowed_schemas or any(
                fnmatch.fnmatchcase(name, pattern) for pattern in key.allowed_schemas
            )
        return bool(
            user
            and user.is_authenticated
            and hasattr(user, "has_perm")
            and user.has_perm("governance.view_schema")
        )


class SchemaCheckSerializer(serializers.Serializer):
    """Proto sources (file name -> text), or a base64 FileDescriptorSet naming its own files."""

    proto_files = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False
    )
    descriptor_set = serializers.CharField(required=False)
    files = serializers.ListField(child=serializers.CharField(), required=False)
    message = serializers.CharField(required=False, allow_blank=True, max_length=300)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("proto_files")) == bool(attrs.get("descriptor_set")):
            raise serializers.ValidationError("send either proto_files or descriptor_set")
        for name, text in (attrs.get("proto_files") or {}).items():
            if len(text.encode("utf-8")) > MAX_PROTO_BYTES:
                raise serializers.ValidationError({"proto_files": f"{name} is over 1 MiB"})
        return attrs


def check_violation_data(violation: Violation) -> dict[str, Any]:
    """A violation as the check API answers it: with the file and line of the new source."""
    return {
        "rule": violation.rule,
        "path": violation.path,
        "old": violation.old,
        "new": violation.new,
        "message": violation.message,
        "against_version": violation.against_version,
        "file": violation.file,
        "line": violation.line,
    }


class SchemaCheckApi(APIView):
    """POST /api/v1/schemas/<name>/check: the violations the sources would be refused for."""

    authentication_classes = [ApiKeyAuthentication, SessionAuthentication, TokenAuthentication]
    permission_classes = [CanCheckSchema]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="schema_check",
        request=SchemaCheckSerializer,
        responses={
            200: OpenApiResponse(
                description="compatible (bool), rule_set, checked_against (versions) and "
                "violations (rule, path, old, new, message, against_version, file, line)."
            ),
            400: OpenApiResponse(description="Unusable input: code and errors."),
            404: OpenApiResponse(description="No such schema."),
        },
    )
    def post(self, request: Request, name: str) -> Response:
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > MAX_CHECK_REQUEST_BYTES:
            return error_response("upload_too_large", "the request is limited to 4 MiB", status=413)
        schema = get_object_or_404(Schema, name=name)
        serializer = SchemaCheckSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        attrs = serializer.validated_data
        latest = schema.revisions.order_by("-version").first()
        if latest is None:
            return error_response("no_revision", f"{name} has no revision yet", status=404)
        own_files: list[str] | None
        if attrs.get("proto_files"):
            own_files = list(attrs["proto_files"])
            try:
                serialized = compile_protos_serialized(attrs["proto_files"])
            except ProtoCompileError as exc:
                return _unusable("proto_compile_error", exc.errors)
        else:
            try:
                raw = base64.b64decode(attrs["descriptor_set"], validate=True)
                serialized = FileDescriptorSet.FromString(raw).SerializeToString()
            except (binascii.Error, DecodeError):
                return _unusable("invalid_descriptor_set", ["not a base64 FileDescriptorSet"])
            own_files = attrs.get("files") or None
        message = attrs.get("message") or latest.message_name
        violations = schema_compatibility_check(
            schema=schema, descriptor_set=serialized, message_name=message, proto_files=own_files
        )
        return Response(
            {
                "schema": schema.name,
                "message": message,
                "compatible": not violations,
                "rule_set": {
                    "category": schema.breaking_category,
                    "ignore": schema.breaking_ignore,
                    "ignore_only": schema.breaking_ignore_only,
                    "ignore_unstable_packages": schema.breaking_ignore_unstable_packages,
                },
                "checked_against": list(
                    schema.revisions.order_by("version").values_list("version", flat=True)
                ),
                "violations": [check_violation_data(v) for v in violations],
            }
        )


def _unusable(code: str, errors: list[str]) -> Response:
    return Response(
        {"error": {"code": code, "message": "the sources cannot be checked", "errors": errors}},
        status=400,
    )

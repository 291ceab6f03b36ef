"""Ingest API views: parse the HTTP request, call the pipeline, answer."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingest import pipeline
from ingest.codes import BatchCode
from telemetry_platform.api_errors import error_response
from telemetry_platform.conf import telemetry_settings

from .authentication import ApiKeyAuthentication, ApiKeyClient

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

    def post(self, request: Request) -> Response:
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type in JSON_TYPES:
            decode = pipeline.decode_json_batch
        elif content_type in PROTOBUF_TYPES:
            decode = pipeline.decode_protobuf_batch
        else:
            return error_response(
                BatchCode.UNSUPPORTED_CONTENT_TYPE,
                "send Content-Type: application/json or application/x-protobuf",
                status=status.HTTP_400_BAD_REQUEST,
            )
        length = request.META.get("CONTENT_LENGTH") or "0"
        limit = telemetry_settings.MAX_BODY_BYTES
        if not length.isdigit() or int(length) > limit:
            return error_response(
                BatchCode.BODY_TOO_LARGE,
                f"request body is larger than {limit} bytes",
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        context = pipeline.IngestContext(
            source=request.auth.source, request_id=getattr(request, "request_id", "")
        )
        try:
            body = request.body
        except RequestDataTooBig:
            return error_response(
                BatchCode.BODY_TOO_LARGE,
                f"request body is larger than {limit} bytes",
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        try:
            items = decode(body, default_schema=request.query_params.get("schema", ""))
            result = pipeline.ingest_batch(items, context)
        except pipeline.BatchError as exc:
            return error_response(exc.code, exc.message, status=exc.status, field=exc.field)
        except pipeline.RetryableError as exc:
            response = error_response(
                BatchCode.STORE_UNAVAILABLE, str(exc), status=status.HTTP_503_SERVICE_UNAVAILABLE
            )
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        return Response(result.as_dict())

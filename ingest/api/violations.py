"""Violations API: why a sender's events are rejected, per schema, code, field and version."""

from __future__ import annotations

from datetime import UTC, datetime

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingest.models import ApiKey
from ingest.violations import DEFAULT_WINDOW, WINDOWS, violation_list, window_buckets
from telemetry_platform.api_errors import error_response

from .authentication import ApiKeyAuthentication, ApiKeyClient

VIEW_PERMISSION = "ingest.view_ingesttally"


class CanReadViolations(permissions.BasePermission):
    """An ingest API key (for its own source) or a user who may view the tallies."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        """Return True if the caller may read violation reports."""
        user = request.user
        if isinstance(user, ApiKeyClient):
            return user.api_key.kind == ApiKey.Kind.INGEST
        return bool(user and user.is_authenticated and user.has_perm(VIEW_PERMISSION))


class ViolationListApi(APIView):
    """GET /api/v1/violations: rejections per source, schema, code, field path and app
    version in a window (1h, 24h, 7d, 30d), the most frequent first, each with its series
    (hourly up to 24h, daily beyond). An API key sees only its own source."""

    authentication_classes = [ApiKeyAuthentication, SessionAuthentication, TokenAuthentication]
    permission_classes = [CanReadViolations]

    @extend_schema(
        operation_id="violation_list",
        parameters=[
            OpenApiParameter("window", str, enum=list(WINDOWS), default=DEFAULT_WINDOW),
            OpenApiParameter("source", str),
            OpenApiParameter("schema", str),
            OpenApiParameter("code", str),
            OpenApiParameter("field", str),
        ],
        responses={
            200: OpenApiResponse(description="window, bucket, buckets and violations."),
            400: OpenApiResponse(description="An unknown window (code invalid_window)."),
        },
    )
    def get(self, request: Request) -> Response:
        window = request.query_params.get("window", DEFAULT_WINDOW)
        if window not in WINDOWS:
            return error_response(
                "invalid_window",
                f"window is one of {', '.join(WINDOWS)}",
                status=400,
                field="window",
            )
        sources = None
        if isinstance(request.user, ApiKeyClient):
            sources = frozenset({request.user.api_key.source})
        params = request.query_params
        now = datetime.now(UTC)  # one clock for the rows and their bucket labels
        rows = violation_list(
            window=window,
            now=now,
            source=params.get("source", "")[:200],
            schema=params.get("schema", "")[:200],
            code=params.get("code", "")[:48],
            field_path=params.get("field", "")[:200],
            sources=sources,
        )
        _, unit, starts = window_buckets(window, now)
        return Response(
            {
                "window": window,
                "bucket": unit,
                "buckets": [start.isoformat() for start in starts],
                "violations": [row.as_dict() for row in rows],
            }
        )

"""One JSON error shape for every API error: ``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def error_response(code: str, message: str, *, status: int, field: str = "") -> Response:
    """Return the platform's error body with ``status``."""
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return Response({"error": body}, status=status)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Render DRF's exceptions (401, 403, 404, 405, 429, ...) in the platform's error shape."""
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    detail = exc.detail
    if isinstance(detail, dict | list):
        code, message = exc.default_code, "invalid request"
        body: dict[str, Any] = {"code": code, "message": message, "details": exc.get_full_details()}
    else:
        body = {"code": getattr(detail, "code", exc.default_code), "message": str(detail)}
    response.data = {"error": body}
    return response

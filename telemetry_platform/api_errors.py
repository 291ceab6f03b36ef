"""One JSON error shape for every API error: ``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

# Seconds a client is asked to wait when the store is unreachable (the Retry-After header).
RETRY_AFTER_SECONDS = 5
STORE_UNAVAILABLE = "store_unavailable"
# Paths answered in the API's error shape even when Django, not DRF, produces the error.
API_PATH_PREFIXES = ("/api/", "/v1/")

# psycopg raises these when PostgreSQL cannot be reached or the connection broke; a data
# error or a constraint violation is a DatabaseError too, but is never "retry later".
STORE_UNREACHABLE = (OperationalError, InterfaceError)


def error_response(code: str, message: str, *, status: int, field: str = "") -> Response:
    """Return the platform's error body with ``status``."""
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return Response({"error": body}, status=status)


def store_unavailable_response() -> Response:
    """503 with Retry-After: the store cannot be reached; nothing of the request was kept."""
    response = error_response(
        STORE_UNAVAILABLE,
        "the store is unavailable; retry later",
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Render DRF's exceptions (401, 403, 404, 405, 429, ...) in the platform's error shape.

    An unreachable store, wherever it surfaces (key lookup, policy epoch, a selector),
    is a 503 with Retry-After rather than a 500.
    """
    if isinstance(exc, STORE_UNREACHABLE):
        logger.warning("store unreachable: %s", type(exc).__name__)
        return store_unavailable_response()
    if isinstance(exc, Http404 | exceptions.NotFound):
        # get_object_or_404 raises Django's Http404, which DRF turns into NotFound with
        # Django's own message ("No AuditEvent matches the given query.").
        exc = exceptions.NotFound("not found", code="not_found")
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


def is_api_request(request: HttpRequest) -> bool:
    """Whether ``request`` is for the API (answered in JSON), not for the admin's pages."""
    return request.path.startswith(API_PATH_PREFIXES)


def _json_error(code: str, message: str, status_code: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status_code)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for an unknown URL: the API's error shape under /api/, Django's page elsewhere."""
    if is_api_request(request):
        return _json_error("not_found", "no such endpoint", 404)
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """400 raised by Django itself (a bad Host header, say), in the API's shape under /api/."""
    if is_api_request(request):
        return _json_error("bad_request", "the request could not be understood", 400)
    return defaults.bad_request(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """500: the API's error shape under /api/ (never a traceback or a value), else Django's."""
    if is_api_request(request):
        return _json_error("internal_error", "internal error; the request id is logged", 500)
    return defaults.server_error(request)

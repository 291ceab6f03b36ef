"""Request middleware: a request id on every request and response; 503 when the store is down."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.log import log_response

from .api_errors import RETRY_AFTER_SECONDS, STORE_UNAVAILABLE, STORE_UNREACHABLE, is_api_request
from .logging import request_id_var, trace_id_var
from .tracecontext import TraceContextError, parse_traceparent

REQUEST_ID_HEADER = "X-Request-Id"
# A client's id is kept only if it is short and plain, so it is safe to log and echo.
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestIdMiddleware:
    """Read ``X-Request-Id`` (or generate one), keep it on the request, echo it on the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        presented = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = presented if VALID_REQUEST_ID.match(presented) else uuid.uuid4().hex
        request.request_id = request_id
        try:
            trace_id = parse_traceparent(request.headers.get("traceparent", "")).trace_id
        except TraceContextError:
            trace_id = ""
        request_token = request_id_var.set(request_id)
        trace_token = trace_id_var.set(trace_id)
        try:
            response = self.get_response(request)
            if response.status_code >= 400:
                # Django logs error responses after the middleware has returned, when the
                # request's ids (and span) are gone; log it here, while they are in force.
                # log_response marks the response, so Django does not log it twice.
                log_response(
                    "%s: %s",
                    response.reason_phrase,
                    request.path,
                    response=response,
                    request=request,
                )
        finally:
            request_id_var.reset(request_token)
            trace_id_var.reset(trace_token)
        response[REQUEST_ID_HEADER] = request_id
        return response


class StoreUnavailableMiddleware:
    """Answer 503 with Retry-After, not a 500, when a view finds PostgreSQL unreachable.

    DRF views answer that themselves (the API exception handler); this covers the admin
    and the plain Django views, so an outage reads as an outage everywhere.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Return the 503 for an unreachable store; None lets Django handle anything else."""
        if not isinstance(exception, STORE_UNREACHABLE):
            return None
        message = "the store is unavailable; retry later"
        if is_api_request(request):
            response: HttpResponse = JsonResponse(
                {"error": {"code": STORE_UNAVAILABLE, "message": message}}, status=503
            )
        else:
            response = HttpResponse(
                f"503 Service Unavailable: {message}.", status=503, content_type="text/plain"
            )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

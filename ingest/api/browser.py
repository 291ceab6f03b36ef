"""Browser clients: publishable keys (in the query or body), origin checks, CORS and preflights.

A publishable key is public (anything in a page is), so what it may do is bounded by
its scope and checked here: it may only send events, only from the origins it allow-lists
(``Origin``, else ``Referer``; neither is refused unless the key allows it), and only
through the endpoints that use ``BrowserIngestMixin``. Its key may travel as
``?api_key=`` or as ``"api_key"`` in a ``text/plain`` JSON body: what
``navigator.sendBeacon`` sends, which needs no preflight.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework import exceptions, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingest import pipeline
from ingest.codes import BatchCode, BrowserCode
from ingest.models import ApiKey
from ingest.selectors import publishable_origins_list
from ingest.services import api_key_authenticate, auth_failure_record, origin_normalise
from telemetry_platform.api_errors import error_response
from telemetry_platform.conf import telemetry_settings

from .authentication import ApiKeyAuthentication, ApiKeyClient
from .steps import batch_error_status, request_body

KEY_PARAMETER = "api_key"
BEACON_TYPES = {"text/plain"}
ALLOWED_METHODS = "POST, OPTIONS"
ALLOWED_HEADERS = (
    "authorization, content-type, content-encoding, traceparent, tracestate, x-request-id"
)
# What a page's script may read of an answer (besides the CORS-safelisted headers).
EXPOSED_HEADERS = "retry-after, x-request-id"


class BatchRefused(exceptions.APIException):
    """A BatchError met while authenticating (reading the body for its key): same answer."""

    def __init__(self, error: pipeline.BatchError) -> None:
        super().__init__(error.message, code=error.code)
        self.status_code = batch_error_status(error.code)


def content_type(request: Request) -> str:
    """The request's media type, lower case, without parameters."""
    return (request.content_type or "").split(";")[0].strip().lower()


def request_origin(request: Request) -> str:
    """The page's origin: ``Origin``, else the origin of ``Referer``; "" when neither."""
    origin = request.headers.get("Origin", "")
    if origin:
        # "null" (sandboxed frames, file: pages) normalises to "" and is never allowed.
        return origin_normalise(origin) or "null"
    referer = request.headers.get("Referer", "")
    return origin_normalise(referer) if referer else ""


def origin_refusal(api_key: ApiKey, origin: str) -> tuple[str, str] | None:
    """(code, message) when ``api_key`` may not be used from ``origin``; None when it may."""
    if not origin:
        if api_key.allow_no_origin:
            return None
        return (
            BrowserCode.ORIGIN_REQUIRED,
            "this publishable key is used from pages only: the request has no Origin or Referer",
        )
    if origin in api_key.allowed_origins:
        return None
    return BrowserCode.ORIGIN_NOT_ALLOWED, "this origin is not allowed for this key"


def _presented_in_body(request: Request) -> str:
    """``"api_key"`` of a text/plain JSON body (bounded like every body), or ""."""
    if content_type(request) not in BEACON_TYPES:
        return ""
    try:
        body = request_body(request)
    except pipeline.BatchError as exc:
        raise BatchRefused(exc) from None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return ""  # the view answers the malformed body with its own code
    presented = document.get(KEY_PARAMETER) if isinstance(document, dict) else None
    return presented if isinstance(presented, str) else ""


class BrowserKeyAuthentication(ApiKeyAuthentication):
    """``Authorization: Bearer`` (any kind), else a publishable key in the query or body.

    A key of another kind in a URL or body is refused (``key_not_publishable``): URLs
    end up in logs and histories, so only a key meant to be public may travel there.
    """

    def authenticate(self, request: Request) -> tuple[ApiKeyClient, ApiKey] | None:
        """Return (client, key) for a valid key, None when no key was sent; raise on a bad key."""
        found = super().authenticate(request)
        if found is not None:
            return found
        presented = request.query_params.get(KEY_PARAMETER, "") or _presented_in_body(request)
        if not presented:
            return None
        outcome = api_key_authenticate(presented=presented)
        if outcome.api_key is None:
            auth_failure_record(
                code=outcome.code,
                presented=presented,
                client_address=request.META.get("REMOTE_ADDR", ""),
            )
            raise exceptions.AuthenticationFailed(outcome.message, code=outcome.code)
        if not outcome.api_key.is_publishable:
            raise exceptions.AuthenticationFailed(
                "only publishable keys may be sent in the URL or body; send this key as "
                "'Authorization: Bearer <key>'",
                code=BrowserCode.KEY_NOT_PUBLISHABLE,
            )
        return ApiKeyClient(outcome.api_key), outcome.api_key


class IsEventSender(permissions.BasePermission):
    """An ingest key, or a publishable key used from one of its allowed origins."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        """Return True if the request may send events; raise with the refusal's code."""
        user = request.user
        if not isinstance(user, ApiKeyClient):
            return False
        api_key = user.api_key
        if api_key.kind == ApiKey.Kind.INGEST:
            return True
        if not api_key.is_publishable:
            return False
        refusal = origin_refusal(api_key, request_origin(request))
        if refusal is not None:
            raise exceptions.PermissionDenied(refusal[1], code=refusal[0])
        return True


def cors_headers(origin: str, *, preflight: bool = False) -> dict[str, str]:
    """The CORS answer for ``origin``: echoed (never ``*``), no credentials."""
    headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    if preflight:
        headers.update(
            {
                "Access-Control-Allow-Methods": ALLOWED_METHODS,
                "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Max-Age": str(telemetry_settings.CORS_MAX_AGE_SECONDS),
            }
        )
    else:
        headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    return headers


class BrowserIngestMixin:
    """CORS for an ingest APIView: preflights answered, publishable answers readable.

    Only publishable keys get CORS headers, and only for their allowed origins; a page
    using an ingest key (or none) gets none, so the browser keeps the answer from it.
    """

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """Preflights carry no credentials: they skip authentication (answered by options)."""
        if request.method == "OPTIONS":
            return
        super().initial(request, *args, **kwargs)

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Answer a preflight: 204 with the CORS headers for an origin a key allows, else 403.

        With ``?api_key=`` the origin is checked against that key; without, against the
        origins of every active publishable key (the request itself is checked later).
        """
        origin = request_origin(request)
        method = request.headers.get("Access-Control-Request-Method", "")
        if not origin or not method:
            response = Response(status=status.HTTP_204_NO_CONTENT)
            response["Allow"] = ALLOWED_METHODS
            return response
        if method.upper() != "POST":
            return error_response(
                BrowserCode.PREFLIGHT_METHOD_NOT_ALLOWED,
                "only POST is allowed from pages",
                status=status.HTTP_403_FORBIDDEN,
            )
        if not self._preflight_origin_allowed(request, origin):
            return error_response(
                BrowserCode.ORIGIN_NOT_ALLOWED,
                "this origin is not allowed for any publishable key",
                status=status.HTTP_403_FORBIDDEN,
            )
        response = Response(status=status.HTTP_204_NO_CONTENT)
        for name, value in cors_headers(origin, preflight=True).items():
            response[name] = value
        return response

    @staticmethod
    def _preflight_origin_allowed(request: Request, origin: str) -> bool:
        presented = request.query_params.get(KEY_PARAMETER, "")
        if not presented:
            return origin in publishable_origins_list()
        api_key = api_key_authenticate(presented=presented).api_key
        return (
            api_key is not None
            and api_key.is_publishable
            and origin_refusal(api_key, origin) is None
        )

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        """Add the CORS headers when a publishable key sent from one of its origins."""
        response = super().finalize_response(request, response, *args, **kwargs)
        api_key = getattr(request, "_auth", None)
        if request.method != "OPTIONS" and isinstance(api_key, ApiKey) and api_key.is_publishable:
            origin = request_origin(request)
            if origin and origin in api_key.allowed_origins:
                for name, value in cors_headers(origin).items():
                    response[name] = value
        return response


def publishable_trace_parameters(request: Request) -> dict[str, str]:
    """``traceparent``/``tracestate`` from the query: a beacon cannot set headers."""
    return {
        name: request.query_params[name]
        for name in ("traceparent", "tracestate")
        if request.query_params.get(name)
    }


def beacon_allowed(request: Request) -> bool:
    """Whether a text/plain body may be read as JSON: only for publishable keys."""
    api_key = request.auth
    return isinstance(api_key, ApiKey) and api_key.is_publishable


def unsupported_beacon() -> pipeline.BatchError:
    """The refusal of a text/plain body sent with a key that is not publishable."""
    return pipeline.BatchError(
        BatchCode.UNSUPPORTED_CONTENT_TYPE,
        "text/plain bodies are accepted for publishable keys only; send application/json",
    )

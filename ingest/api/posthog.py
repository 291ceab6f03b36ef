"""PostHog capture endpoints: posthog-js pointed at the platform (``api_host``) works unchanged.

Capture (``/e/``, ``/i/v0/e/``, ``/batch/``, ``/capture/``) decodes PostHog's bodies into
raw items of ``posthog.capture.v1`` and calls the pipeline; its token is a publishable key.
Flags and remote config (``/flags/``, ``/decide/``, ``/array/<token>/config``) answer
"no flags, no session recording", so the client neither retries nor loads recorders.
"""

from __future__ import annotations

from typing import Any

from django.urls import re_path
from django.utils import timezone
from rest_framework import exceptions, permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingest import pipeline
from ingest.codes import BrowserCode
from ingest.posthog_capture import capture_body_json, capture_decode
from ingest.selectors import publishable_origins_list
from ingest.services import api_key_authenticate, auth_failure_record
from telemetry_platform.conf import telemetry_settings

from .browser import BrowserIngestMixin, content_type, cors_headers, origin_refusal, request_origin
from .steps import answered, gunzip_bounded, key_context, rate_limited, request_body

# What /flags and /decide answer: nothing enabled, nothing to load.
NO_FLAGS: dict[str, Any] = {
    "flags": {},
    "featureFlags": {},
    "featureFlagPayloads": {},
    "errorsWhileComputingFlags": False,
    "quotaLimited": [],
    "sessionRecording": False,
    "heatmaps": False,
    "surveys": False,
    "siteApps": [],
    "capturePerformance": False,
    "autocaptureExceptions": False,
    "supportedCompression": ["gzip", "gzip-js"],
    "config": {"enable_collect_everything": False},
    "toolbarParams": {},
    "isAuthenticated": False,
}


class PostHogCaptureApi(BrowserIngestMixin, APIView):
    """POST a PostHog capture body; answers PostHog's ``{"status": 1}`` with the totals."""

    schema = None  # PostHog's API, documented by PostHog (README), not in our OpenAPI
    authentication_classes: list = []  # the token is in the body: authenticated in post
    permission_classes = [permissions.AllowAny]
    parser_classes: list = []

    def post(self, request: Request, **kwargs: Any) -> Response:
        return answered(lambda: self._capture(request))

    def get_authenticate_header(self, request: Request) -> str:
        """A missing or bad token is 401 (DRF answers 403 without a challenge)."""
        return "Bearer"

    def _capture(self, request: Request) -> Response:
        body = request_body(request)
        if body[:2] == b"\x1f\x8b":  # gzip-js bodies come as text/plain, unlabelled
            body = gunzip_bounded(body, telemetry_settings.MAX_DECOMPRESSED_BYTES)
        document = capture_body_json(
            body,
            compression=request.query_params.get("compression", ""),
            media_type=content_type(request),
        )
        capture = capture_decode(
            document,
            received_at=timezone.now(),
            max_events=telemetry_settings.MAX_EVENTS_PER_BATCH,
        )
        presented = (
            capture.token
            or request.query_params.get("api_key", "")
            or request.query_params.get("token", "")
        )
        self._authenticate_token(request, presented)
        refused = rate_limited(request, len(capture.items), len(body))
        if refused is not None:
            return refused
        result = pipeline.ingest_batch(capture.items, key_context(request))
        return Response({"status": 1, **result.as_dict()})

    @staticmethod
    def _authenticate_token(request: Request, presented: str) -> None:
        """Set the request's key from the token: a publishable key used from its origins."""
        if not presented:
            raise exceptions.NotAuthenticated(
                "send the publishable key as the PostHog token", code="not_authenticated"
            )
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
                "the PostHog token must be a publishable key", code=BrowserCode.KEY_NOT_PUBLISHABLE
            )
        request.auth = outcome.api_key
        refusal = origin_refusal(outcome.api_key, request_origin(request))
        if refusal is not None:
            request.auth = None
            raise exceptions.PermissionDenied(refusal[1], code=refusal[0])


class PostHogFlagsApi(BrowserIngestMixin, APIView):
    """GET or POST /flags, /decide, /array/<token>/config: no flags, no recording."""

    schema = None
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    parser_classes: list = []

    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response(NO_FLAGS)

    def post(self, request: Request, **kwargs: Any) -> Response:
        return Response(NO_FLAGS)

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        """Readable from the pages of any origin a publishable key allows."""
        response = super().finalize_response(request, response, *args, **kwargs)
        origin = request_origin(request)
        if request.method != "OPTIONS" and origin and origin in publishable_origins_list():
            for name, value in cors_headers(origin).items():
                response[name] = value
        return response


urlpatterns = [
    re_path(
        r"^(?:e|i/v0/e|batch|capture|track|engage)/?$",
        PostHogCaptureApi.as_view(),
        name="posthog-capture",
    ),
    re_path(r"^(?:flags|decide)/?$", PostHogFlagsApi.as_view(), name="posthog-flags"),
    re_path(r"^array/[^/]+/config/?$", PostHogFlagsApi.as_view(), name="posthog-config"),
]

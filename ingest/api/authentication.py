"""Bearer API-key authentication for ingest clients."""

from __future__ import annotations

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from ingest.models import ApiKey
from ingest.services import api_key_authenticate, auth_failure_record


class ApiKeyClient:
    """The principal of a request made with an API key (never an admin account)."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    def __str__(self) -> str:
        return f"api-key:{self.api_key.name}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticate ``Authorization: Bearer tgp_<prefix>_<secret>``."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiKeyClient, ApiKey] | None:
        """Return (client, key) for a valid key, None when no key was sent; raise on a bad key."""
        header = authentication.get_authorization_header(request).split()
        if not header:
            return None
        if header[0].decode("latin-1").lower() != self.keyword.lower() or len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "expected 'Authorization: Bearer <api key>'", code="invalid_authorization_header"
            )
        try:
            presented = header[1].decode("ascii")
        except UnicodeDecodeError:
            presented = ""
        outcome = api_key_authenticate(presented=presented)
        if outcome.api_key is None:
            auth_failure_record(
                code=outcome.code,
                presented=presented,
                client_address=request.META.get("REMOTE_ADDR", ""),
            )
            raise exceptions.AuthenticationFailed(outcome.message, code=outcome.code)
        return ApiKeyClient(outcome.api_key), outcome.api_key

    def authenticate_header(self, request: Request) -> str:
        """Return the WWW-Authenticate value, which makes DRF answer 401 rather than 403."""
        return self.keyword

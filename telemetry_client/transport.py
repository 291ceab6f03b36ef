"""HTTP transport: one persistent ``http.client`` connection, standard library only.

Only the client's sender thread uses a transport, so it is not locked. It connects
directly (no proxy handling, no redirects): a telemetry POST that is redirected or
proxied without the operator knowing is more likely a misconfiguration than intent.
"""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# Errors that mean "the request may not have reached the server / no answer came back":
# the batch is retried. http.client.HTTPException covers RemoteDisconnected,
# BadStatusLine, IncompleteRead, ...; OSError covers refused/reset/timeouts/DNS.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (http.client.HTTPException, OSError)


class TransportError(Exception):
    """No HTTP answer was obtained (connection refused/reset, timeout, bad response)."""


@dataclass(frozen=True)
class HttpResponse:
    """An HTTP answer: status, headers (lower-cased names) and body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class HttpTransport:
    """POSTs request bodies to one endpoint over a kept-alive connection."""

    def __init__(self, endpoint: str, *, timeout: float) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("endpoint must be an absolute http:// or https:// URL")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    self._host,
                    self._port,
                    timeout=self._timeout,
                    context=ssl.create_default_context(),
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
        return self._conn

    def post(self, body: bytes, headers: dict[str, str]) -> HttpResponse:
        """Send ``body``; return the answer (any status) or raise ``TransportError``."""
        conn = self._connection()
        # A kept-alive socket the server has since closed fails on first use; that says
        # nothing about the server's health, so reconnect once without counting a retry.
        reused = conn.sock is not None
        try:
            return self._exchange(conn, body, headers)
        except CONNECTION_ERRORS as exc:
            self.close()
            if not reused or isinstance(exc, TimeoutError):
                # A timeout is the server being slow, not a stale socket: do not wait twice.
                raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        try:
            return self._exchange(self._connection(), body, headers)
        except CONNECTION_ERRORS as exc:
            self.close()
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

    def _exchange(
        self, conn: http.client.HTTPConnection, body: bytes, headers: dict[str, str]
    ) -> HttpResponse:
        conn.request("POST", self._path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        answer = HttpResponse(
            status=response.status,
            headers={name.lower(): value for name, value in response.getheaders()},
            body=data,
        )
        if response.will_close:
            self.close()
        return answer

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

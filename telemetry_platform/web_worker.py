"""The gunicorn worker: gthread threads whose reads of a request time out (WEB_READ_TIMEOUT).

gunicorn's gthread worker hands a connection to a thread once its first bytes arrive;
from then on the thread reads the request line, headers and body with a blocking
socket and no timeout, so a client that sends part of a request and stalls holds the
thread for as long as it keeps the connection open. Here every read of a request has
a timeout (per read, like nginx's client_header_timeout and client_body_timeout: a
client that keeps sending is not cut off), and a body up to TELEMETRY_MAX_BODY_BYTES is
read before the application runs, so a stalled body is answered 408 by this worker
without reaching Django (which would make an unreadable body a 500).

A connection whose read timed out is shut for reading before it is closed: gunicorn
closes a connection on its main thread, lingering up to 2 s for the client to finish
sending (RFC 9112 section 9.6), and a stalled client never does, so each one would
stall the worker's accepting for those 2 s.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

logger = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def read_timeout_seconds() -> float:
    """WEB_READ_TIMEOUT: seconds one read of a request (headers or body) may wait."""
    return float(os.environ.get("WEB_READ_TIMEOUT", "10"))


_TIMEOUT_BODY = json.dumps(
    {
        "error": {
            "code": "request_timeout",
            "message": "the request body did not arrive in time",
        }
    }
).encode()


def body_read_first(app: WSGIApp, *, limit: int) -> WSGIApp:
    """Wrap ``app`` so a body of at most ``limit`` bytes is read before ``app`` runs.

    A read that times out (the socket's timeout, set by the worker) is answered 408 and
    the connection closed; ``app`` then never sees the request. Bodies declared larger
    than ``limit`` are left to ``app`` (the ingest endpoints refuse them unread; Django
    reads others under the same socket timeout, and one that stalls fails there); a
    chunked body is read up to ``limit + 1`` bytes, which is as far as ``app`` would.
    """

    def application(env: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = env.get("CONTENT_LENGTH") or ""
        chunked = not length and bool(env.get("wsgi.input_terminated"))
        if chunked or (length.isdigit() and 0 < int(length) <= limit):
            stream = env["wsgi.input"]
            try:
                if chunked:
                    parts, size = [], 0
                    while size <= limit and (part := stream.read(limit + 1 - size)):
                        parts.append(part)
                        size += len(part)
                    body = b"".join(parts)
                else:
                    body = stream.read(int(length))
            except TimeoutError:
                _stop_reading(env["gunicorn.socket"])
                # The path only: a query string can carry what a client searched for.
                logger.warning(
                    "request body read timed out: %s %s",
                    env.get("REQUEST_METHOD", ""),
                    env.get("PATH_INFO", ""),
                )
                start_response(
                    "408 Request Timeout",
                    [
                        ("Content-Type", "application/json"),
                        ("Content-Length", str(len(_TIMEOUT_BODY))),
                        ("Connection", "close"),
                    ],
                )
                return [_TIMEOUT_BODY]
            env["wsgi.input"] = io.BytesIO(body)
        return app(env, start_response)

    return application


def _stop_reading(sock: socket.socket) -> None:
    """Shut ``sock`` for reading: closing it then does not wait for the client."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)


class _HeadReadTimeout:
    """A connection's request parser whose read timeouts end the connection quietly.

    gunicorn logs an unexpected socket error, with its traceback, for a timeout while
    reading a request head; here the connection is shut for reading and ends as a
    client that went away does.
    """

    def __init__(self, parser: Any, sock: socket.socket) -> None:
        self._parser = parser
        self._sock = sock

    def __iter__(self) -> _HeadReadTimeout:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._parser)
        except TimeoutError:
            logger.info("request head read timed out")
            _stop_reading(self._sock)
            raise StopIteration from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)


class ReadTimeoutThreadWorker(ThreadWorker):
    """gthread, with a timeout on each read of a request and bodies read before the app."""

    def load_wsgi(self) -> None:
        """Load the app, then wrap it with :func:`body_read_first` (Django is set up now)."""
        super().load_wsgi()
        from telemetry_platform.conf import telemetry_settings

        self.wsgi = body_read_first(self.wsgi, limit=telemetry_settings.MAX_BODY_BYTES)

    def handle(self, conn: Any) -> Any:
        """Handle a request as gthread does, with the read timeout on the connection.

        gthread makes the socket blocking (no timeout) in ``conn.init()`` and again
        before each request on a kept-alive connection, just before reading it; the
        timeout is set right after that.
        """
        if not getattr(conn, "read_timeout_set", False):
            conn.read_timeout_set = True
            init = conn.init
            timeout = read_timeout_seconds()

            def init_with_timeout() -> None:
                init()
                conn.sock.settimeout(timeout)
                if conn.parser is not None and not isinstance(conn.parser, _HeadReadTimeout):
                    conn.parser = _HeadReadTimeout(conn.parser, conn.sock)

            conn.init = init_with_timeout
        return super().handle(conn)

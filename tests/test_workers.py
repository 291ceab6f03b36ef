"""Web workers a slow client cannot pin: the project's gunicorn, stalled uploads, /healthz."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

from ingest.models import Event
from tests.factories import audit_event, batch

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.django_db(transaction=True)

READ_TIMEOUT = 2  # WEB_READ_TIMEOUT for these servers, seconds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _gunicorn(*, workers: int, threads: int) -> Iterator[int]:
    """The project's gunicorn (its config file, as the Procfile runs it) on a free port."""
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        DJANGO_SETTINGS_MODULE="telemetry_platform.test_settings",
        DATABASE_URL=f"postgres://root@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        TEST_DATABASE_NAME=connection.settings_dict["NAME"],
        WEB_THREADS=str(threads),
        WEB_READ_TIMEOUT=str(READ_TIMEOUT),
    )
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "telemetry_platform.wsgi",
            "--config",
            "telemetry_platform/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--timeout",
            "30",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while _health(port, timeout=2)[0] != 200:
            assert process.poll() is None, "gunicorn exited"
            assert time.monotonic() < deadline, "gunicorn did not come up"
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _health(port: int, *, timeout: float) -> tuple[int | None, float]:
    """GET /healthz on a new connection: (status or None on no answer, seconds taken)."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = _read_all(sock)
    except OSError:
        return None, time.monotonic() - started
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else None
    return status, time.monotonic() - started


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _stalled_upload(port: int, secret: str) -> socket.socket:
    """An authenticated POST of a 5 MB batch: headers and first bytes sent, then nothing.

    (With a valid key the body is read; a refused key is answered without reading it.)
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {secret}\r\nContent-Length: 5200000\r\n\r\n".encode()
        + b'{"events": [{"schema": "telemetry.audit_event.v1", "payload": {"event_name": "'
    )
    return sock


def _stalled_headers(port: int) -> socket.socket:
    """A request line and part of the headers, then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
    return sock


def test_two_stalled_uploads_leave_the_health_check_answered(api_key):
    """With the Procfile's two workers, two uploads stalled mid-body (each would have held
    a sync worker until its timeout) leave /healthz answering at once."""
    with _gunicorn(workers=2, threads=8) as port:
        stalled = [_stalled_upload(port, api_key.secret) for _ in range(2)]
        try:
            time.sleep(0.5)  # both are inside a worker now, reading their bodies
            status, seconds = _health(port, timeout=READ_TIMEOUT - 0.5)
            assert status == 200
            assert seconds < 1.0
        finally:
            for sock in stalled:
                sock.close()


def test_stalled_uploads_beyond_the_threads_are_answered_408_and_the_threads_freed(api_key):
    """More stalled uploads than threads: each stalled body read times out after
    WEB_READ_TIMEOUT, is answered 408 (Django never sees it), and /healthz answers again."""
    with _gunicorn(workers=1, threads=2) as port:
        stalled = [_stalled_upload(port, api_key.secret) for _ in range(4)]
        try:
            started = time.monotonic()
            answers = [_read_all(sock) for sock in stalled]  # each ends when the server closes
            assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers), answers
            assert all(b'"code": "request_timeout"' in answer for answer in answers)
            # Two at a time (two threads): the last two time out after the first two.
            assert time.monotonic() - started < 3 * READ_TIMEOUT + 2
            status, seconds = _health(port, timeout=READ_TIMEOUT)
            assert status == 200 and seconds < 1.0
        finally:
            for sock in stalled:
                sock.close()


def test_a_stalled_request_head_is_closed_after_the_read_timeout(platform_config):
    """A client that stops inside its headers is disconnected after WEB_READ_TIMEOUT, and
    the thread it held serves /healthz again."""
    with _gunicorn(workers=1, threads=1) as port:
        sock = _stalled_headers(port)
        try:
            started = time.monotonic()
            assert _read_all(sock) == b""  # closed without an answer
            assert time.monotonic() - started < READ_TIMEOUT + 2
            status, seconds = _health(port, timeout=READ_TIMEOUT)
            assert status == 200 and seconds < 1.0
        finally:
            sock.close()


def test_a_slow_but_steady_upload_is_not_cut_off(platform_config, api_key):
    """The timeout is per read: a body sent in pieces, each within WEB_READ_TIMEOUT of the
    last (longer than one timeout in all), is read whole and its event stored."""
    body = json.dumps(batch(audit_event())).encode()
    pieces = 6
    step = len(body) // pieces + 1
    head = (
        "POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {api_key.secret}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with (
        _gunicorn(workers=1, threads=2) as port,
        socket.create_connection(("127.0.0.1", port), timeout=30) as sock,
    ):
        sock.sendall(head.encode())
        for start in range(0, len(body), step):
            time.sleep(READ_TIMEOUT * 0.6)  # 7.2 s in all: several timeouts long
            sock.sendall(body[start : start + step])
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert Event.objects.filter(source="control-service").count() == 1

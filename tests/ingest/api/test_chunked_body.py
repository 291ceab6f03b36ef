"""A chunked request body (no Content-Length) is read whole by the real WSGI server, bounded."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from ingest.models import Event
from ingest.services import api_key_create
from tests.factories import audit_event, batch

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn(platform_config, settings) -> Iterator[int]:
    """The project's gunicorn (its own config file) on a free port, on the test database."""
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        DJANGO_SETTINGS_MODULE="telemetry_platform.test_settings",
        DATABASE_URL=f"postgres://root@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        TEST_DATABASE_NAME=connection.settings_dict["NAME"],
        TELEMETRY_MAX_BODY_BYTES="20000",
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
            "1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


def _post_chunked(port: int, secret: str, body: bytes) -> tuple[int, dict]:
    connection_ = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    # An iterable body with encode_chunked: Transfer-Encoding: chunked, no Content-Length.
    chunks = (body[i : i + 1000] for i in range(0, len(body), 1000))
    connection_.request(
        "POST",
        "/api/v1/events",
        body=chunks,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {secret}"},
        encode_chunked=True,
    )
    response = connection_.getresponse()
    answer = json.loads(response.read())
    connection_.close()
    return response.status, answer


def test_a_chunked_body_is_ingested(gunicorn):
    """Without Content-Length, the body is still read to its end, and its events stored."""
    key = api_key_create(name="svc", source="svc", actor=None)
    body = json.dumps(batch(audit_event(), audit_event(), audit_event())).encode()
    status, answer = _post_chunked(gunicorn, key.secret, body)
    assert status == 200, answer
    assert [result["status"] for result in answer["results"]] == ["accepted"] * 3
    assert Event.objects.filter(source="svc").count() == 3


def test_a_chunked_body_beyond_the_limit_is_413(gunicorn):
    """The body limit holds for chunked bodies too: read up to it, then refused."""
    key = api_key_create(name="svc", source="svc", actor=None)
    events = [audit_event(attributes={"note": "x" * 500}) for _ in range(60)]
    body = json.dumps(batch(*events)).encode()
    assert len(body) > 20000
    status, answer = _post_chunked(gunicorn, key.secret, body)
    assert status == 413
    assert answer["error"]["code"] == "body_too_large"
    assert not Event.objects.filter(source="svc").exists()

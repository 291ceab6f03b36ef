"""Shared fixtures: the default configuration, API keys and a JSON client for the ingest API."""

from __future__ import annotations

import pytest

from governance.selectors import schema_plans
from governance.services import default_configuration_load
from ingest.services import api_key_create
from tests.factories import IngestClient


@pytest.fixture(autouse=True)
def _fresh_plan_cache():
    """Compiled plans must not leak from one test's database state into the next."""
    schema_plans.clear()
    yield
    schema_plans.clear()


@pytest.fixture(autouse=True)
def _empty_event_store_after_transactional_tests(request, django_db_blocker):
    """The event table is unmanaged, so Django's flush skips it: empty it ourselves."""
    yield
    transactional = {"transactional_db", "live_server"} & set(request.fixturenames)
    marker = request.node.get_closest_marker("django_db")
    if transactional or (marker and marker.kwargs.get("transaction")):
        from django.db import connection

        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("TRUNCATE ingest_event")


@pytest.fixture
def platform_config(db):
    """The default governance configuration, as `manage.py bootstrap` loads it."""
    return default_configuration_load()


@pytest.fixture
def api_key(platform_config):
    """A fresh ingest API key (with its one-time secret)."""
    return api_key_create(name="control-service", source="control-service", actor=None)


@pytest.fixture
def ingest_client(client, api_key) -> IngestClient:
    return IngestClient(client, api_key.secret)


@pytest.fixture
def empty_broker(settings):
    """A broker with no tasks left over (a SIGKILLed worker leaves its task unacknowledged)."""
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    yield
    client.flushdb()


def pytest_addoption(parser):
    """``--screenshots``: browser tests that take README screenshots write docs/screenshots."""
    parser.addoption(
        "--screenshots",
        action="store_true",
        default=False,
        help="write README screenshots into docs/screenshots/ (tests/browser/session.py)",
    )

"""Verified API keys are reused for a bounded time; changes made elsewhere apply within it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ingest import services
from ingest.models import ApiKey
from ingest.services import api_key_authenticate, api_key_revoke, api_key_scope_update

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    services.api_key_cache_forget()
    yield
    services.api_key_cache_forget()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(services.time, "monotonic", clock)
    return clock


def test_a_verified_key_is_not_read_again_within_the_bound(api_key, settings, clock):
    """Within TELEMETRY_API_KEY_CACHE_SECONDS the key costs no query; the secret is still
    checked every time."""
    settings.TELEMETRY_API_KEY_CACHE_SECONDS = 5
    assert api_key_authenticate(presented=api_key.secret).api_key is not None
    with CaptureQueriesContext(connection) as queries:
        assert api_key_authenticate(presented=api_key.secret).api_key is not None
        wrong = api_key.secret[:-2] + ("aa" if not api_key.secret.endswith("aa") else "bb")
        assert api_key_authenticate(presented=wrong).code == "invalid_api_key"
    assert len(queries) == 0


def test_revocation_elsewhere_applies_within_the_bound(api_key, settings, clock):
    """A key revoked by another process (the row changes, this cache does not hear of it)
    is refused once the cached row is older than the bound."""
    settings.TELEMETRY_API_KEY_CACHE_SECONDS = 1
    assert api_key_authenticate(presented=api_key.secret).api_key is not None
    ApiKey.objects.filter(pk=api_key.api_key.pk).update(revoked_at=timezone.now())
    clock.now += 0.5
    assert api_key_authenticate(presented=api_key.secret).api_key is not None
    clock.now += 0.6
    assert api_key_authenticate(presented=api_key.secret).code == "revoked_api_key"


def test_revocation_and_scope_changes_here_apply_at_once(api_key, settings, clock):
    """The services that revoke or re-scope a key forget it in their own process."""
    settings.TELEMETRY_API_KEY_CACHE_SECONDS = 60
    assert api_key_authenticate(presented=api_key.secret).api_key.allowed_sources == []
    api_key_scope_update(api_key=api_key.api_key, actor=None, allowed_sources=["web"])
    assert api_key_authenticate(presented=api_key.secret).api_key.allowed_sources == ["web"]
    api_key_revoke(api_key=api_key.api_key, actor=None)
    assert api_key_authenticate(presented=api_key.secret).code == "revoked_api_key"


def test_expiry_is_checked_on_every_request(api_key, settings, clock, monkeypatch):
    """A cached key whose expiry passes is refused at once."""
    settings.TELEMETRY_API_KEY_CACHE_SECONDS = 60
    ApiKey.objects.filter(pk=api_key.api_key.pk).update(
        expires_at=timezone.now() + timedelta(minutes=5)
    )
    assert api_key_authenticate(presented=api_key.secret).api_key is not None
    later = timezone.now() + timedelta(minutes=6)
    monkeypatch.setattr(services.timezone, "now", lambda: later)
    assert api_key_authenticate(presented=api_key.secret).code == "expired_api_key"


def test_without_a_cache_every_request_reads_the_key(api_key, settings):
    """TELEMETRY_API_KEY_CACHE_SECONDS = 0: the row is read on every request."""
    settings.TELEMETRY_API_KEY_CACHE_SECONDS = 0
    assert api_key_authenticate(presented=api_key.secret).api_key is not None
    ApiKey.objects.filter(pk=api_key.api_key.pk).update(revoked_at=timezone.now())
    assert api_key_authenticate(presented=api_key.secret).code == "revoked_api_key"


def test_last_used_is_written_at_most_once_a_minute(api_key, settings, clock, monkeypatch):
    """Cached or not, last-used is recorded once, then not again for a minute."""
    settings.TELEMETRY_API_KEY_CACHE_SECONDS = 3600
    start = timezone.now()
    monkeypatch.setattr(services.timezone, "now", lambda: start)
    api_key_authenticate(presented=api_key.secret)
    assert ApiKey.objects.get(pk=api_key.api_key.pk).last_used_at == start
    with CaptureQueriesContext(connection) as queries:
        for seconds in (10, 50):
            moment = start + timedelta(seconds=seconds)
            monkeypatch.setattr(services.timezone, "now", lambda moment=moment: moment)
            api_key_authenticate(presented=api_key.secret)
    assert len(queries) == 0
    later = start + timedelta(seconds=61)
    monkeypatch.setattr(services.timezone, "now", lambda: later)
    api_key_authenticate(presented=api_key.secret)
    assert ApiKey.objects.get(pk=api_key.api_key.pk).last_used_at == later

"""The per-process plan cache under threads (gthread workers serve several requests at once)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from governance.defaults import PLATFORM_AUDIT_SCHEMA
from governance.plans import SchemaPlan
from governance.selectors import SchemaPlanCache
from governance.services import default_configuration_load


@pytest.mark.django_db(transaction=True)
def test_a_thread_arriving_during_a_refresh_sees_the_loaded_index(monkeypatch):
    """While one thread loads the schema index, another asking for a plan waits for it
    instead of taking the old, empty index as fresh (that answered unknown_schema to the
    first requests of every new gthread worker)."""
    default_configuration_load()
    cache = SchemaPlanCache()
    loading, release = threading.Event(), threading.Event()
    real_load = SchemaPlanCache._load_index

    def slow_load():
        loading.set()
        assert release.wait(10)
        return real_load()

    monkeypatch.setattr(SchemaPlanCache, "_load_index", staticmethod(slow_load))
    seen: dict[str, object] = {}

    def first() -> None:
        try:
            cache.refresh()
        finally:
            connection.close()

    def second() -> None:
        try:
            cache.refresh()
            seen["plan"] = cache.get(PLATFORM_AUDIT_SCHEMA)
        finally:
            connection.close()

    loader = threading.Thread(target=first)
    loader.start()
    assert loading.wait(10)
    reader = threading.Thread(target=second)
    reader.start()
    reader.join(0.5)  # with the bug it returns at once, with no plan
    release.set()
    loader.join(10)
    reader.join(10)
    assert isinstance(seen.get("plan"), SchemaPlan)

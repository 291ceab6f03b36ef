"""Retention with real Celery workers through Redis: concurrent ingest, and a killed purge."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection

from ingest import pipeline
from ingest.models import Event, PurgeRun
from ingest.retention import INTERRUPTED_ERROR
from ingest.tasks import purge_expired_events
from telemetry_platform.celery import app as celery_app
from tests.factories import AUDIT_SCHEMA, audit_event, batch, iso

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def store_old(count: int, *, days: int = 450) -> None:
    """Bulk-store events that aged past the audit retention (received back then)."""
    occurred = datetime.now(UTC) - timedelta(days=days)
    items = [
        pipeline.RawItem(
            AUDIT_SCHEMA,
            {
                "event_name": f"old.{n}",
                "outcome": "success",
                "occurred_at": iso(occurred + timedelta(seconds=n)),
            },
        )
        for n in range(count)
    ]
    context = pipeline.IngestContext(source="aged", received_at=occurred + timedelta(days=1))
    for start in range(0, count, 500):
        result = pipeline.ingest_batch(items[start : start + 500], context)
        assert result.totals()["accepted"] == len(items[start : start + 500])


def test_purge_runs_alongside_ingest_without_errors_or_lost_events(
    platform_config, ingest_client, settings, empty_broker
):
    """While a worker purges in small batches, ingest keeps answering and loses nothing."""
    settings.TELEMETRY_PURGE_BATCH_SIZE = 50
    settings.TELEMETRY_PURGE_BATCH_PAUSE_SECONDS = 0.01
    store_old(1500)
    accepted = []
    errors = []

    def ingest_loop():
        for round_number in range(20):
            response = ingest_client.post(
                batch(*(audit_event(event_name=f"live.{round_number}.{i}") for i in range(10)))
            )
            if response.status_code != 200:
                errors.append(response.status_code)
            else:
                accepted.extend(
                    r["event_id"] for r in response.json()["results"] if r["status"] == "accepted"
                )

    with start_worker(
        celery_app,
        pool="solo",
        perform_ping_check=False,
        queues=["maintenance"],
        shutdown_timeout=20,
    ):
        task = purge_expired_events.delay("audit_event", "test")
        ingest_loop()
        deleted = task.get(timeout=120)
    assert errors == []
    assert len(accepted) == 200
    assert deleted["audit_event"] == 1500
    assert Event.objects.filter(source="aged").count() == 0
    stored = set(Event.objects.filter(source="control-service").values_list("event_id", flat=True))
    assert set(accepted) <= stored


def interrupted_in_admin(admin_client, run: PurgeRun, *, within: float) -> bool:
    """Whether the purge runs page shows ``run`` as interrupted within ``within`` seconds."""
    cell = f'<a href="/admin/ingest/purgerun/{run.pk}/change/">'
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        page = admin_client.get("/admin/ingest/purgerun/").content.decode()
        row = page[page.index(cell) :].split("</tr>", 1)[0]
        if '<td class="field-status">Interrupted</td>' in row:
            return True
        time.sleep(0.1)
    return False


def test_a_killed_purge_leaves_consistent_data_and_the_next_run_finishes(
    platform_config, empty_broker, admin_client
):
    """SIGKILL the worker mid-purge: every batch is all-or-nothing; the run shows as
    interrupted at once (no need to wait for the next purge); the next run completes."""
    store_old(1200)
    store_recent = pipeline.ingest_batch(
        [pipeline.RawItem(AUDIT_SCHEMA, audit_event(event_name="keep.me"))],
        pipeline.IngestContext(source="aged"),
    )
    assert store_recent.totals()["accepted"] == 1
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "telemetry_platform.test_settings",
        "DATABASE_URL": f"postgres://root@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        "TELEMETRY_PURGE_BATCH_SIZE": "100",
        "TELEMETRY_PURGE_BATCH_PAUSE_SECONDS": "0.3",
        "TEST_DATABASE_NAME": connection.settings_dict["NAME"],
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "telemetry_platform",
            "worker",
            "--pool",
            "solo",
            "--queues",
            "maintenance",
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        purge_expired_events.delay("audit_event", "test-killed")
        deadline = time.monotonic() + 60
        run = None
        while time.monotonic() < deadline:
            run = PurgeRun.objects.filter(triggered_by="test-killed").first()
            if run and run.rows_deleted >= 200:
                break
            time.sleep(0.1)
        assert run is not None and run.rows_deleted >= 200
        # While its worker lives, the run is shown running (the page marks nothing).
        admin_client.get("/admin/ingest/purgerun/")
        run.refresh_from_db()
        assert run.status == PurgeRun.Status.RUNNING
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    # The dead worker's session (and its class lock) is gone once PostgreSQL sees the
    # socket close; no other purge has run.
    assert interrupted_in_admin(admin_client, run, within=15)
    run.refresh_from_db()
    assert (run.status, run.error) == (PurgeRun.Status.INTERRUPTED, INTERRUPTED_ERROR)
    assert run.finished_at is not None
    assert PurgeRun.objects.count() == 1
    remaining = Event.objects.filter(source="aged", payload__event_name__startswith="old.").count()
    assert 0 < remaining < 1200
    # Whole batches only; the record lags at most the one batch committed before the kill.
    gone = 1200 - remaining
    assert gone % 100 == 0
    assert gone - run.rows_deleted in (0, 100)
    from ingest.services import events_purge_expired

    events_purge_expired(event_class="audit_event", triggered_by="test-resume")
    run.refresh_from_db()
    assert run.status == PurgeRun.Status.INTERRUPTED
    assert Event.objects.filter(source="aged", payload__event_name__startswith="old.").count() == 0
    assert Event.objects.filter(payload__event_name="keep.me").count() == 1
    assert PurgeRun.objects.get(triggered_by="test-resume").status == PurgeRun.Status.SUCCEEDED

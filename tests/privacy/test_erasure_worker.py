"""Erasure in real Celery workers: a SIGKILLed run resumes and completes; ingest racing it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.db import connection
from django.utils import timezone

from governance.roles import PRIVACY_OFFICER
from ingest.models import AuditChainTombstone, Event
from privacy.models import SubjectRequest
from privacy.services import subject_request_approve, subject_request_submit
from privacy.tasks import erase_subject, resume_erasures
from telemetry_platform.celery import app as celery_app
from tests.factories import audit_event, batch, user_with_role
from tests.privacy.test_erasure import ALICE, class_counts, store_subject, verify_chains

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
DONE = (SubjectRequest.Status.COMPLETED, SubjectRequest.Status.RETAINED)


@pytest.fixture
def officers(platform_config):
    return user_with_role("olga", PRIVACY_OFFICER), user_with_role("pete", PRIVACY_OFFICER)


def _worker_process() -> subprocess.Popen:
    """A Celery worker in its own process (so it can be SIGKILLed), on this test database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "telemetry_platform.test_settings",
        "DATABASE_URL": f"postgres://root@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        "TEST_DATABASE_NAME": connection.settings_dict["NAME"],
        "TELEMETRY_PLAN_REFRESH_SECONDS": "0.2",
        "TELEMETRY_DB_STATEMENT_TIMEOUT_MS": "500",
    }
    return subprocess.Popen(
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


def _stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)


def _wait_for(request: SubjectRequest, predicate, *, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        request.refresh_from_db()
        if predicate(request):
            return True
        time.sleep(0.1)
    return False


def test_a_sigkilled_erasure_resumes_in_a_new_worker_and_completes(
    officers, empty_broker, settings, capsys
):
    """kill -9 the worker mid-erasure (batches of 2 rows, 0.3 s apart): the rows erased so
    far are gone batch by batch and the request stays running; a new worker asked by
    resume_erasures finishes it: none of the subject's rows left, the other subject's all
    kept, the certificate counts every row once, and the audit chain verifies."""
    settings.TELEMETRY_PLAN_REFRESH_SECONDS = 0.2
    settings.TELEMETRY_DB_STATEMENT_TIMEOUT_MS = 500
    olga, pete = officers
    alice = store_subject("alice")
    bob = store_subject("bob")
    request = subject_request_submit(kind="erasure", identifiers=ALICE, reason="r", actor=olga)
    subject_request_approve(request=request, actor=pete)
    # The approval queued a run with the default batch size; replace it by a run in
    # batches of two rows so the kill lands mid-way.
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    worker = _worker_process()
    try:
        erase_subject.delay(request.pk, batch_size=2, pause_seconds=0.3)
        assert _wait_for(request, lambda r: r.rows_erased >= 6, within=60)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    request.refresh_from_db()
    assert request.status == SubjectRequest.Status.RUNNING
    remaining = sum(subject_rows(request.subject_hashes).values())
    # Whole batches: the progress recorded is exactly what is gone.
    assert remaining == sum(alice.values()) - request.rows_erased > 0
    erased_before_kill = request.rows_erased

    worker = _worker_process()
    try:
        # The dead worker's session (holding the request's lock) ends when PostgreSQL sees
        # its socket close; until then the resumed run answers "locked" and is asked again.
        deadline = time.monotonic() + 60
        resumed: list[int] = []
        while time.monotonic() < deadline:
            resumed = resume_erasures.delay().get(timeout=30)
            if _wait_for(request, lambda r: r.status in DONE, within=5):
                break
        assert resumed == [request.pk]
    finally:
        _stop(worker)
    assert request.status == SubjectRequest.Status.COMPLETED
    assert subject_rows(request.subject_hashes) == {}
    certificate = request.certificate
    assert certificate["rows_erased"] == sum(alice.values()) > erased_before_kill
    before = {cls: sum(days.values()) for cls, days in certificate["counts_before"].items()}
    assert before == alice
    assert certificate["counts_after"] == {}
    assert certificate["rows_retained"] == 0
    bob_rows = {
        **class_counts(event_id__startswith="env-dev-bob"),
        **class_counts(event_id__startswith="env-m-bob"),
        **class_counts(payload__event_name__startswith="auth.bob."),
    }
    assert bob_rows == bob
    assert AuditChainTombstone.objects.filter(erased_by=request.reference).count() == 12
    code, out = verify_chains(capsys)
    assert code == 0, out


def subject_rows(hashes) -> dict[str, int]:
    """The subject's stored rows per class, found by the GIN-indexed hashes."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_class, count(*) FROM ingest_event "
            "WHERE subject_hashes && %s::text[] GROUP BY 1",
            [list(hashes)],
        )
        return dict(cursor.fetchall())


def _post(url: str, secret: str, body: dict) -> dict:
    data = json.dumps(body).encode()
    call = urllib.request.Request(  # noqa: S310 (the live test server)
        url,
        data=data,
        method="POST",
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(call, timeout=10) as answer:  # noqa: S310 (local server)
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return {"http_status": exc.code}


def test_ingest_racing_an_erasure_leaves_no_row_of_the_subject(
    officers, api_key, live_server, empty_broker, settings
):
    """Alice's and Bob's events are posted to the live endpoint without pause before,
    during and after Alice's erasure. The approval suppresses Alice: within the plan
    refresh her events are refused with ``suppressed``; the ones accepted in the moment
    before the processes refreshed are swept by the erasure's last pass. At the end no row
    of Alice survives (whenever it was accepted) and every accepted event of Bob is stored."""
    settings.TELEMETRY_PLAN_REFRESH_SECONDS = 0.3
    settings.TELEMETRY_DB_STATEMENT_TIMEOUT_MS = 500
    olga, pete = officers
    store_subject("alice", days=5, per_day=10)
    url = f"{live_server.url}/api/v1/events"
    answers: list[tuple[datetime, str, dict]] = []
    errors: list[dict] = []
    stop = threading.Event()

    def ingest_loop() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            sent_at = timezone.now()
            body = batch(
                audit_event(user_id="alice", event_name=f"live.alice.{number}"),
                audit_event(user_id="bob", event_name=f"live.bob.{number}"),
            )
            answer = _post(url, api_key.secret, body)
            if "results" not in answer:
                errors.append(answer)
                continue
            for person, result in zip(("alice", "bob"), answer["results"], strict=True):
                answers.append((sent_at, person, result))

    thread = threading.Thread(target=ingest_loop, daemon=True)
    request = subject_request_submit(kind="erasure", identifiers=ALICE, reason="r", actor=olga)
    with start_worker(celery_app, pool="solo", perform_ping_check=False, queues=["maintenance"]):
        thread.start()
        time.sleep(0.5)
        subject_request_approve(request=request, actor=pete)
        assert _wait_for(request, lambda r: r.status in DONE, within=60)
        time.sleep(0.5)
        stop.set()
        thread.join(timeout=20)
    assert errors == []
    request.refresh_from_db()
    suppressed_at = request.suppressed_at
    alice_answers = [(sent, r) for sent, person, r in answers if person == "alice"]
    accepted_before = [r for sent, r in alice_answers if r["status"] == "accepted"]
    refused_after = [
        r
        for sent, r in alice_answers
        if sent > suppressed_at + timedelta(seconds=settings.TELEMETRY_PLAN_REFRESH_SECONDS)
    ]
    assert accepted_before, "some of Alice's events were accepted before the suppression"
    assert refused_after, "the loop kept posting after the suppression took effect"
    assert {(r["status"], r.get("code")) for r in refused_after} == {("rejected", "suppressed")}
    # None of Alice's rows survives, accepted before or after the suppression point.
    assert subject_rows(request.subject_hashes) == {}
    assert Event.objects.filter(payload__event_name__startswith="live.alice.").count() == 0
    bob_accepted = {r["event_id"] for _, person, r in answers if person == "bob"}
    assert all(r["status"] == "accepted" for _, person, r in answers if person == "bob")
    stored_bob = set(
        Event.objects.filter(payload__event_name__startswith="live.bob.").values_list(
            "event_id", flat=True
        )
    )
    assert bob_accepted == stored_bob
    assert request.certificate["counts_after"] == {}
    assert datetime.fromisoformat(request.certificate["suppressed_at"]) == suppressed_at.astimezone(
        UTC
    )

"""Data-subject erasure with a real Celery worker: across classes, holds kept, chain verified."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from celery.contrib.testing.worker import start_worker
from django.core.management import call_command
from django.db import connection

from governance.models import EventClass
from governance.roles import PRIVACY_OFFICER
from governance.services import legal_hold_create, legal_hold_release
from ingest import pipeline
from ingest.models import AuditChainTombstone, Event
from privacy.erasure import _lock_key, certificate_valid, subject_request_erase
from privacy.models import SubjectRequest
from privacy.services import SubjectRequestError, subject_request_approve, subject_request_submit
from privacy.tasks import erase_subject
from telemetry_platform.celery import app as celery_app
from tests.audit_helpers import platform_audit_events
from tests.factories import AUDIT_SCHEMA, iso, user_with_role

pytestmark = pytest.mark.django_db(transaction=True)
DIAGNOSTIC = "telemetry.client_diagnostic.v1"
METRIC = "telemetry.service_metric.v1"
ALICE = {"user_id": ["alice"], "device_id": ["dev-alice"], "session_id": ["sess-alice"]}


def _envelope(number: int, when: datetime, *, device: str, session: str) -> dict:
    return {
        "event_id": f"env-{device}-{number}",
        "occurred_at": iso(when),
        "source": "app",
        "correlation": {"device_id": device, "session_id": session},
    }


def store_subject(person: str, *, days: int = 3, per_day: int = 4) -> dict[str, int]:
    """Events of ``person`` in three classes over ``days`` days; return the count per class."""
    now = datetime.now(UTC).replace(microsecond=0)
    items = []
    for day in range(days):
        for number in range(per_day):
            when = now - timedelta(days=day, minutes=number + 1)
            items.append(
                pipeline.RawItem(
                    AUDIT_SCHEMA,
                    {
                        "event_name": f"auth.{person}.{day}.{number}",
                        "outcome": "success",
                        "occurred_at": iso(when),
                        "user_id": person,
                    },
                )
            )
            items.append(
                pipeline.RawItem(
                    DIAGNOSTIC,
                    {
                        "envelope": _envelope(
                            day * 100 + number, when, device=f"dev-{person}", session="x"
                        ),
                        "name": "crash",
                    },
                )
            )
            items.append(
                pipeline.RawItem(
                    METRIC,
                    {
                        "envelope": _envelope(
                            day * 100 + number + 50,
                            when,
                            device=f"m-{person}",
                            session=f"sess-{person}",
                        ),
                        "name": "sync.retries",
                        "kind": "KIND_COUNTER",
                        "value": 1,
                    },
                )
            )
    result = pipeline.ingest_batch(items, pipeline.IngestContext(source="app"))
    assert result.totals()["rejected"] == 0, result.as_dict()
    return {
        "audit_event": days * per_day,
        "client_diagnostic": days * per_day,
        "service_metric": days * per_day,
    }


def class_counts(**filters) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event_class in Event.objects.filter(**filters).values_list("event_class", flat=True):
        counts[event_class] = counts.get(event_class, 0) + 1
    return counts


def verify_chains(capsys) -> tuple[int, str]:
    try:
        call_command("verify_audit_chain")
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().out


@pytest.fixture
def officers(platform_config):
    return user_with_role("olga", PRIVACY_OFFICER), user_with_role("pete", PRIVACY_OFFICER)


def test_an_erasure_removes_the_subject_across_classes_keeps_held_rows_and_the_chain(
    officers, empty_broker, settings, capsys
):
    """A worker erases every unheld row of the subject in audit_event, client_diagnostic
    and service_metric; another subject's rows are untouched; rows under a legal hold are
    kept and listed, then erased once the hold is released; verify_audit_chain passes
    (erased audit rows are tombstones) and the certificate's digest verifies."""
    settings.TELEMETRY_PLAN_REFRESH_SECONDS = 0.2
    settings.TELEMETRY_DB_STATEMENT_TIMEOUT_MS = 500
    olga, pete = officers
    alice = store_subject("alice")
    bob = store_subject("bob")
    held_from = datetime.now(UTC) - timedelta(days=1, hours=1)
    hold = legal_hold_create(
        reason="litigation 7",
        owner=pete,
        event_class=EventClass.objects.get(name="client_diagnostic"),
        occurred_from=held_from,
        occurred_to=held_from + timedelta(hours=2),
    )
    request = subject_request_submit(
        kind="erasure", identifiers=ALICE, reason="art. 17 request", ticket="DSR-1", actor=olga
    )
    assert request.status == SubjectRequest.Status.PROPOSED
    with start_worker(celery_app, pool="solo", perform_ping_check=False, queues=["maintenance"]):
        subject_request_approve(request=request, actor=pete)
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while datetime.now(UTC) < deadline:
            request.refresh_from_db()
            if request.status in (SubjectRequest.Status.RETAINED, SubjectRequest.Status.COMPLETED):
                break
    assert request.status == SubjectRequest.Status.RETAINED
    certificate = request.certificate
    assert certificate_valid(certificate, request.certificate_digest)
    assert not certificate_valid({**certificate, "rows_erased": 0}, request.certificate_digest)
    before = {cls: sum(days.values()) for cls, days in certificate["counts_before"].items()}
    assert before == alice
    assert certificate["retained"] == [
        {
            "hold": hold.pk,
            "reason": "litigation 7",
            "rows": 4,
            "per_class": {"client_diagnostic": 4},
        }
    ]
    assert certificate["rows_erased"] == sum(alice.values()) - 4
    assert certificate["counts_after"] == {
        "client_diagnostic": {(held_from + timedelta(hours=1)).date().isoformat(): 4}
    }
    # Bob's rows all stay; of Alice's only the held ones.
    bob_rows = {
        **class_counts(event_id__startswith="env-dev-bob"),
        **class_counts(event_id__startswith="env-m-bob"),
        **class_counts(payload__event_name__startswith="auth.bob."),
    }
    assert bob_rows == bob
    assert class_counts(payload__event_name__startswith="auth.alice.") == {}
    hashes = list(request.subject_hashes)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_class, count(*) FROM ingest_event WHERE subject_hashes && %s GROUP BY 1",
            [hashes],
        )
        assert dict(cursor.fetchall()) == {"client_diagnostic": 4}
    assert AuditChainTombstone.objects.filter(erased_by=request.reference).count() == 12
    code, out = verify_chains(capsys)
    assert code == 0, out
    certified = platform_audit_events("privacy.erasure.certified")
    assert certified.count() == 1
    assert certified.get().payload["attributes"]["certificate_digest"] == request.certificate_digest
    # Released, the held rows go at the next run (the beat's resume).
    legal_hold_release(hold=hold, actor=pete)
    subject_request_erase(request_id=request.pk)
    request.refresh_from_db()
    assert request.status == SubjectRequest.Status.COMPLETED
    assert request.certificate["counts_after"] == {}
    assert request.certificate["retained"] == []
    assert class_counts(event_id__startswith="env-dev-alice") == {}
    code, out = verify_chains(capsys)
    assert code == 0, out


def test_tampering_after_an_erasure_is_still_caught(officers, settings, capsys):
    """With tombstones in a chain, an edited tombstone and an edited surviving row are
    both reported."""
    settings.TELEMETRY_PLAN_REFRESH_SECONDS = 0.1
    settings.TELEMETRY_DB_STATEMENT_TIMEOUT_MS = 100
    olga, pete = officers
    store_subject("alice", days=1)
    store_subject("bob", days=1)
    request = subject_request_submit(kind="erasure", identifiers=ALICE, reason="r", actor=olga)
    subject_request_approve(request=request, actor=pete)
    subject_request_erase(request_id=request.pk)
    assert verify_chains(capsys)[0] == 0
    tombstone = AuditChainTombstone.objects.first()
    AuditChainTombstone.objects.filter(pk=tombstone.pk).update(erased_by="subject-request:999")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ingest_event SET payload = jsonb_set(payload, '{outcome}', '\"failure\"') "
            "WHERE payload->>'event_name' = 'auth.bob.0.0'"
        )
    code, out = verify_chains(capsys)
    assert code != 0
    assert "tombstone_altered" in out
    assert "altered" in out.replace("tombstone_altered", "")


def test_an_erasure_needs_another_persons_approval(officers):
    """The requester cannot approve their own erasure, and an unapproved erasure does
    not run."""
    olga, _pete = officers
    request = subject_request_submit(kind="erasure", identifiers=ALICE, reason="r", actor=olga)
    with pytest.raises(SubjectRequestError) as refused:
        subject_request_approve(request=request, actor=olga)
    assert refused.value.code == "four_eyes"
    with pytest.raises(ValueError, match="not an approved erasure"):
        subject_request_erase(request_id=request.pk)
    request.refresh_from_db()
    assert request.status == SubjectRequest.Status.PROPOSED


def test_an_erasure_that_finds_nothing_still_ends_with_a_certificate(officers, settings):
    """Unknown identifiers: nothing erased, and a certificate saying so."""
    settings.TELEMETRY_PLAN_REFRESH_SECONDS = 0.1
    settings.TELEMETRY_DB_STATEMENT_TIMEOUT_MS = 100
    olga, pete = officers
    store_subject("bob", days=1)
    request = subject_request_submit(
        kind="erasure", identifiers={"email": ["nobody@example.test"]}, reason="r", actor=olga
    )
    subject_request_approve(request=request, actor=pete)
    done = subject_request_erase(request_id=request.pk)
    assert done.status == SubjectRequest.Status.COMPLETED
    assert done.certificate["found_nothing"] is True
    assert done.certificate["rows_erased"] == 0
    assert done.certificate["counts_before"] == {} == done.certificate["counts_after"]
    assert "nobody@example.test" not in str(done.certificate)
    assert sha256_hex("nobody@example.test") in done.certificate["subject_hashes"]
    assert Event.objects.filter(event_class="audit_event").exclude(source="platform").count() == 4


def test_a_duplicate_of_a_completed_erasure_changes_nothing(officers, settings):
    """The same erasure run again after it completed (queued twice, redelivered) returns it as
    it is: the certificate, its digest and the audit trail stay those of the one run."""
    settings.TELEMETRY_PLAN_REFRESH_SECONDS = 0.1
    settings.TELEMETRY_DB_STATEMENT_TIMEOUT_MS = 100
    olga, pete = officers
    store_subject("alice", days=1)
    request = subject_request_submit(kind="erasure", identifiers=ALICE, reason="r", actor=olga)
    subject_request_approve(request=request, actor=pete)
    done = subject_request_erase(request_id=request.pk)
    certified = Event.objects.filter(payload__event_name="privacy.erasure.certified").count()

    again = subject_request_erase(request_id=request.pk)

    assert again.status == SubjectRequest.Status.COMPLETED
    assert (again.certificate, again.certificate_digest, again.finished_at) == (
        done.certificate, done.certificate_digest, done.finished_at
    )
    assert Event.objects.filter(payload__event_name="privacy.erasure.certified").count() == (
        certified
    ) == 1


def sha256_hex(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def test_a_running_erasure_is_not_run_twice(officers):
    """While another session (a worker) holds the request's lock, a second run returns at
    once and erases nothing."""
    olga, pete = officers
    store_subject("alice", days=1)
    request = subject_request_submit(kind="erasure", identifiers=ALICE, reason="r", actor=olga)
    subject_request_approve(request=request, actor=pete)
    other = psycopg.connect(
        dbname=connection.settings_dict["NAME"], host="127.0.0.1", user="root", autocommit=True
    )
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [_lock_key(request.pk)])
        assert erase_subject.apply(args=[request.pk]).get() == "locked"
    finally:
        other.close()
    assert class_counts(payload__event_name__startswith="auth.alice.") == {"audit_event": 4}

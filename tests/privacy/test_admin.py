"""Subject requests in the admin: create, list, detail, approve, downloads; raw ids never shown."""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection

from governance.models import EventClass
from governance.roles import PRIVACY_OFFICER, SECURITY_ANALYST
from governance.services import legal_hold_create
from privacy.erasure import certificate_valid, subject_request_erase
from privacy.models import SubjectRequest
from privacy.services import subject_request_submit
from tests.audit_helpers import platform_audit_events
from tests.factories import user_with_role
from tests.privacy.test_erasure import ALICE, store_subject

pytestmark = pytest.mark.django_db(transaction=True)
LIST = "/admin/privacy/subjectrequest/"
ADD = LIST + "add/"
# Raw values that must never come back in a page, a log line or a stored row.
RAW = ("alice", "dev-alice", "sess-alice", "Alice.Person@Example.test")


def detail(pk: int) -> str:
    return f"{LIST}{pk}/change/"


@pytest.fixture
def people(platform_config, settings):
    settings.TELEMETRY_PLAN_REFRESH_SECONDS = 0.1
    settings.TELEMETRY_DB_STATEMENT_TIMEOUT_MS = 100
    return (
        user_with_role("olga", PRIVACY_OFFICER),
        user_with_role("pete", PRIVACY_OFFICER),
        user_with_role("ana", SECURITY_ANALYST),
    )


def as_user(client, user):
    client.force_login(user)
    return client


def form_data(**overrides) -> dict[str, str]:
    return {
        "kind": "erasure",
        "user_id": "alice",
        "email": "Alice.Person@Example.test",
        "device_id": "dev-alice",
        "session_id": "sess-alice\n",
        "org_id": "",
        "reason": "art. 17 request by e-mail",
        "ticket": "DSR-42",
        **overrides,
    }


def assert_no_raw(text: str) -> None:
    lowered = text.lower()
    for value in RAW:
        assert value.lower() not in lowered, value


def stored_text() -> str:
    """Everything the platform stored about requests: the requests, the admin's log, the
    platform audit events (their attributes)."""
    parts = [json.dumps(list(SubjectRequest.objects.values()), default=str)]
    parts.append(json.dumps(list(LogEntry.objects.values()), default=str))
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload::text FROM ingest_event WHERE source = 'platform'")
        parts.extend(row[0] for row in cursor.fetchall())
    return "\n".join(parts)


def test_an_officer_creates_a_request_from_raw_identifiers_never_stored_or_echoed(
    people, client, caplog
):
    """The form hashes the identifiers (the request keeps only hashes and which kinds were
    given); no response, log record or stored row carries a raw value."""
    olga, _pete, _ana = people
    caplog.set_level(logging.DEBUG)
    browser = as_user(client, olga)
    form = browser.get(ADD)
    assert form.status_code == 200
    assert b'name="email"' in form.content
    answer = browser.post(ADD, form_data(), follow=True)
    assert answer.status_code == 200
    request = SubjectRequest.objects.get()
    assert answer.redirect_chain[-1][0] == detail(request.pk)
    assert (request.kind, request.status, request.ticket) == ("erasure", "proposed", "DSR-42")
    assert request.identifier_kinds == ["device_id", "email", "session_id", "user_id"]
    assert len(request.subject_hashes) > 4
    assert all(h.startswith(("k", "sha256:")) for h in request.subject_hashes)
    page = answer.content.decode()
    assert "art. 17 request by e-mail" in page
    assert_no_raw(page)
    assert_no_raw(caplog.text)
    assert_no_raw(stored_text())
    assert platform_audit_events("privacy.subject_request.submitted").count() == 1


def test_a_form_error_names_the_field_and_never_sends_the_identifiers_back(people, client):
    """A too-long identifier is refused with its field path; the re-shown form keeps the
    reason and ticket but none of the identifiers typed."""
    olga, _pete, _ana = people
    browser = as_user(client, olga)
    answer = browser.post(ADD, form_data(device_id="dev-alice\n" + "x" * 201))
    assert answer.status_code == 200
    page = answer.content.decode()
    assert "identifiers.device_id[1]" in page
    assert "longer than 200 characters" in page
    assert "x" * 201 not in page
    assert "DSR-42" in page
    assert_no_raw(page)
    missing = browser.post(ADD, form_data(reason="")).content.decode()
    assert "<code>reason</code>" in missing
    assert_no_raw(missing)
    assert SubjectRequest.objects.count() == 0


def test_analysts_see_that_requests_exist_and_nothing_more(people, client):
    """An analyst's list shows number, kind, state and date (no identifiers given, ticket,
    hashes or links); the request's page and downloads are refused; officers see more."""
    olga, _pete, ana = people
    request = subject_request_submit(
        kind="access", identifiers=ALICE, reason="art. 15", ticket="DSR-7", actor=olga
    )
    listing = as_user(client, ana).get(LIST)
    assert listing.status_code == 200
    page = listing.content.decode()
    assert f"#{request.pk}" in page
    assert "Access (export" in page
    assert "DSR-7" not in page
    assert "session_id" not in page
    assert detail(request.pk) not in page
    for hashed in request.subject_hashes:
        assert hashed not in page
    for url in (
        detail(request.pk),
        f"{LIST}{request.pk}/export.jsonl",
        f"{LIST}{request.pk}/certificate/",
        ADD,
    ):
        assert client.get(url).status_code == 403, url
    officer_page = as_user(client, olga).get(LIST).content.decode()
    assert "DSR-7" in officer_page
    assert detail(request.pk) in officer_page
    assert "device_id, session_id, user_id" in officer_page


def test_the_detail_page_summarises_what_is_stored_and_the_holds(people, client):
    """Counts per class and schema, oldest and newest, and the holds covering the subject."""
    olga, pete, _ana = people
    store_subject("alice", days=2, per_day=3)
    held_from = datetime.now(UTC) - timedelta(days=1, hours=1)
    hold = legal_hold_create(
        reason="litigation 9",
        owner=pete,
        event_class=EventClass.objects.get(name="client_diagnostic"),
        occurred_from=held_from,
        occurred_to=held_from + timedelta(hours=2),
    )
    request = subject_request_submit(kind="access", identifiers=ALICE, reason="r", actor=olga)
    page = as_user(client, olga).get(detail(request.pk)).content.decode()
    assert "18 events, oldest " in page
    table = page.split('id="summary-per-schema"', 1)[1].split("</table>", 1)[0]
    for schema in (
        "telemetry.audit_event.v1",
        "telemetry.client_diagnostic.v1",
        "telemetry.service_metric.v1",
    ):
        assert f"<td>{schema}</td><td>6</td>" in table
    holds = page.split('id="summary-holds"', 1)[1].split("</table>", 1)[0]
    assert f"<td>#{hold.pk}</td><td>litigation 9</td><td>3</td>" in holds
    assert "client_diagnostic: 3" in holds


def test_approval_is_by_another_officer_and_the_page_follows_the_erasure(
    people, client, empty_broker
):
    """The requester gets no approve button and is refused if they post it; another
    officer approves; the page then shows the erasure's progress and the certificate,
    whose download carries a digest that verifies and is recorded."""
    olga, pete, _ana = people
    store_subject("alice", days=1, per_day=2)
    request = subject_request_submit(kind="erasure", identifiers=ALICE, reason="r", actor=olga)
    own = as_user(client, olga).get(detail(request.pk)).content.decode()
    assert 'id="approve"' not in own
    assert 'id="four-eyes"' in own
    refused = client.post(f"{LIST}{request.pk}/approve/", follow=True).content.decode()
    assert "Another person must approve your request" in refused
    request.refresh_from_db()
    assert request.status == SubjectRequest.Status.PROPOSED
    assert client.get(f"{LIST}{request.pk}/approve/").status_code == 405

    other = as_user(client, pete).get(detail(request.pk)).content.decode()
    assert 'id="approve"' in other
    approved = client.post(f"{LIST}{request.pk}/approve/", follow=True).content.decode()
    assert "Approved (queued)" in approved
    assert "not started" in approved
    subject_request_erase(request_id=request.pk)
    done = client.get(detail(request.pk)).content.decode()
    assert '<td id="request-status">Completed</td>' in done
    assert "6 of 6 rows (100%)" in done
    assert "0 events." in done
    download = client.get(f"{LIST}{request.pk}/certificate/")
    assert (
        download["Content-Disposition"] == f'attachment; filename="certificate-{request.pk}.json"'
    )
    body = json.loads(download.content)
    assert certificate_valid(body["certificate"], body["digest"])
    assert body["certificate"]["rows_erased"] == 6
    downloads = platform_audit_events("privacy.subject_request.downloaded")
    assert downloads.count() == 1
    assert downloads.get().payload["attributes"]["download"] == "certificate"
    listing = client.get(LIST).content.decode()
    assert "6 of 6 rows (100%)" in listing


def test_an_access_export_downloads_as_jsonl_and_csv(people, client):
    """Every stored event of the subject, with class, schema and purge date; recorded."""
    olga, _pete, _ana = people
    store_subject("alice", days=1, per_day=2)
    store_subject("bob", days=1, per_day=2)
    request = subject_request_submit(kind="access", identifiers=ALICE, reason="r", actor=olga)
    browser = as_user(client, olga)
    page = browser.get(detail(request.pk)).content.decode()
    assert 'id="export-jsonl"' in page and 'id="export-csv"' in page
    jsonl = browser.get(f"{LIST}{request.pk}/export.jsonl")
    assert jsonl["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in b"".join(jsonl.streaming_content).splitlines()]
    assert len(lines) == 6
    assert {line["event_class"] for line in lines} == {
        "audit_event",
        "client_diagnostic",
        "service_metric",
    }
    assert all(line["purge_after"] for line in lines)
    assert not any("bob" in json.dumps(line) for line in lines)
    exported = browser.get(f"{LIST}{request.pk}/export.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert len(rows) == 6
    assert browser.get(f"{LIST}{request.pk}/export.xml").status_code == 400
    what = sorted(
        e.payload["attributes"]["download"]
        for e in platform_audit_events("privacy.subject_request.downloaded")
    )
    assert what == ["export.csv", "export.jsonl"]


def test_a_suppression_lift_is_proposed_from_the_page_and_approved_by_another(people, client):
    """The suppression's page offers a lift; the lift waits for another officer."""
    olga, pete, _ana = people
    suppression = subject_request_submit(
        kind="suppression", identifiers=ALICE, reason="objection", actor=olga
    )
    browser = as_user(client, olga)
    assert 'id="lift"' in browser.get(detail(suppression.pk)).content.decode()
    browser.post(f"{LIST}{suppression.pk}/lift/", {"reason": "withdrawn"})
    lift = SubjectRequest.objects.get(kind="suppression_lift")
    assert (lift.lifts_id, lift.status, lift.reason) == (suppression.pk, "proposed", "withdrawn")
    assert 'id="lift"' not in browser.get(detail(suppression.pk)).content.decode()
    as_user(client, pete).post(f"{LIST}{lift.pk}/approve/")
    suppression.refresh_from_db()
    assert suppression.suppression_lifted_at is not None


def test_the_api_export_streams_the_same_rows_as_jsonl_and_csv(people):
    """GET /api/v1/subject-requests/ID/export: the admin's rendering (privacy.exports),
    JSONL and CSV, only the subject's rows; an unknown format is a 400 naming the field."""
    from rest_framework.test import APIClient

    olga, _pete, _ana = people
    store_subject("alice", days=1, per_day=2)
    store_subject("bob", days=1, per_day=2)
    request = subject_request_submit(kind="access", identifiers=ALICE, reason="r", actor=olga)
    api = APIClient()
    api.force_authenticate(olga)
    url = f"/api/v1/subject-requests/{request.pk}/export"
    jsonl = api.get(url, {"format": "jsonl"})
    assert jsonl["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in b"".join(jsonl.streaming_content).splitlines()]
    assert len(lines) == 6 and not any("bob" in json.dumps(line) for line in lines)
    exported = api.get(url, {"format": "csv"})
    assert exported["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert sorted(row["event_id"] for row in rows) == sorted(line["event_id"] for line in lines)
    refused = api.get(url, {"format": "xml"})
    assert refused.status_code == 400 and refused.json()["field"] == "format"

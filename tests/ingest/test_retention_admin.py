"""Retention in the admin: dry run before a retention change, holds, purge history, run now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from governance.models import EventClass, LegalHold
from ingest import pipeline
from ingest.humanize import human_duration
from ingest.models import PurgeRun
from ingest.services import events_purge_expired
from tests.factories import iso

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, platform_config):
    user = get_user_model().objects.create_superuser("ops", "ops@example.test", "pw-123456!")
    client.force_login(user)
    return client


def store_diagnostic(days_old: int, name: str) -> None:
    occurred = datetime.now(UTC) - timedelta(days=days_old)
    body = {"envelope": {"event_id": name, "occurred_at": iso(occurred)}, "name": name}
    context = pipeline.IngestContext(source="tests", received_at=occurred + timedelta(minutes=1))
    pipeline.ingest_batch([pipeline.RawItem("telemetry.client_diagnostic.v1", body)], context)


def _approve_latest() -> None:
    from governance.models import ChangeRequest
    from governance.roles import GOVERNANCE_APPROVER
    from governance.services import change_request_approve
    from tests.factories import user_with_role

    change_request_approve(
        change_request=ChangeRequest.objects.latest("id"),
        actor=user_with_role("approver", GOVERNANCE_APPROVER),
        apply=True,
    )


def test_retention_change_shows_dry_run_before_proposing(admin_client):
    """Lowering retention first shows how many events become eligible; confirming proposes
    it, with its reason; it applies once a second person approves it."""
    for days in (5, 12, 20):
        store_diagnostic(days, f"d{days}")
    url = "/admin/governance/eventclass/client_diagnostic/change/"
    no_reason = admin_client.post(url, {"retention_days": "10", "description": "diagnostics"})
    assert "say why the retention should change" in no_reason.content.decode()
    reason = "30 days of diagnostics cost too much"
    first = admin_client.post(
        url, {"retention_days": "10", "description": "diagnostics", "change_reason": reason}
    )
    page = first.content.decode()
    assert first.status_code == 200
    assert 'id="proposed-eligible">2<' in page
    assert EventClass.objects.get(name="client_diagnostic").retention_days == 30
    confirmed = admin_client.post(
        url,
        {
            "retention_days": "10",
            "description": "diagnostics",
            "change_reason": reason,
            "_confirm_retention": "1",
        },
    )
    assert confirmed.status_code == 302
    assert "/admin/governance/changerequest/" in confirmed["Location"]
    assert EventClass.objects.get(name="client_diagnostic").retention_days == 30
    # The approver sees the same dry run on the change request's page.
    request_page = admin_client.get(confirmed["Location"]).content.decode()
    assert 'id="proposed-eligible">2<' in request_page
    _approve_latest()
    assert EventClass.objects.get(name="client_diagnostic").retention_days == 10


def test_retention_outside_guard_rails_is_a_form_error(admin_client, settings):
    """The admin refuses retention outside TELEMETRY_RETENTION_LIMITS."""
    settings.TELEMETRY_RETENTION_LIMITS = {"*": [7, 90]}
    response = admin_client.post(
        "/admin/governance/eventclass/client_diagnostic/change/",
        {"retention_days": "365", "description": ""},
    )
    assert "must be between 7 and 90 days" in response.content.decode()


def test_hold_placed_with_a_raw_identifier_stores_only_hashes(admin_client):
    """The analyst types the raw user id; only its keyed hashes are kept."""
    response = admin_client.post(
        "/admin/governance/legalhold/add/",
        {
            "reason": "case 42",
            "actor_identifier": "eli.898485@corp.test",
            "event_class": "audit_event",
        },
    )
    assert response.status_code == 302
    assert not LegalHold.objects.exists()
    from governance.models import ChangeRequest

    assert "eli.898485" not in str(ChangeRequest.objects.values().get())
    _approve_latest()
    hold = LegalHold.objects.get()
    assert hold.actor_hashes and all(h.startswith("k1:") for h in hold.actor_hashes)
    assert "eli.898485" not in str(LegalHold.objects.values().get())
    empty = admin_client.post("/admin/governance/legalhold/add/", {"reason": "nothing"})
    assert "a hold needs at least one criterion" in empty.content.decode()


def test_purge_history_dry_run_and_run_now(admin_client, monkeypatch):
    """Runs are listed per class; the dry run counts; run-now enqueues the Celery task."""
    store_diagnostic(45, "old")
    events_purge_expired(event_class="service_metric")
    listing = admin_client.get("/admin/ingest/purgerun/?event_class__name__exact=service_metric")
    assert "service_metric" in listing.content.decode()
    assert 'id="run-purge-now"' in listing.content.decode()
    run = PurgeRun.objects.filter(event_class="service_metric").latest("started_at")
    cell = listing.content.decode().split('class="field-duration">')[1].split("<")[0]
    assert cell == human_duration(run.duration_seconds)
    assert cell.endswith(("ms", " s", "min")) and str(run.duration_seconds) not in cell
    dry = admin_client.get("/admin/ingest/purgerun/dry-run/").content.decode()
    due = dry.split('id="dry-run-due"')[1].split("</tbody>")[0]
    assert 'data-class="client_diagnostic"' in due  # 45 days old: would be deleted
    assert "/admin/governance/eventclass/client_diagnostic/change/" in due
    assert "?event_class__name__exact=client_diagnostic" in due
    assert 'data-class="client_diagnostic"' not in dry.split('id="dry-run-none"')[1]
    enqueued = []
    monkeypatch.setattr(
        "ingest.admin.purge_expired_events.delay",
        lambda *args: enqueued.append(args) or type("R", (), {"id": "t-1"})(),
    )
    response = admin_client.post(
        "/admin/ingest/purgerun/run-now/", {"event_class": "client_diagnostic"}
    )
    assert response.status_code == 302
    assert enqueued == [("client_diagnostic", "admin:ops")]
    assert PurgeRun.objects.filter(event_class="service_metric").exists()


def test_retention_dry_run_current_row_shows_the_stored_retention(admin_client):
    """Regression: the form's validation wrote the posted retention onto the instance before
    the current figures were computed, so the "current" row repeated the proposed one."""
    for days in (5, 12, 20):
        store_diagnostic(days, f"d{days}")
    response = admin_client.post(
        "/admin/governance/eventclass/client_diagnostic/change/",
        {"retention_days": "10", "description": "diagnostics", "change_reason": "cost"},
    )
    page = response.content.decode()
    now = datetime.now(UTC)
    current_cutoff = (now - timedelta(days=30)).strftime("%Y-%m-%d")
    proposed_cutoff = (now - timedelta(days=10)).strftime("%Y-%m-%d")
    assert 'id="current-eligible">0<' in page  # nothing is older than the stored 30 days
    assert 'id="proposed-eligible">2<' in page
    assert f'id="current-cutoff">{current_cutoff}' in page
    assert f'id="proposed-cutoff">{proposed_cutoff}' in page
    assert EventClass.objects.get(name="client_diagnostic").retention_days == 30


def test_durations_read_as_people_say_them():
    assert human_duration(0.007785126999920067) == "7.79 ms"
    assert human_duration(123.4) == "2 min 3 s"
    assert human_duration(7.8) == "7.8 s"
    assert human_duration(3600 * 2 + 60) == "2 h 1 min"
    assert human_duration(None) == "—"

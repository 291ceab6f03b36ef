"""Audit search in the admin: access, filters, keyset pages, estimates, exports, correlation."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ingest import pipeline
from ingest.models import Event
from tests.audit.conftest import NOW, audit, diagnostic
from tests.audit_helpers import platform_audit_events
from tests.factories import AUDIT_SCHEMA, iso

pytestmark = pytest.mark.django_db
SEARCH = "/admin/audit/auditevent/"


def security_group() -> Group:
    return Group.objects.get(name="security analyst")


@pytest.fixture
def analyst(client, platform_config):
    """A staff member of the "security analyst" role, logged in."""
    user = get_user_model().objects.create_user("sam", password="pw-123456!", is_staff=True)
    user.groups.add(security_group())
    client.force_login(user)
    return client


def names(response) -> list[str]:
    """Event names of the listed rows, leaving out the platform's own audit events."""
    return [row["event_name"] for row in response.context["rows"] if row["source"] != "platform"]


def test_security_group_sees_audit_search_and_other_staff_get_403(client, corpus):
    """Analysts see the search in the admin index and can open it; other staff get 403."""
    other = get_user_model().objects.create_user("dev", password="pw-123456!", is_staff=True)
    client.force_login(other)
    assert client.get(SEARCH).status_code == 403
    assert "/admin/audit/auditevent/" not in client.get("/admin/").content.decode()
    event = Event.objects.filter(event_class_id="audit_event").first()
    assert client.get(f"{SEARCH}{event.pk}/correlation/").status_code == 403
    assert client.post(f"{SEARCH}export.csv").status_code == 403

    analyst = get_user_model().objects.create_user("ana", password="pw-123456!", is_staff=True)
    analyst.groups.add(security_group())
    client.force_login(analyst)
    assert client.get(SEARCH).status_code == 200
    assert "/admin/audit/auditevent/" in client.get("/admin/").content.decode()


def test_audit_events_are_append_only_in_the_admin(analyst, corpus):
    """Nobody adds, changes or deletes audit events through the admin."""
    event = Event.objects.filter(event_class_id="audit_event").first()
    assert analyst.get(f"{SEARCH}add/").status_code == 403
    assert analyst.post(f"{SEARCH}{event.pk}/delete/").status_code == 403
    assert analyst.post(f"{SEARCH}{event.pk}/change/", {"source": "x"}).status_code == 200
    assert Event.objects.get(pk=event.pk).source == event.source  # the detail page: no form
    page = analyst.get(SEARCH).content.decode()
    assert "addlink" not in page and 'name="action"' not in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["auth.login", "auth.logout", "autopilot.updated", "billing.charged"]),
        ({"event_name": "auth."}, ["auth.login", "auth.logout"]),
        ({"event_name": "auth.*"}, ["auth.login", "auth.logout"]),
        ({"event_name": "auth.login"}, ["auth.login"]),
        ({"outcome": "rejected"}, ["auth.logout"]),
        ({"source": "billing"}, ["billing.charged"]),
        ({"request_id": "req_b"}, ["autopilot.updated"]),
        ({"trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736"}, ["autopilot.updated"]),
        ({"actor": "user_929583699"}, ["auth.login"]),
        ({"actor": "eli.898485@corp.test"}, ["auth.logout"]),
        ({"session": "sess_1"}, ["auth.login"]),
        ({"org": "org_3186027"}, ["auth.login"]),
        ({"device": "965eda32-dae4-4550-8201-e2bd73ab4876"}, ["autopilot.updated"]),
        ({"q": "expired"}, ["auth.logout"]),
        ({"q": "team"}, ["billing.charged"]),
    ],
)
def test_each_filter_through_the_admin_form(analyst, corpus, query, expected):
    """Each filter of the admin form narrows the last 24 hours, newest first."""
    response = analyst.get(SEARCH, query)
    assert response.status_code == 200
    assert names(response) == expected
    page = response.content.decode()
    for name in expected:
        assert f'<td class="event-name">{name}</td>' in page
    for field in query:
        assert f'name="{field}"' in page  # the form is AuditEventFilterSet's


def test_default_window_is_the_last_24_hours(analyst, corpus):
    """Without a time range only the last 24 hours are shown; a range reaches further back."""
    recent = analyst.get(SEARCH, {"actor": "user_929583699"})
    assert names(recent) == ["auth.login"]
    assert "last 24 hours" in recent.content.decode()
    wider = analyst.get(
        SEARCH, {"actor": "user_929583699", "occurred_after": iso(NOW - timedelta(days=2))}
    )
    assert names(wider) == ["auth.login", "auth.login"]
    assert [row["occurred_at"] < NOW - timedelta(hours=24) for row in wider.context["rows"]] == [
        False,
        True,
    ]
    bounded = analyst.get(
        SEARCH,
        {
            "occurred_after": iso(NOW - timedelta(days=2)),
            "occurred_before": iso(NOW - timedelta(hours=24)),
        },
    )
    assert names(bounded) == ["auth.login"]


def test_invalid_filter_shows_errors_and_no_results(analyst, corpus):
    """A malformed date is reported on the form (never a 500) and nothing is listed."""
    response = analyst.get(SEARCH, {"occurred_after": "yesterday"})
    assert response.status_code == 200
    assert response.context["form"].errors["occurred_after"]
    assert "rows" not in response.context
    assert 'id="audit-results"' not in response.content.decode()
    assert "Export CSV" not in response.content.decode()
    assert not platform_audit_events("platform.audit.searched").exists()


def test_keyset_navigation_older_and_newer_across_three_pages(analyst, platform_config):
    """120 events: older links walk 50 + 50 + 20 rows, newer links walk back to the same pages."""
    items = [
        pipeline.RawItem(
            AUDIT_SCHEMA,
            {
                "event_name": "data.read",
                "outcome": "success",
                # Three events share every timestamp: the id breaks the ties.
                "occurred_at": iso(NOW - timedelta(minutes=1 + number // 3)),
                "request_id": f"req_page_{number:03d}",
            },
        )
        for number in range(120)
    ]
    result = pipeline.ingest_batch(items, pipeline.IngestContext(source="pager"))
    assert {item.status for item in result.results} == {"accepted"}
    expected = list(
        Event.objects.filter(source="pager")
        .order_by("-occurred_at", "-id")
        .values_list("id", flat=True)
    )

    def ids(response) -> list[int]:
        return [row["pk"] for row in response.context["rows"]]

    first = analyst.get(SEARCH, {"source": "pager"})
    assert ids(first) == expected[:50]
    assert first.context["newer_url"] == ""
    second = analyst.get(first.context["older_url"])
    assert ids(second) == expected[50:100]
    third = analyst.get(second.context["older_url"])
    assert ids(third) == expected[100:]
    assert third.context["older_url"] == ""
    assert "source=pager" in third.context["newer_url"]  # the filter travels with the cursor

    back_to_second = analyst.get(third.context["newer_url"])
    assert ids(back_to_second) == expected[50:100]
    back_to_first = analyst.get(back_to_second.context["newer_url"])
    assert ids(back_to_first) == expected[:50]
    assert back_to_first.context["newer_url"] == ""
    assert back_to_first.context["older_url"] == first.context["older_url"]
    assert 'id="page-older"' in first.content.decode()
    assert 'id="page-newer"' in second.content.decode()


def test_a_tampered_cursor_shows_the_newest_page(analyst, corpus):
    """A cursor that is not ours is ignored (first page), never a 500."""
    response = analyst.get(SEARCH, {"older": "not-a-cursor!", "source": "control-service"})
    assert response.status_code == 200
    assert names(response) == ["auth.login", "auth.logout", "autopilot.updated"]


def test_small_totals_are_exact_and_agree_with_the_rows(analyst, corpus):
    """A handful of matches is counted exactly ("2 events match" above two rows, "0 events
    match" above none), never "about 1" above 30 rows; no SQL of the page runs COUNT."""
    with CaptureQueriesContext(connection) as queries:
        response = analyst.get(SEARCH, {"event_name": "auth."})
    assert response.status_code == 200
    rows = len(response.context["rows"])
    html = response.content.decode()
    assert f'id="match-count">{rows} events match<' in html
    assert "about" not in html.split('id="match-count">')[1].split("<")[0]
    statements = [query["sql"].lower() for query in queries.captured_queries]
    assert not [sql for sql in statements if "count(" in sql]
    none = analyst.get(SEARCH, {"event_name": "no.such."}).content.decode()
    assert 'id="match-count">0 events match<' in none and "No audit events match" in none


def test_large_totals_are_the_planners_estimate(analyst, corpus, monkeypatch):
    """Beyond the exact limit the page says "about N" from EXPLAIN, N above the limit."""
    from audit import admin as audit_admin
    from audit import search_display

    monkeypatch.setattr(audit_admin, "PAGE_SIZE", 2)
    monkeypatch.setattr(audit_admin, "EXACT_COUNT_LIMIT", 3)
    monkeypatch.setattr(search_display, "EXACT_COUNT_LIMIT", 3)
    for number in range(6):
        audit("data.read", minutes_ago=1 + number / 10, request_id=f"req_e_{number}")
    with CaptureQueriesContext(connection) as queries:
        response = analyst.get(SEARCH, {"event_name": "data.read"})
    statements = [query["sql"].lower() for query in queries.captured_queries]
    assert any(sql.startswith("explain") for sql in statements)
    assert not [sql for sql in statements if "count(" in sql]
    text = response.content.decode().split('id="match-count">')[1].split("<")[0]
    assert text.startswith("about ") and int(text.split()[1].replace(",", "")) >= 4


def test_own_searches_are_hidden_unless_asked_for(analyst, corpus):
    """The analyst's platform.audit.searched records stay out of the default view."""
    analyst.get(SEARCH, {"source": "control-service"})  # recorded as a search
    default = analyst.get(SEARCH)
    assert "platform.audit.searched" not in [row["event_name"] for row in default.context["rows"]]
    toggle = default.context["searches_toggle_url"]
    assert "show_searches=1" in toggle
    shown = analyst.get(toggle)
    assert "platform.audit.searched" in [row["event_name"] for row in shown.context["rows"]]


def test_outcome_is_a_choice(analyst, corpus):
    html = analyst.get(SEARCH).content.decode()
    assert '<select name="outcome"' in html
    refused = analyst.get(SEARCH, {"outcome": "rejectd"})
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert not refused.context.get("searched")


def test_rows_link_from_the_first_column_and_show_why_text_matched(analyst, corpus):
    """The time links to the event; the attributes column marks the full-text term."""
    response = analyst.get(SEARCH, {"q": "expired"})
    html = response.content.decode()
    row = html.split('<tr class="audit-row"')[1].split("</tr>")[0]
    first_cell = row.split("</td>")[0]
    assert 'class="detail-link"' in first_cell
    summary = row.split('class="summary">')[1].split("</td>")[0]
    assert "<b>reason</b>: <mark>expired</mark> token" in summary


def test_no_count_query_while_paging(analyst, corpus):
    """Following an older/newer cursor runs LIMIT and EXISTS queries, never COUNT."""
    for number in range(55):
        audit("data.read", minutes_ago=1 + number / 10, request_id=f"req_c_{number}")
    first = analyst.get(SEARCH, {"event_name": "data.read"})
    with CaptureQueriesContext(connection) as queries:
        second = analyst.get(first.context["older_url"])
        analyst.get(second.context["newer_url"])
    assert len(second.context["rows"]) == 5
    assert not [q["sql"] for q in queries.captured_queries if "count(" in q["sql"].lower()]


@pytest.mark.parametrize("export_format", ["csv", "jsonl"])
def test_exports_hold_the_current_filter_and_are_recorded(analyst, corpus, export_format):
    """Export CSV / JSONL stream exactly the filtered events; each export is recorded."""
    page = analyst.get(SEARCH, {"event_name": "auth.", "actor": "eli.898485@corp.test"})
    assert f'action="/admin/audit/auditevent/export.{export_format}"' in page.content.decode()
    assert ("actor", "eli.898485@corp.test") in page.context["export_params"]
    response = analyst.post(
        f"{SEARCH}export.{export_format}",
        {"event_name": "auth.", "actor": "eli.898485@corp.test"},
    )
    assert response.status_code == 200
    assert response.streaming
    assert f"audit-events.{export_format}" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode()
    if export_format == "csv":
        rows = list(csv.DictReader(io.StringIO(body)))
    else:
        rows = [json.loads(line) for line in body.splitlines()]
    assert [(row["event_name"], row["outcome"]) for row in rows] == [("auth.logout", "rejected")]
    assert rows[0]["actor_hash"].startswith("k1:")
    record = platform_audit_events("platform.audit.exported").get()
    filters = json.loads(record.payload["attributes"]["filters"])
    assert filters["event_name"] == "auth."
    assert filters["actor"].startswith("k1:")
    assert "eli.898485" not in json.dumps(record.payload)


def test_export_needs_post_and_a_known_format(analyst, corpus):
    """Exports are POSTed (raw identifiers stay out of URLs); unknown formats are 404."""
    assert analyst.get(f"{SEARCH}export.csv", {"actor": "user_1"}).status_code == 405
    assert analyst.post(f"{SEARCH}export.xml").status_code == 404
    bad = analyst.post(f"{SEARCH}export.csv", {"occurred_after": "yesterday"})
    assert bad.status_code == 400
    assert not platform_audit_events("platform.audit.exported").exists()


def test_detail_page_shows_the_event_and_its_correlation_timeline(analyst, corpus):
    """The detail page shows the event in full and every class sharing its request id."""
    diagnostic("req_b", minutes_ago=9)
    row = analyst.get(SEARCH, {"request_id": "req_b"}).context["rows"][0]
    response = analyst.get(row["url"])
    assert row["url"] == f"{SEARCH}{row['pk']}/correlation/"
    assert response.status_code == 200
    timeline = response.context["timeline"]
    assert [(item["event_class"], item["request_id"], item["current"]) for item in timeline] == [
        ("client_diagnostic", "req_b", False),
        ("audit_event", "req_b", True),
    ]
    page = response.content.decode()
    assert 'class="timeline-row current"' in page
    assert "slow.render" in page and "autopilot.updated" in page
    assert "4bf92f3577b34da6a3ce929d0e0e4736" in page  # trace id
    assert "&quot;event_name&quot;: &quot;autopilot.updated&quot;" in page  # payload, pretty
    event = Event.objects.get(pk=row["pk"])
    assert event.chain_seq and f"link {event.chain_seq} of the control-service chain" in page
    assert event.chain_link in page
    # The stock change URL shows the same read-only page.
    assert analyst.get(f"{SEARCH}{row['pk']}/change/").context["timeline"] == timeline
    assert analyst.get(f"{SEARCH}999999999/correlation/").status_code == 404


def test_detail_page_is_only_for_audit_events(analyst, corpus):
    """A diagnostic event's id is not an audit event: 404 on the audit detail page."""
    diagnostic("req_a", minutes_ago=4, event_id="d2")
    other = Event.objects.get(event_class_id="client_diagnostic")
    assert analyst.get(f"{SEARCH}{other.pk}/correlation/").status_code == 404


def test_search_is_recorded_with_the_actor_hashed(analyst, corpus):
    """Every search is a platform audit event; the raw actor is stored nowhere."""
    raw = "eli.898485@corp.test"
    analyst.get(SEARCH, {"actor": raw, "event_name": "auth."})
    record = platform_audit_events("platform.audit.searched").get()
    filters = json.loads(record.payload["attributes"]["filters"])
    assert filters["actor"].startswith("k1:")
    assert filters["event_name"] == "auth."
    assert record.request_id  # the admin request's id
    stored = Event.objects.filter(source="platform").values()
    assert "eli.898485" not in json.dumps(list(stored), default=str)


def test_raw_identifiers_reach_no_log_line(analyst, corpus, caplog):
    """Searching, exporting and paging by a raw actor log nothing that contains it."""
    raw = "eli.898485@corp.test"
    with caplog.at_level("DEBUG"):
        analyst.get(SEARCH, {"actor": raw})
        export = analyst.post(f"{SEARCH}export.jsonl", {"actor": raw})
        b"".join(export.streaming_content)
        analyst.get(f"{SEARCH}export.csv", {"actor": raw})  # 405: refused, still not logged
    assert caplog.records  # the capture works (the 405 is logged as a warning)
    assert raw not in caplog.text
    assert all(raw not in str(record.args) for record in caplog.records)

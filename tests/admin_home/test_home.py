"""The governance home: branded, per-role sections, honest numbers, no count over events."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.choices import ChangeKind
from governance.conformance import CatalogueEntry, check_files
from governance.conformance_record import KEY, conformance_check_record
from governance.models import LegalHold
from governance.roles import (
    GOVERNANCE_APPROVER,
    GOVERNANCE_OWNER,
    PRIVACY_OFFICER,
    READ_ONLY_AUDITOR,
    SECURITY_ANALYST,
)
from governance.services import change_request_draft
from ingest.models import IngestTally
from ingest.pipeline.tally import hour_of
from privacy.services import subject_request_submit
from telemetry_platform.redis_client import redis_client
from tests.factories import audit_event, user_with_role

pytestmark = pytest.mark.django_db
HOME = "/admin/"
ALICE = {"user_id": ["alice"]}


def _propose(actor, days: int, event_class: str = "client_diagnostic"):
    return change_request_draft(
        kind=ChangeKind.CLASS_RETENTION,
        target=f"event_class:{event_class}",
        payload={"retention_days": days},
        reason=f"keep {days} days",
        actor=actor,
    )


def _card_count(page: str, key: str) -> int:
    match = re.search(rf'id="task-{key}" data-count="(\d+)"', page)
    assert match, f"no {key} card"
    return int(match.group(1))


def _get(client, user) -> str:
    client.force_login(user)
    response = client.get(HOME)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def people(platform_config):
    return {
        "owner": user_with_role("olivia", GOVERNANCE_OWNER),
        "owner2": user_with_role("oscar", GOVERNANCE_OWNER),
        "approver": user_with_role("april", GOVERNANCE_APPROVER, GOVERNANCE_OWNER),
        "analyst": user_with_role("sam", SECURITY_ANALYST),
        "auditor": user_with_role("audrey", READ_ONLY_AUDITOR),
        "privacy": user_with_role("pia", PRIVACY_OFFICER),
        "privacy2": user_with_role("paul", PRIVACY_OFFICER),
    }


def test_the_site_is_branded_and_view_site_leads_somewhere(client, people):
    """The title is the platform's, not "Django administration"; "View site" opens the
    API documentation, which exists."""
    page = _get(client, people["auditor"])
    assert "Telemetry Governance Platform" in page
    assert "Django administration" not in page and "Django site admin" not in page
    assert 'href="/api/docs/"' in page
    assert client.get("/api/docs/").status_code == 200


def test_awaiting_my_approval_excludes_my_own_requests(client, people):
    """Two owners propose; an approver who also proposed one sees only the other two as
    waiting for them, and each owner sees none (they cannot approve)."""
    first = _propose(people["owner"], 45)
    second = _propose(people["owner2"], 50, "service_metric")
    own = _propose(people["approver"], 60, "performance_budget_sample")

    page = _get(client, people["approver"])
    assert _card_count(page, "approve") == 2
    waiting = page.split('id="task-approve"', 1)[1].split("</div>", 1)[0]
    assert f"#{first.pk} " in waiting and f"#{second.pk} " in waiting
    assert f"#{own.pk} " not in waiting
    owner_page = _get(client, people["owner"])
    assert 'id="task-approve"' not in owner_page
    assert _card_count(owner_page, "rebase") == 0


def test_a_request_whose_target_moved_is_mine_to_rebase(client, people):
    """After another request on the same target applies, my open one is stale: it counts
    under "to rebase" for me only."""
    from governance.services import change_request_approve

    mine = _propose(people["owner"], 45)
    other = _propose(people["owner2"], 50)
    change_request_approve(change_request=other, actor=people["approver"], apply=True)

    page = _get(client, people["owner"])
    assert _card_count(page, "rebase") == 1
    assert f"#{mine.pk} " in page.split('id="task-rebase"', 1)[1].split("</div>", 1)[0]
    assert _card_count(_get(client, people["owner2"]), "rebase") == 0


def test_holds_expiring_soon_and_subject_requests_to_approve(client, people):
    """A hold expiring in 3 days counts, one in 60 days and a released one do not; an
    erasure waits for the other privacy officer, not the one who asked."""
    now = datetime.now(UTC)
    for expires, released in ((3, None), (60, None), (2, now)):
        LegalHold.objects.create(
            reason=f"case {expires}",
            owner=people["owner"],
            expires_at=now + timedelta(days=expires),
            released_at=released,
        )
    subject_request_submit(
        kind="erasure", identifiers=ALICE, reason="art. 17", actor=people["privacy"]
    )

    asker = _get(client, people["privacy"])
    assert _card_count(asker, "subjects") == 0
    assert _card_count(asker, "holds") == 1
    other = _get(client, people["privacy2"])
    assert _card_count(other, "subjects") == 1
    assert "case 3" in other and "case 60" not in other


def test_each_role_sees_only_what_it_can_act_on(client, people):
    """An analyst sees audit search only; a privacy officer subject requests and holds,
    no ingest chart; an auditor sees ingest, coverage, purges, conformance but no tasks
    to approve."""
    analyst = _get(client, people["analyst"])
    assert "Audit search" in analyst
    for absent in ('id="ingest"', 'id="coverage"', 'id="purges"', 'id="needs-me"', "Violations"):
        assert absent not in analyst, absent

    officer = _get(client, people["privacy"])
    assert 'id="task-subjects"' in officer and 'id="task-holds"' in officer
    assert 'id="ingest"' not in officer and 'id="task-approve"' not in officer

    auditor = _get(client, people["auditor"])
    for present in ('id="ingest"', 'id="coverage"', 'id="purges"', 'id="conformance"'):
        assert present in auditor, present
    assert 'id="task-approve"' not in auditor and 'id="task-rebase"' not in auditor


def test_ingest_figures_come_from_the_tallies(client, people, ingest_client):
    """Accepted, duplicate and rejected per code in the last 24 h per source and schema,
    in human units; tallies older than 24 h are left out."""
    now = datetime.now(UTC)
    common = {
        "source": "web-shell",
        "event_class": "client_diagnostic",
        "schema_name": "telemetry.client_diagnostic.v1",
    }
    IngestTally.objects.create(hour=hour_of(now), status="accepted", count=12_345, **common)
    IngestTally.objects.create(hour=hour_of(now), status="duplicate", count=7, **common)
    IngestTally.objects.create(
        hour=hour_of(now),
        status="rejected",
        code="invalid_type",
        field_path="reconnect.attempt",
        count=1_204,
        **common,
    )
    IngestTally.objects.create(
        hour=hour_of(now - timedelta(hours=30)), status="accepted", count=999_999, **common
    )
    page = _get(client, people["auditor"])
    row = page.split('class="ingest-row"', 1)[1].split("</tr>", 1)[0]
    cells = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert cells == ["12.3k", "7", "1,204"]
    assert "invalid_type</a> 1,204" in row
    assert "<svg" in page.split('id="ingest"', 1)[1]


def test_coverage_counts_classified_and_sensitive_fields(client, people):
    """The audit schema's newest revision shows its share of classified fields and how many
    are personal or secret; figures match the field policies."""
    from governance.models import FieldPolicy, SchemaRevision
    from governance.selectors import revision_leaf_paths

    revision = SchemaRevision.objects.filter(schema__name="telemetry.audit_event.v1").latest(
        "version"
    )
    policies = FieldPolicy.objects.filter(revision=revision)
    sensitive = policies.filter(classification__in=["personal", "secret"]).count()
    total = len(revision_leaf_paths(revision))
    page = _get(client, people["auditor"])
    row = page.split('data-schema="telemetry.audit_event.v1"', 1)[1].split("</tr>", 1)[0]
    percent = int(policies.count() * 100 / total)
    assert f"{percent}% ({policies.count()} of {total})" in row
    assert f'<td class="num">{sensitive}</td>' in row


def test_last_conformance_check_is_shown_per_file(client, people, tmp_path):
    """A recorded check shows its verdict and each file's status."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "groups:\n- name: g\n  rules:\n  - alert: Gone\n    expr: nothing_emits_this_total > 0\n"
    )
    redis_client().delete(KEY)
    report = check_files([rules], [CatalogueEntry("tgp_events_total", "counter")])
    assert conformance_check_record(report)
    page = _get(client, people["auditor"])
    section = page.split('id="conformance"', 1)[1].split("</section>", 1)[0]
    assert "MISSING" in section
    assert "rules.yaml" in section and 'class="status-missing">missing<' in section
    redis_client().delete(KEY)


def test_every_workflow_is_one_click_away_for_an_admin(admin_client):
    """Review, history, coverage, conformance, redaction preview, purge dry-run, audit
    search, trends, violations and subject requests are linked and answer 200."""
    page = admin_client.get(HOME).content.decode()
    workflows = page.split('id="workflows"', 1)[1].split("</section>", 1)[0]
    urls = dict(
        (label, url) for url, label in re.findall(r'<a href="([^"]+)">([^<]+)</a>', workflows)
    )
    for label in (
        "Change requests",
        "Policies due for review",
        "Policy history",
        "Classification coverage",
        "Conformance check",
        "Redaction preview",
        "Purge dry-run",
        "Audit search",
        "Performance trends",
        "Violations",
        "Subject requests",
    ):
        assert label in urls, label
        assert admin_client.get(urls[label]).status_code == 200, label


def test_the_home_never_counts_the_event_table(admin_client, ingest_client):
    """Rendering the home runs no count(*) (nor any read) over ingest_event: figures come
    from the tallies and pg_class estimates."""
    from tests.factories import batch

    ingest_client.post(batch(audit_event()))
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(HOME).status_code == 200
    sqls = [q["sql"].lower() for q in queries.captured_queries]
    offending = [s for s in sqls if re.search(r'from "?ingest_event"?(\s|$|\))', s)]
    assert not offending, offending
    assert any("pg_partition_tree" in s for s in sqls)
    assert len(sqls) < 60, len(sqls)


@pytest.fixture
def admin_client(client, platform_config):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_superuser("root-admin", "a@example.test", "pw-123456!")
    client.force_login(user)
    return client


def test_stored_events_is_the_planner_estimate(admin_client, ingest_client):
    """Before ANALYZE the home says it has no estimate; after it, the reltuples figure."""
    from tests.factories import batch

    assert "not estimated yet" in admin_client.get(HOME).content.decode()
    ingest_client.post(batch(audit_event(), audit_event(), audit_event()))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ingest_event")
    from ingest.models import Event

    stored = Event.objects.count()  # a test-sized table: the figure to compare with
    page = admin_client.get(HOME).content.decode()
    shown = page.split('id="events-estimate">', 1)[1].split("</p>", 1)[0]
    assert shown == f"About {stored} events stored (planner estimate)."
    assert stored >= 3


def test_policies_due_for_review_count_for_approvers(people):
    """Ninety-odd days after the configuration loaded, every policy with no review or
    approved change is due; an approver's card counts them, an owner gets no such card."""
    from governance.reviews import policy_review_status
    from telemetry_platform.home import home_build

    later = datetime.now(UTC) + timedelta(days=400)
    due = [status for status in policy_review_status(now=later) if status.due]
    assert due
    tasks = {task.key: task for task in home_build(people["approver"], now=later).tasks}
    assert tasks["review"].count == len(due)
    assert tasks["review"].items[0][0] == due[0].label
    owner_tasks = {task.key for task in home_build(people["owner"], now=later).tasks}
    assert "review" not in owner_tasks


def test_the_figures_say_where_they_were_read_and_how_fresh(admin_client):
    """The figures are read under replica_reads: with no replica configured (the test
    settings name none) they come from the primary and the page says so, with the time."""
    from django.conf import settings

    assert "replica" not in settings.DATABASES
    page = admin_client.get(HOME).content.decode()
    shown = page.split('id="data-freshness" class="help">', 1)[1].split("</p>", 1)[0]
    assert shown.startswith("Figures: data as of ")
    assert shown.endswith(" UTC (primary).")

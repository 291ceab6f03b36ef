"""Suppression: a suppressed subject's next events are refused per event by the live endpoint."""

from __future__ import annotations

import time

import pytest

from governance.roles import PRIVACY_OFFICER
from privacy.services import subject_request_approve, subject_request_submit
from tests.factories import audit_event, batch, user_with_role


@pytest.mark.django_db
def test_a_suppressed_subject_is_refused_within_the_plan_refresh_and_a_lift_is_reviewed(
    ingest_client, settings
):
    """After a suppression, the subject's events are rejected with code ``suppressed``
    (others in the same batch accepted) once the plan refresh interval has passed; the
    lift needs another person's approval, then the subject is accepted again."""
    settings.TELEMETRY_PLAN_REFRESH_SECONDS = 0.3
    olga, pete = user_with_role("olga", PRIVACY_OFFICER), user_with_role("pete", PRIVACY_OFFICER)
    first = ingest_client.post(batch(audit_event(user_id="alice"))).json()
    assert first["accepted"] == 1
    suppression = subject_request_submit(
        kind="suppression", identifiers={"user_id": ["alice"]}, reason="objection", actor=olga
    )
    time.sleep(0.35)
    answer = ingest_client.post(batch(audit_event(user_id="alice"), audit_event(user_id="bob")))
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "accepted"]
    assert results[0]["code"] == "suppressed"
    assert "alice" not in answer.content.decode()
    lift = subject_request_submit(
        kind="suppression_lift", identifiers=None, reason="withdrawn", actor=olga, lifts=suppression
    )
    time.sleep(0.35)
    assert ingest_client.post(batch(audit_event(user_id="alice"))).json()["rejected"] == 1
    subject_request_approve(request=lift, actor=pete)
    time.sleep(0.35)
    assert ingest_client.post(batch(audit_event(user_id="alice"))).json()["accepted"] == 1


@pytest.mark.django_db
def test_a_suppression_reloads_the_list_without_recompiling_plans(ingest_client, settings):
    """A suppression moves only the suppression epoch: each process reloads the list of
    suppressed hashes but keeps its compiled plans (recompiling every plan in every web
    worker at once is what made ingest stall during an erasure); a policy change still
    recompiles them."""
    from governance.selectors import schema_plans
    from governance.services import policy_epoch_bump

    settings.TELEMETRY_PLAN_REFRESH_SECONDS = 0
    olga = user_with_role("olga", PRIVACY_OFFICER)
    assert ingest_client.post(batch(audit_event(user_id="alice"))).json()["accepted"] == 1
    compiled = dict(schema_plans._plans)
    assert compiled, "the first batch compiled the audit plan"

    subject_request_submit(
        kind="suppression", identifiers={"user_id": ["alice"]}, reason="objection", actor=olga
    )
    answer = ingest_client.post(batch(audit_event(user_id="alice"))).json()
    assert answer["results"][0]["code"] == "suppressed"
    assert all(schema_plans._plans[key] is plan for key, plan in compiled.items())

    policy_epoch_bump()
    assert ingest_client.post(batch(audit_event(user_id="bob"))).json()["accepted"] == 1
    assert all(schema_plans._plans.get(key) is not plan for key, plan in compiled.items())
    assert ingest_client.post(batch(audit_event(user_id="alice"))).json()["rejected"] == 1

"""OTLP log routes governed like any policy: proposed in the admin, approved by a second
person, applied, and then OTLP records route by them."""

from __future__ import annotations

import pytest
from django.test import Client

from governance.choices import ChangeKind, ChangeStatus
from governance.models import ChangeRequest, OtlpLogRoute
from governance.otlp import otlp_log_routes
from governance.services import ChangeRequestError, change_request_approve, change_request_draft
from tests.factories import AUDIT_SCHEMA
from tests.ingest.otlp.otlp_helpers import log_record, logs_request, post_otlp, stored

pytestmark = pytest.mark.django_db

ROUTE_FORM = {
    "name": "autopilot",
    "priority": "5",
    "match_event_name": "autopilot.*",
    "match_scope": "",
    "match_service": "",
    "schema_name": AUDIT_SCHEMA,
    "description": "autopilot decisions are audit events",
    "change_reason": "autopilot decisions must be kept as audit records",
}


@pytest.fixture(autouse=True)
def _fresh_routes():
    otlp_log_routes.clear()
    yield
    otlp_log_routes.clear()


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def send_autopilot_record(client: Client, key: str) -> None:
    response = post_otlp(
        client, key, "/v1/logs", logs_request(log_record(eventName="autopilot.updated"))
    )
    assert response.status_code == 200, response.content


def test_a_route_proposed_in_the_admin_applies_only_after_a_second_person_approves(
    client, api_key, owner, approver
):
    """The admin add form proposes (nothing written); the author cannot approve; the
    approver's approve-and-apply writes the route, and the next record routes by it."""
    response = logged_in(owner).post("/admin/governance/otlplogroute/add/", ROUTE_FORM)
    assert response.status_code == 302, response.content.decode()[:2000]
    change_request = ChangeRequest.objects.get(kind=ChangeKind.OTLP_LOG_ROUTE)
    assert response["Location"] == f"/admin/governance/changerequest/{change_request.pk}/"
    assert change_request.target == "otlp_log_route:autopilot"
    assert change_request.status == ChangeStatus.SUBMITTED
    assert not OtlpLogRoute.objects.filter(name="autopilot").exists()

    send_autopilot_record(client, api_key.secret)
    assert [r["payload"].get("event_name") for r in stored("telemetry.otel_log.v1")] == [
        "autopilot.updated"
    ]  # not routed yet: the fallback took it

    with pytest.raises(ChangeRequestError) as refused:
        change_request_approve(change_request=change_request, actor=owner, apply=True)
    assert refused.value.code == "own_change"

    page = logged_in(approver)
    page.post(
        f"/admin/governance/changerequest/{change_request.pk}/",
        {"step": "approve_apply", "comment": "agreed"},
    )
    change_request.refresh_from_db()
    assert change_request.status == ChangeStatus.APPLIED
    route = OtlpLogRoute.objects.get(name="autopilot")
    assert (route.priority, route.match_event_name, route.schema_name) == (
        5,
        "autopilot.*",
        AUDIT_SCHEMA,
    )

    otlp_log_routes.clear()  # this process applied it; others re-read at the epoch bump
    send_autopilot_record(client, api_key.secret)
    assert "autopilot.updated" in [r["payload"].get("event_name") for r in stored(AUDIT_SCHEMA)]
    assert len(stored("telemetry.otel_log.v1")) == 1


def test_removal_is_proposed_and_unrouted_records_are_then_refused(
    client, api_key, owner, approver
):
    """Removing the fallback route is a reviewed change; once applied a record no route
    takes is refused per record with unmapped_log_record."""
    admin = logged_in(owner)
    fallback = OtlpLogRoute.objects.get(name="otel-log-fallback")
    admin.post(
        "/admin/governance/otlplogroute/",
        {"action": "propose_removal", "_selected_action": [fallback.pk]},
    )
    change_request = ChangeRequest.objects.get(target="otlp_log_route:otel-log-fallback")
    assert change_request.payload is None
    assert OtlpLogRoute.objects.filter(name="otel-log-fallback").exists()

    change_request_approve(change_request=change_request, actor=approver, apply=True)

    assert not OtlpLogRoute.objects.filter(name="otel-log-fallback").exists()
    otlp_log_routes.clear()
    response = post_otlp(client, api_key.secret, "/v1/logs", logs_request(log_record()))
    partial = response.json()["partialSuccess"]
    assert "logRecords[0]: unmapped_log_record" in partial["errorMessage"]


@pytest.mark.parametrize(
    ("target", "payload", "message"),
    [
        ("otlp_log_route:x", {"schema_name": "no.such.v1"}, "schema_name: no schema named"),
        ("otlp_log_route:x", {"priority": -1}, "priority: a whole number"),
        ("otlp_log_route:x", {"priority": True}, "priority: a whole number"),
        ("otlp_log_route:x", {"match_scope": ["a"]}, "match_scope: text"),
        ("otlp_log_route:x", {"colour": "red"}, "unknown key(s) 'colour'"),
        ("otlp_log_route:bad name", {}, "route name 'bad name'"),
        ("otlp_log_route:x", None, "no OTLP log route 'x' to remove"),
    ],
)
def test_bad_route_proposals_are_refused_with_the_reason(owner, target, payload, message):
    with pytest.raises(ChangeRequestError) as refused:
        change_request_draft(
            kind=ChangeKind.OTLP_LOG_ROUTE,
            target=target,
            payload=payload,
            reason="testing",
            actor=owner,
        )
    assert message in refused.value.message
    assert not ChangeRequest.objects.exists()

"""OTLP log routes as code: exported with the schema they send records to, diffed, and
applied through reviewed change requests like the rest of the plan."""

from __future__ import annotations

import pytest
import yaml

from governance.choices import ChangeKind, ChangeStatus
from governance.models import ChangeRequest, OtlpLogRoute
from governance.otlp import otlp_log_routes
from tests.factories import AUDIT_SCHEMA
from tests.governance.test_telemetry_plan import edit_plan, plan_command
from tests.ingest.otlp.otlp_helpers import log_record, logs_request, post_otlp, stored

pytestmark = pytest.mark.django_db

OTEL_LOG = "telemetry.otel_log.v1"


@pytest.fixture(autouse=True)
def _fresh_routes():
    otlp_log_routes.clear()
    yield
    otlp_log_routes.clear()


def test_routes_export_with_their_schema_and_a_new_one_applies_reviewed_then_routes(
    tmp_path, client, api_key, owner, approver
):
    """Export puts each route in its schema's file; a route added to the audit plan is a
    diff (exit 1, named), applies as an approved change request, routes the next record,
    and exports back unchanged (no drift)."""
    _, error = plan_command("export", str(tmp_path))
    assert error is None
    audit_file, otel_file = tmp_path / f"{AUDIT_SCHEMA}.yaml", tmp_path / f"{OTEL_LOG}.yaml"
    assert yaml.safe_load(audit_file.read_text())["otlp_log_routes"] == {
        "control-service-audit": {
            "priority": 10,
            "match_scope": "audit",
            "description": "Records of an 'audit' logger (scope) are audit events.",
        }
    }
    assert set(yaml.safe_load(otel_file.read_text())["otlp_log_routes"]) == {"otel-log-fallback"}
    assert "No drift" in plan_command("diff", str(tmp_path))[0]

    edit_plan(
        audit_file,
        lambda d: d["otlp_log_routes"].update(
            autopilot={"priority": 5, "match_event_name": "autopilot.*"}
        ),
    )
    out, error = plan_command("diff", str(tmp_path))
    assert error is not None and error.returncode == 1
    assert "otlp_log_route:autopilot" in out and "match_event_name: — -> autopilot.*" in out

    _, error = plan_command("apply", str(tmp_path), "--author", "olivia", "--approver", "arthur")

    assert error is None, error
    [change] = ChangeRequest.objects.filter(kind=ChangeKind.OTLP_LOG_ROUTE)
    assert (change.target, change.status) == ("otlp_log_route:autopilot", ChangeStatus.APPLIED)
    assert (change.author.username, change.reviewer.username) == ("olivia", "arthur")
    route = OtlpLogRoute.objects.get(name="autopilot")
    assert (route.priority, route.schema_name) == (5, AUDIT_SCHEMA)
    otlp_log_routes.clear()
    record = log_record(eventName="autopilot.updated")
    assert post_otlp(client, api_key.secret, "/v1/logs", logs_request(record)).status_code == 200
    assert stored(OTEL_LOG) == []
    assert stored(AUDIT_SCHEMA)[-1]["payload"]["event_name"] == "autopilot.updated"

    assert "No drift" in plan_command("diff", str(tmp_path))[0]
    plan_command("export", str(tmp_path / "again"))
    again = yaml.safe_load((tmp_path / "again" / audit_file.name).read_text())
    assert again == yaml.safe_load(audit_file.read_text())
    assert again["otlp_log_routes"]["autopilot"] == {
        "priority": 5,
        "match_event_name": "autopilot.*",
    }


def test_a_route_left_out_of_its_schemas_plan_is_removed_and_a_claimed_one_refused(
    tmp_path, client, api_key, owner, approver
):
    """Dropping the fallback from the otel_log plan removes it (reviewed); a plan claiming
    a route that sends records to another schema is refused whole, nothing proposed."""
    plan_command("export", str(tmp_path))
    otel_file = tmp_path / f"{OTEL_LOG}.yaml"
    claimed = yaml.safe_load(otel_file.read_text())
    claimed["otlp_log_routes"]["control-service-audit"] = {"priority": 10}
    otel_file.write_text(yaml.safe_dump(claimed, sort_keys=False))

    _, error = plan_command("apply", str(tmp_path), "--author", "olivia", "--approver", "arthur")

    assert error is not None
    assert f"{OTEL_LOG}: OTLP log route control-service-audit sends records elsewhere" in str(error)
    assert not ChangeRequest.objects.exists()

    edit_plan(otel_file, lambda d: d.pop("otlp_log_routes"))
    _, error = plan_command("apply", str(tmp_path), "--author", "olivia", "--approver", "arthur")

    assert error is None, error
    assert not OtlpLogRoute.objects.filter(name="otel-log-fallback").exists()
    assert ChangeRequest.objects.get(target="otlp_log_route:otel-log-fallback").payload is None
    otlp_log_routes.clear()
    response = post_otlp(client, api_key.secret, "/v1/logs", logs_request(log_record()))
    assert "unmapped_log_record" in response.json()["partialSuccess"]["errorMessage"]


def test_a_malformed_routes_section_names_the_key_path(tmp_path, owner):
    plan_command("export", str(tmp_path))
    edit_plan(
        tmp_path / f"{AUDIT_SCHEMA}.yaml",
        lambda d: d["otlp_log_routes"].update(x={"schema_name": "elsewhere", "priority": 1}),
    )

    _, error = plan_command("diff", str(tmp_path))

    assert error.returncode == 2
    assert "otlp_log_routes.x: unknown key 'schema_name'" in str(error)

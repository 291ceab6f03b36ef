"""The telemetry plan as code: export, diff and apply through reviewed change requests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import transaction

from governance.choices import ChangeKind, ChangeStatus
from governance.models import ChangeRequest, MetricDefinition, RetentionOverride, Schema
from governance.selectors import field_policy_specs, policy_coverage
from governance.services import (
    change_request_approve,
    change_request_draft,
    schema_register,
)
from tests.factories import (
    AUDIT_SCHEMA,
    CLIENT_TELEMETRY_MESSAGE,
    CLIENT_TELEMETRY_SCHEMA,
    REPO_ROOT,
    client_telemetry_schema_register,
)
from tests.protos import CLIENT_TELEMETRY_PROTO

pytestmark = pytest.mark.django_db

SHIPPED_PLANS = REPO_ROOT / "docs/plans"
COUNTER = "openagents_sync_client_telemetry_event_count"
PLAN_FILE = f"{CLIENT_TELEMETRY_SCHEMA}.yaml"


class _Rollback(Exception):
    """Raised to undo a block: what follows runs on the registry as it was before."""


def contract_register():
    """Register the client telemetry contract alone (seeded policies, nothing reviewed)."""
    return schema_register(
        name=CLIENT_TELEMETRY_SCHEMA,
        proto_files={"client_telemetry.proto": CLIENT_TELEMETRY_PROTO},
        message_name=CLIENT_TELEMETRY_MESSAGE,
        event_class="client_diagnostic",
        actor=None,
    ).revision


def plan_command(*args: str) -> tuple[str, CommandError | None]:
    """Run ``manage.py plan``; its output and the CommandError it ended with, if any."""
    out = []

    class Sink:
        def write(self, text: str) -> None:
            out.append(text)

        def flush(self) -> None:
            pass

    try:
        call_command("plan", *args, stdout=Sink())
    except CommandError as exc:
        return "".join(out), exc
    return "".join(out), None


def edit_plan(path: Path, change) -> None:
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def proposed_revisions_of(change_kind: str) -> int:
    return ChangeRequest.objects.filter(kind=change_kind).count()


def test_export_apply_on_a_fresh_registry_then_diff_shows_no_drift(tmp_path, owner, approver):
    """A registry's plan exported, applied to a fresh registry holding only the contract's
    registration, leaves nothing to diff: policies, metric, override, rules all came back."""
    try:
        with transaction.atomic():
            client_telemetry_schema_register()
            plan = tmp_path / "configured"
            plan.mkdir()
            (plan / PLAN_FILE).write_text((SHIPPED_PLANS / PLAN_FILE).read_text())
            _, error = plan_command(
                "apply", str(plan), "--author", "olivia", "--approver", "arthur"
            )
            assert error is None
            schema = Schema.objects.get(name=CLIENT_TELEMETRY_SCHEMA)
            RetentionOverride.objects.create(schema=schema, retention_days=60, reason="SLO window")
            schema.breaking_category = "WIRE"
            schema.breaking_ignore_only = {"FIELD_SAME_JSON_NAME": ["client_telemetry.proto"]}
            schema.save()
            _, error = plan_command("export", str(tmp_path / "exported"), "--schema", schema.name)
            assert error is None
            configured = (
                field_policy_specs(schema.revisions.get()),
                MetricDefinition.objects.get(name=COUNTER).labels,
            )
            raise _Rollback
    except _Rollback:
        pass
    assert not Schema.objects.filter(name=CLIENT_TELEMETRY_SCHEMA).exists()  # fresh again
    revision = contract_register()
    assert field_policy_specs(revision) != configured[0]

    out, error = plan_command(
        "apply", str(tmp_path / "exported"), "--author", "olivia", "--approver", "arthur"
    )

    assert error is None, error
    kinds = set(ChangeRequest.objects.values_list("kind", flat=True))
    assert kinds == {
        ChangeKind.BREAKING_RULES,
        ChangeKind.FIELD_POLICIES,
        ChangeKind.RETENTION_OVERRIDE,
        ChangeKind.METRIC_DEFINITION,
    }
    assert set(ChangeRequest.objects.values_list("status", flat=True)) == {ChangeStatus.APPLIED}
    assert field_policy_specs(revision) == configured[0]
    assert MetricDefinition.objects.get(name=COUNTER).labels == configured[1]
    schema = Schema.objects.get(name=CLIENT_TELEMETRY_SCHEMA)
    assert (schema.breaking_category, schema.retention.retention_days) == ("WIRE", 60)
    out, error = plan_command("diff", str(tmp_path / "exported"))
    assert error is None and "No drift" in out


def test_one_shipped_plan_classifies_every_field_and_defines_the_counter(owner, approver):
    """The walkthrough: register the contract, apply docs/plans, and every field is
    classified and the Khala counter is defined; no admin step."""
    revision = contract_register()

    out, error = plan_command(
        "apply", str(SHIPPED_PLANS), "--author", "olivia", "--approver", "arthur"
    )

    assert error is None, error
    assert policy_coverage(revision) == []
    counter = MetricDefinition.objects.get(name=COUNTER)
    assert [label["label"] for label in counter.labels] == [
        "event_type",
        "surface",
        "app_version",
        "reason_code",
    ]
    assert f"Metric {COUNTER}: applied as version 1" in out
    assert plan_command("diff", str(SHIPPED_PLANS))[1] is None


def test_diff_after_an_admin_edit_exits_1_and_names_the_field(tmp_path, owner, approver):
    """A field policy changed through the reviewed workflow (as the admin does) is drift:
    diff exits 1 and names the schema, revision and field, live -> plan."""
    client_telemetry_schema_register()
    plan_command("export", str(tmp_path), "--schema", CLIENT_TELEMETRY_SCHEMA)
    edit = change_request_draft(
        kind=ChangeKind.FIELD_POLICIES,
        target=f"schema:{CLIENT_TELEMETRY_SCHEMA}",
        payload={"1": {"surface": {"classification": "personal", "action": "hash"}}},
        reason="surface names a person's device here",
        actor=owner,
    )
    change_request_approve(change_request=edit, actor=approver, apply=True)

    out, error = plan_command("diff", str(tmp_path))

    assert error is not None and error.returncode == 1
    assert f"{CLIENT_TELEMETRY_SCHEMA}: differs from its plan" in out
    assert "v1 surface: personal / hash -> internal / keep" in out
    assert "app_version" not in out  # only what differs


def test_apply_without_approver_submits_one_request_per_target(tmp_path, owner):
    """Without --approver each differing target gets one submitted request; nothing applies."""
    contract_register()

    _, error = plan_command("apply", str(SHIPPED_PLANS), "--author", "olivia")

    assert error is None, error
    requests = ChangeRequest.objects.all()
    assert sorted(r.target for r in requests) == [
        f"metric:{COUNTER}",
        f"schema:{CLIENT_TELEMETRY_SCHEMA}",
    ]
    assert {r.status for r in requests} == {ChangeStatus.SUBMITTED}
    assert not MetricDefinition.objects.exists()
    out, error = plan_command("diff", str(SHIPPED_PLANS))
    assert error.returncode == 1
    assert f"metric:{COUNTER}\n    enabled: — -> yes\n" in out
    assert "buckets" not in out  # a default left empty is no difference


def test_a_refused_file_leaves_nothing_proposed(tmp_path, owner, approver):
    """One bad file among good ones: every problem is named (file, key path) and no change
    request is proposed for any file, the good ones included."""
    client_telemetry_schema_register()
    plan_command("export", str(tmp_path))
    edit_plan(
        tmp_path / PLAN_FILE,
        lambda d: d["revisions"][1]["fields"].update(
            surface={"classification": "personal", "action": "hash"}
        ),
    )
    audit = tmp_path / f"{AUDIT_SCHEMA}.yaml"
    edit_plan(
        audit,
        lambda d: d["revisions"][1]["fields"].update(
            no_such_field={"classification": "internal", "action": "keep"}
        ),
    )

    _, error = plan_command("apply", str(tmp_path), "--author", "olivia", "--approver", "arthur")

    assert error is not None and "nothing proposed" in str(error)
    assert f"{AUDIT_SCHEMA} v1 has no field 'no_such_field'" in str(error)
    assert not ChangeRequest.objects.exists()

    audit.write_text("schema: x\nrevisions: {1: {status: alive}}\nfieldz: {}\n")
    _, error = plan_command("apply", str(tmp_path), "--author", "olivia")
    assert error.returncode == 2
    assert f"{audit.name}: unknown key 'fieldz'" in str(error)
    assert f"{audit.name}: revisions.1.status: one of" in str(error)
    assert not ChangeRequest.objects.exists()


def test_a_metric_labelled_by_a_pseudonymous_field_is_refused(tmp_path, owner, approver):
    """The catalogue's guard rails hold for planned metrics, under the plan's own policies."""
    client_telemetry_schema_register()
    plan_command("export", str(tmp_path), "--schema", CLIENT_TELEMETRY_SCHEMA)
    edit_plan(
        tmp_path / PLAN_FILE,
        lambda d: d.update(
            metrics={"by_session": {"labels": [{"label": "s", "source": "field:session_id"}]}}
        ),
    )

    _, error = plan_command("apply", str(tmp_path), "--author", "olivia", "--approver", "arthur")

    assert "metric by_session: label s: field session_id is classified pseudonymous_id" in str(
        error
    )
    assert not ChangeRequest.objects.exists()


def test_the_author_cannot_approve_their_own_plan(owner, approver):
    """Four eyes: --approver naming the author is refused and nothing is proposed."""
    contract_register()

    _, error = plan_command(
        "apply", str(SHIPPED_PLANS), "--author", "olivia", "--approver", "olivia"
    )

    assert error is not None and "own_change" in str(error)
    assert not ChangeRequest.objects.exists()
    assert not MetricDefinition.objects.exists()

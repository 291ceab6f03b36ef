"""manage.py ingest_artifact: files through the pipeline, counts and reasons, exit status."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ingest.models import Event
from tests.factories import (
    AUDIT_SCHEMA,
    PERF_SIGNOFF_SAMPLE_COUNT,
    audit_event,
    delivery_snapshot,
    perf_signoff_artifact,
)

pytestmark = pytest.mark.django_db


def write(tmp_path, name: str, content: str):
    path = tmp_path / name
    path.write_text(content)
    return str(path)


def run(*args: str) -> tuple[str, str, int]:
    from io import StringIO

    out, err = StringIO(), StringIO()
    try:
        call_command("ingest_artifact", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue() + str(exc), exc.returncode
    return out.getvalue(), err.getvalue(), 0


def test_signoff_file_is_ingested_then_reported_duplicate(platform_config, tmp_path):
    """First run accepts every sample (exit 0); the second answers duplicates (exit 0)."""
    path = write(tmp_path, "signoff.json", json.dumps(perf_signoff_artifact(build_id="b-7")))
    out, _, status = run("--kind", "perf-signoff", path)
    assert status == 0
    assert f"received {PERF_SIGNOFF_SAMPLE_COUNT}, accepted {PERF_SIGNOFF_SAMPLE_COUNT}" in out
    assert "build_id b-7" in out
    out, _, status = run("--kind", "perf-signoff", path)
    assert status == 0 and f"duplicate {PERF_SIGNOFF_SAMPLE_COUNT}, rejected 0" in out
    assert Event.objects.filter(source="artifacts").count() == PERF_SIGNOFF_SAMPLE_COUNT


def test_bad_files_are_reported_and_the_good_ones_still_land(platform_config, tmp_path):
    """A truncated file is named with its error, a bad sample with its reason; exit 1."""
    broken = write(tmp_path, "broken.json", json.dumps(perf_signoff_artifact())[:200])
    artifact = perf_signoff_artifact(build_id="b-8")
    artifact["metrics"]["soak"]["errors"] = "none"
    good = write(tmp_path, "good.json", json.dumps(artifact))
    out, err, status = run("--kind", "perf-signoff", "--source", "web-shell", broken, good)
    assert status == 1
    assert "broken.json: not ingested: artifact is not valid JSON (line 1" in err
    assert "soak.errors: not_numeric: value is a string, not a number" in out
    assert Event.objects.filter(source="web-shell").count() == PERF_SIGNOFF_SAMPLE_COUNT - 1


def test_jsonl_reports_rejections_by_line_number(platform_config, tmp_path):
    """Each line is an event of --schema; bad lines are reported as `line N: code: reason`."""
    content = "\n".join(
        [json.dumps(audit_event()), "{oops", json.dumps(audit_event(outcome=["x"])), ""]
    )
    path = write(tmp_path, "events.jsonl", content)
    out, _, status = run("--kind", "jsonl", "--schema", AUDIT_SCHEMA, path)
    assert status == 1
    assert "received 3, accepted 1, duplicate 0, rejected 2" in out
    assert "  line 2: malformed_json: line is not valid JSON" in out
    assert "  line 3: wrong_type (outcome):" in out


def test_jsonl_needs_a_schema(platform_config, tmp_path):
    """--kind jsonl without --schema is a usage error."""
    path = write(tmp_path, "events.jsonl", json.dumps(audit_event()))
    with pytest.raises(CommandError, match="--schema"):
        call_command("ingest_artifact", "--kind", "jsonl", path)


def test_json_format_and_diagnostics(platform_config, tmp_path):
    """--format json prints one report per file; diagnostics take --service/--instance."""
    path = write(tmp_path, "snapshot.json", json.dumps(delivery_snapshot()))
    out, _, status = run(
        "--kind", "diagnostics", "--instance", "runtime-3", "--format", "json", path
    )
    assert status == 0
    (report,) = json.loads(out)
    assert report["file"] == path and report["accepted"] == 21
    assert report["instance"] == "runtime-3" and report["kind"] == "diagnostics"


def test_missing_file_is_reported(platform_config, tmp_path):
    """An unreadable file is reported and fails the run."""
    _, err, status = run("--kind", "perf-signoff", str(tmp_path / "nope.json"))
    assert status == 1 and "nope.json: not ingested" in err

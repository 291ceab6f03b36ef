"""Release sign-off artifacts: one performance_budget_sample per measured value, bad parts refused."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from ingest.artifacts import ArtifactError, perf_signoff_ingest
from ingest.artifacts.perf_signoff import match_budgets, perf_signoff_parse, unit_for
from ingest.models import Event
from ingest.pipeline import IngestContext
from tests.factories import PERF_SIGNOFF_SAMPLE_COUNT, perf_signoff_artifact


def encode(artifact: dict) -> bytes:
    return json.dumps(artifact).encode()


def ingest(artifact: dict | bytes, source: str = "release-pipeline"):
    content = artifact if isinstance(artifact, bytes) else encode(artifact)
    return perf_signoff_ingest(content=content, context=IngestContext(source=source))


def samples(source: str = "release-pipeline") -> dict[str, dict]:
    events = Event.objects.filter(event_class_id="performance_budget_sample", source=source)
    return {event.payload["metric_path"]: event.payload for event in events}


# -- pure -----------------------------------------------------------------------------


def test_every_numeric_value_becomes_a_sample_with_unit_and_budget():
    """Each numeric leaf of `metrics` is one event: dotted path, value, unit, matching budget."""
    parsed = perf_signoff_parse(encode(perf_signoff_artifact(build_id="b-1")))
    bodies = {entry.ref: entry.item.body for entry in parsed.items}
    assert len(bodies) == PERF_SIGNOFF_SAMPLE_COUNT and not parsed.rejections
    root = bodies["boot.root.p95_ms"]
    assert (root["value"], root["unit"], root["budget"], root["budget_name"]) == (
        2.03,
        "ms",
        120.0,
        "root_p95_ms",
    )
    assert root["build_id"] == "b-1" and root["pass"] is True
    # Budgets whose names do not follow the path come from the alias table.
    assert bodies["boot.wasm_asset.p95_ms"]["budget_name"] == "wasm_p95_ms"
    assert bodies["soak.rss_kb.growth"]["budget_name"] == "rss_growth_kb"
    assert bodies["boot.asset_sizes.js_bytes"]["budget"] == 380000
    assert "budget" not in bodies["boot.root.avg_ms"]
    assert bodies["soak.rss_kb.min"]["unit"] == "kB"
    assert bodies["soak.errors"]["unit"] == "count"


def test_event_ids_derive_from_build_and_metric_path():
    """The same build and path always give the same id; another build another id."""
    first = perf_signoff_parse(encode(perf_signoff_artifact(build_id="b-1")))
    again = perf_signoff_parse(encode(perf_signoff_artifact(build_id="b-1")))
    other = perf_signoff_parse(encode(perf_signoff_artifact(build_id="b-2")))

    def ids(parsed):
        return [entry.item.body["envelope"]["event_id"] for entry in parsed.items]

    assert ids(first) == ids(again)
    assert set(ids(first)).isdisjoint(ids(other))
    assert all(event_id.startswith("sha256:") for event_id in ids(first))


def test_budget_matching_reports_unknown_and_ambiguous_budgets():
    """A budget matching no path is unknown, one matching several paths is ambiguous."""
    paths = ["boot.root.p95_ms", "soak.root.p95_ms", "boot.manifest.p95_ms"]
    matched, problems = match_budgets(
        paths, ["manifest_p95_ms", "root_p95_ms", "paint_p95_ms", "x"], {"x": "nowhere"}
    )
    assert matched == {"boot.manifest.p95_ms": "manifest_p95_ms"}
    assert problems == {
        "root_p95_ms": "ambiguous_budget",
        "paint_p95_ms": "unknown_budget",
        "x": "unknown_budget",
    }


def test_units_come_from_the_path():
    """Units follow the path's suffixes, the leaf first, then its parents."""
    assert [
        unit_for(p) for p in ("a.p95_ms", "rss_kb.max", "x.js_bytes", "a.b", "auth_errors")
    ] == [
        "ms",
        "kB",
        "bytes",
        "",
        "count",
    ]


# -- through the pipeline ---------------------------------------------------------------

pytestmark_db = pytest.mark.django_db


@pytestmark_db
def test_artifact_is_stored_and_reingesting_it_is_idempotent(platform_config):
    """All samples are stored once; the same artifact again answers every sample duplicate."""
    artifact = perf_signoff_artifact(build_id="20260222T181159Z")
    first = ingest(artifact)
    assert first.totals() == {
        "received": PERF_SIGNOFF_SAMPLE_COUNT,
        "accepted": PERF_SIGNOFF_SAMPLE_COUNT,
        "duplicate": 0,
        "rejected": 0,
    }
    again = ingest(artifact)
    assert again.totals()["duplicate"] == PERF_SIGNOFF_SAMPLE_COUNT
    assert [r.event_id for r in again.results] == [r.event_id for r in first.results]
    stored = samples()
    assert len(stored) == PERF_SIGNOFF_SAMPLE_COUNT
    assert stored["boot.root.p95_ms"]["budget"] == 120.0
    assert stored["boot.root.p95_ms"]["build_id"] == "20260222T181159Z"


@pytestmark_db
def test_values_over_budget_or_listed_as_failures_fail(platform_config):
    """A value above its budget fails, so does one the artifact lists in budget_failures;
    an artifact whose declared pass disagrees gets a warning."""
    artifact = perf_signoff_artifact()
    artifact["metrics"]["boot"]["root"]["p95_ms"] = 130.5
    artifact["budget_failures"] = ["wasm_gzip_bytes"]
    report = ingest(artifact)
    stored = samples()
    assert stored["boot.root.p95_ms"].get("pass", False) is False
    assert stored["boot.asset_sizes.wasm_gzip_bytes"].get("pass", False) is False
    assert stored["boot.manifest.p95_ms"]["pass"] is True
    assert any("declares pass=true but 2 sample(s) fail" in w for w in report.warnings)


@pytestmark_db
def test_bad_values_and_budgets_are_rejected_one_by_one_and_the_rest_lands(platform_config):
    """Non-numeric, null and boolean values, unknown and non-numeric budgets are rejected
    with reasons; every good sample is stored."""
    artifact = perf_signoff_artifact()
    artifact["metrics"]["boot"]["root"]["p95_ms"] = "2.03"
    artifact["metrics"]["boot"]["root"]["avg_ms"] = None
    artifact["metrics"]["soak"]["errors"] = True
    artifact["budgets"]["paint_p95_ms"] = 80
    artifact["budgets"]["manifest_p95_ms"] = "fast"
    report = ingest(artifact)
    rejected = {r.ref: r.code for r in report.rejected}
    assert rejected == {
        "boot.root.p95_ms": "not_numeric",
        "boot.root.avg_ms": "missing_value",
        "soak.errors": "not_numeric",
        "budgets.paint_p95_ms": "unknown_budget",
        "budgets.manifest_p95_ms": "invalid_budget",
    }
    assert all(r.message for r in report.rejected)
    assert report.totals()["accepted"] == PERF_SIGNOFF_SAMPLE_COUNT - 3
    stored = samples()
    assert "boot.root.p95_ms" not in stored
    assert "budget" not in stored["boot.manifest.p95_ms"]  # its budget was unusable


@pytestmark_db
@pytest.mark.parametrize(
    ("content", "code"),
    [
        (encode(perf_signoff_artifact())[:-40], "malformed_json"),
        (b"\xff\xfe{}", "invalid_encoding"),
        (b"[1, 2]", "body_not_an_object"),
        (encode(perf_signoff_artifact(build_id="", timestamp=None)), "missing_field"),
        (encode(perf_signoff_artifact(timestamp="yesterday")), "invalid_timestamp"),
        (encode(perf_signoff_artifact(metrics=[1, 2])), "body_not_an_object"),
        (encode(perf_signoff_artifact(metrics={})), "empty_artifact"),
        (
            b'{"timestamp": "20260222T181254Z", "build_id": "b", "metrics": {"a": NaN}}',
            "malformed_json",
        ),
    ],
)
def test_unusable_artifacts_are_refused_whole_and_nothing_is_stored(platform_config, content, code):
    """Truncated or broken JSON and artifacts without their required fields are refused."""
    with pytest.raises(ArtifactError) as refused:
        ingest(content)
    assert refused.value.code == code
    assert not Event.objects.filter(event_class_id="performance_budget_sample").exists()


@pytestmark_db
def test_truncated_artifact_error_names_line_and_column(platform_config):
    """The refusal of truncated JSON says where the file stops making sense."""
    with pytest.raises(ArtifactError) as refused:
        ingest(json.dumps(perf_signoff_artifact(), indent=2).encode()[:300])
    assert "line " in refused.value.message and "column " in refused.value.message


@pytestmark_db
def test_artifacts_older_than_the_class_retention_are_expired_per_sample(platform_config):
    """A sign-off older than the performance_budget_sample retention (365 days) is not
    stored: each sample is answered `expired`; a future one `clock_skew`."""
    old = ingest(perf_signoff_artifact(age=timedelta(days=400)))
    assert {r.code for r in old.results} == {"expired"}
    future = ingest(perf_signoff_artifact(age=-timedelta(days=1)))
    assert {r.code for r in future.results} == {"clock_skew"}
    assert not Event.objects.filter(event_class_id="performance_budget_sample").exists()


@pytestmark_db
def test_explicit_source_is_recorded_and_dedupes_separately(platform_config):
    """A source given with the artifact is recorded on each sample instead of the key's."""
    content = encode(perf_signoff_artifact(build_id="b-9"))
    report = perf_signoff_ingest(
        content=content, context=IngestContext(source="ci"), source="web-shell"
    )
    assert report.totals()["accepted"] == PERF_SIGNOFF_SAMPLE_COUNT
    assert len(samples("web-shell")) == PERF_SIGNOFF_SAMPLE_COUNT
    assert not samples("ci")


@pytestmark_db
def test_nul_characters_are_rejected_per_sample(platform_config):
    """A metric path with U+0000 (which PostgreSQL cannot store) is rejected on its own."""
    artifact = perf_signoff_artifact()
    artifact["metrics"]["boot"]["ro\u0000ot"] = {"p95_ms": 1.0}
    report = ingest(artifact)
    assert [(r.ref, r.code) for r in report.rejected] == [
        ("boot.ro\u0000ot.p95_ms", "invalid_value")
    ]
    assert report.totals()["accepted"] == PERF_SIGNOFF_SAMPLE_COUNT

"""Metric conformance: PromQL extraction, rule files, dashboards, and `manage.py check_conformance`.

The engine tests need no database; the command tests patch the catalogue (or use the real one).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from governance import ports
from governance.conformance import (
    CatalogueEntry,
    ConformanceReport,
    Finding,
    InputError,
    PromQLError,
    check_files,
    exposed_series,
    promql_metric_names,
    promql_references,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "conformance"
KHALA = FIXTURES / "khala-slo-prometheusrule.yaml"
PLATFORM = FIXTURES / "platform-rules.yaml"
FLAT = FIXTURES / "dashboard-flat.json"
ROWS = FIXTURES / "dashboard-rows.json"
COLLAPSED = FIXTURES / "dashboard-collapsed.json"
BAD = FIXTURES / "bad"
REPO = Path(__file__).resolve().parents[2]

#: What the platform emits in these tests: its ingest families plus the sync-client telemetry.
CATALOGUE = [
    CatalogueEntry("telemetry_ingest_events", "counter"),
    CatalogueEntry("telemetry_ingest_deprecated_schema_events", "counter"),
    CatalogueEntry("telemetry_redactions", "counter"),
    CatalogueEntry("telemetry_ingest_batch_seconds", "histogram"),
    CatalogueEntry("telemetry_retention_backlog_events", "gauge"),
    CatalogueEntry("openagents_sync_client_telemetry_event_count", "counter"),
    CatalogueEntry("openagents_sync_client_replay_lag_seconds", "histogram"),
]


def missing_by_name(report: ConformanceReport) -> dict[tuple[str, str], list[str]]:
    return {(f.kind, f.name): list(f.metrics) for f in report.missing}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- PromQL extraction


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        pytest.param(
            'sum(rate(errors_total{code=~"5.."}[5m])) / clamp_min(sum(rate(requests_total[5m])), 1)',
            {"errors_total", "requests_total"},
            id="ratio-clamp_min",
        ),
        pytest.param("sum by (x) (rate(foo_total[5m]))", {"foo_total"}, id="sum-by-rate"),
        pytest.param(
            "histogram_quantile(0.99, sum by (le) (rate(foo_bucket[5m])))",
            {"foo_bucket"},
            id="histogram_quantile",
        ),
        pytest.param("quantile_over_time(0.9, foo[10m])", {"foo"}, id="quantile_over_time"),
        pytest.param("sum(rate(foo_total[5m])) or vector(0)", {"foo_total"}, id="or-vector"),
        pytest.param(
            'foo{job=~"api|worker", path!~"/health.*", env!="dev"}', {"foo"}, id="label-regex"
        ),
        pytest.param("max_over_time(rate(x[1m])[30m:1m])", {"x"}, id="subquery"),
        pytest.param('{__name__="x"}', {"x"}, id="name-matcher"),
        pytest.param('rate({__name__="x", job=~"a.*"}[5m])', {"x"}, id="name-matcher-range"),
        pytest.param(
            "foo offset 5m + bar @ 1609746000 - baz @ end()", {"foo", "bar", "baz"}, id="offset-at"
        ),
        pytest.param("rate(foo[5m] offset -1h @ start())", {"foo"}, id="range-offset-at"),
        pytest.param(
            "max by (pod) (queue_depth) / on (pod) group_left (node) max by (pod) (queue_capacity)",
            {"queue_depth", "queue_capacity"},
            id="on-group_left",
        ),
        pytest.param(
            "a and on () b unless ignoring (x) c * on (i) group_right d",
            {"a", "b", "c", "d"},
            id="set-ops",
        ),
        pytest.param(
            'label_replace(up{job="x"}, "host", "$1", "instance", "(.*):.*")',
            {"up"},
            id="string-args",
        ),
        pytest.param("topk(scalar(k), bar) > bool 3", {"k", "bar"}, id="aggregate-param"),
        pytest.param('count_values("version", build_info)', {"build_info"}, id="count_values"),
        pytest.param("-(a) + absent(b)", {"a", "b"}, id="unary-absent"),
        pytest.param("job:requests:rate5m > 1", {"job:requests:rate5m"}, id="recording-name"),
        pytest.param('{__name__="a" or __name__="b"}', {"a", "b"}, id="or-matchers"),
        pytest.param("time() - 1", set(), id="no-selectors"),
    ],
)
def test_promql_metric_names(expr, names):
    """Every vector and matrix selector's metric name is found, wherever in the AST it sits."""
    assert promql_metric_names(expr) == names


def test_regex_name_matcher_is_unresolvable():
    """A `__name__=~` selector names no metric: it is noted as unresolvable, not guessed at."""
    refs = promql_references('sum(rate({__name__=~"khala_.*_errors_total"}[5m])) + known')
    assert refs.names == {"known"}
    assert refs.unresolvable == ('{__name__=~"khala_.*_errors_total"}',)
    assert promql_metric_names('{__name__=~"x|y"}') == set()


def test_selector_without_name_is_unresolvable():
    """`{job="api"}` (every metric of a job) and `__name__!=` have no fixed metric name either."""
    assert promql_references('{job="api"}').unresolvable == ('{job="api"}',)
    assert promql_references('{__name__!="x", job="a"}').names == frozenset()


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("sum(rate(foo[5m])", "unclosed left parenthesis"),
        ("", "no expression found"),
        ('foo{job="a"', "unexpected end of input inside braces"),
        ("rate(foo[$__rate_interval])", "unexpected character inside brackets"),
    ],
)
def test_unparsable_promql_raises_with_parser_message(expr, message):
    """A parse failure raises PromQLError carrying the parser's own explanation."""
    with pytest.raises(PromQLError) as excinfo:
        promql_metric_names(expr)
    assert message in excinfo.value.message


# --------------------------------------------------------------------------- catalogue suffixes


def test_counter_series_names():
    """A counter `foo` is exposed as `foo_total`/`foo_created`; `foo` is accepted for `foo_total`."""
    assert exposed_series(CatalogueEntry("foo", "counter")) == {"foo", "foo_total", "foo_created"}
    assert exposed_series(CatalogueEntry("foo_total", "counter")) == {
        "foo",
        "foo_total",
        "foo_created",
    }


def test_histogram_and_summary_series_names():
    """Histograms expose _bucket/_count/_sum (not the bare name); summaries the bare quantiles."""
    assert exposed_series(CatalogueEntry("lat", "histogram")) == {
        "lat_bucket",
        "lat_count",
        "lat_sum",
        "lat_created",
    }
    assert exposed_series(CatalogueEntry("lat", "summary")) == {
        "lat",
        "lat_count",
        "lat_sum",
        "lat_created",
    }
    assert exposed_series(CatalogueEntry("depth", "gauge")) == {"depth"}
    assert exposed_series(CatalogueEntry("raw", "unknown")) == {"raw"}
    assert exposed_series(CatalogueEntry("build", "info")) == {"build", "build_info"}


def test_suffix_references_are_satisfied(tmp_path):
    """_bucket/_count/_sum of a histogram, _total of a counter, `foo` for `foo_total` all pass;
    a summary has no _bucket and a classic histogram no bare series."""
    rules = write(
        tmp_path,
        "rules.yaml",
        """
groups:
  - name: g
    rules:
      - alert: HistogramParts
        expr: rate(lat_sum[5m]) / rate(lat_count[5m]) > histogram_quantile(0.9, rate(lat_bucket[5m]))
      - alert: SummaryParts
        expr: rpc{quantile="0.99"} > rate(rpc_sum[5m]) / rate(rpc_count[5m])
      - alert: CounterSuffixes
        expr: rate(jobs_total[5m]) > 0 and rate(retries[5m]) > 0 and jobs_created > 0
      - alert: WrongParts
        expr: lat > 1 or rpc_bucket > 1
""",
    )
    catalogue = [
        CatalogueEntry("lat", "histogram"),
        CatalogueEntry("rpc", "summary"),
        CatalogueEntry("jobs", "counter"),
        CatalogueEntry("retries_total", "counter"),
    ]
    report = check_files([rules], catalogue)
    assert missing_by_name(report) == {("alert", "WrongParts"): ["lat", "rpc_bucket"]}
    assert report.unused == []


# --------------------------------------------------------------------------- rule files


def test_prometheus_rule_manifest_multi_document():
    """A multi-document PrometheusRule manifest: rules under spec.groups, other kinds ignored."""
    report = check_files([KHALA], CATALOGUE)
    assert report.errors == []
    assert missing_by_name(report) == {
        # The recording rule it uses lives in platform-rules.yaml, which was not given.
        ("alert", "KhalaSyncErrorBudgetBurn"): ["khala:sync_client_errors:ratio_rate5m"],
        ("alert", "KhalaFanoutDropping"): ["openagents_runtime_khala_fanout_dropped_total"],
        ("alert", "KhalaFanoutQueueSaturated"): [
            "openagents_runtime_khala_fanout_queue_capacity",
            "openagents_runtime_khala_fanout_queue_depth",
        ],
        ("alert", "KhalaSubscribersFlapping"): ["openagents_runtime_khala_subscriber_count"],
    }
    # KhalaSyncReconnectStorm (`..._event_count{event_type="reconnect"}` against the counter),
    # the replay-lag histogram and `up` (written by Prometheus itself) all pass.
    assert report.checked == 9
    assert report.exit_code() == 1


def test_regex_name_selector_reported_as_unresolvable_not_missing():
    """The `{__name__=~...}` alert is listed as unresolvable and does not fail the check."""
    report = check_files([KHALA], CATALOGUE)
    [item] = report.unresolvable
    assert (item.kind, item.name) == ("alert", "KhalaRuntimeErrors")
    assert item.selectors == ('{__name__=~"openagents_runtime_khala_.*_errors_total"}',)
    assert ("alert", "KhalaRuntimeErrors") not in missing_by_name(report)


def test_plain_rule_file_recording_rules_satisfy_references():
    """A plain `groups:` file: its own records satisfy its alerts; unknown metrics are missing,
    and a record whose expression uses another file's record is reported as kind "record"."""
    report = check_files([PLATFORM], CATALOGUE)
    assert report.errors == []
    assert missing_by_name(report) == {
        ("record", "khala:sync_client_errors:ratio_rate5m"): ["khala:sync_client_events:rate5m"],
        ("alert", "TelemetryIngestQueueBacklog"): ["telemetry_ingest_queue_depth"],
    }


@pytest.mark.parametrize(
    "order", [(KHALA, PLATFORM), (PLATFORM, KHALA)], ids=["khala-first", "platform-first"]
)
def test_recording_rules_count_across_files_in_any_order(order):
    """Recording rules of every given file count as emitted, whichever file comes first."""
    report = check_files(list(order), CATALOGUE)
    found = missing_by_name(report)
    assert ("alert", "KhalaSyncErrorBudgetBurn") not in found
    assert ("record", "khala:sync_client_errors:ratio_rate5m") not in found
    assert ("alert", "TelemetryIngestQueueBacklog") in found


def test_record_with_unparsable_expr_still_defines_its_name(tmp_path):
    """A broken recording rule is an input error, but its name still counts as emitted."""
    rules = write(
        tmp_path,
        "rules.yaml",
        """
groups:
  - name: g
    rules:
      - record: job:broken:rate5m
        expr: sum(rate(x[5m])
      - alert: UsesBroken
        expr: job:broken:rate5m > 1
""",
    )
    report = check_files([rules], [])
    assert report.missing == []
    assert [(e.kind, e.name) for e in report.errors] == [("record", "job:broken:rate5m")]


# --------------------------------------------------------------------------- dashboards


def test_dashboard_flat_panels_and_template_variables():
    """Flat panels: per-panel findings (title + id), Grafana macros and interval variables are
    substituted, Loki targets, empty queries and text panels skipped, query variables checked."""
    report = check_files([FLAT], CATALOGUE)
    assert report.errors == []
    assert missing_by_name(report) == {
        ("panel", "Khala Sync Client / Fanout drops (id 3)"): [
            "openagents_runtime_khala_fanout_dropped_total"
        ],
        ("variable", "Khala Sync Client / $pod"): ["openagents_runtime_khala_fanout_queue_depth"],
    }
    # Reconnects, replay lag, and the two query variables were checked; Loki/text panels not.
    assert report.checked == 5


def test_dashboard_old_rows_schema():
    """Old-schema dashboards keep their panels in `rows`; a panel without title is named by id."""
    report = check_files([ROWS], CATALOGUE)
    assert report.errors == []
    assert missing_by_name(report) == {
        ("panel", "Telemetry Ingest (legacy) / Queue depth (id 2)"): [
            "telemetry_ingest_queue_depth"
        ]
    }
    assert report.checked == 3


def test_dashboard_collapsed_row_panels_and_api_wrapper():
    """Collapsed row panels keep children in `panels`; Grafana API exports wrap `dashboard`."""
    report = check_files([COLLAPSED], CATALOGUE)
    assert report.errors == []
    assert missing_by_name(report) == {
        ("panel", "Khala Runtime / Subscribers (id 21)"): [
            "openagents_runtime_khala_subscriber_count"
        ],
        ("panel", "Khala Runtime / Subscribers vs capacity (id 22)"): [
            "kube_pod_info",
            "openagents_runtime_khala_subscriber_count",
        ],
    }
    assert report.checked == 3


def test_dashboard_panel_findings_merge_targets(tmp_path):
    """A panel with several targets yields one finding with the union of their missing metrics."""
    dashboard = {
        "title": "D",
        "panels": [
            {
                "title": "P",
                "targets": [
                    {"refId": "A", "expr": "rate(a_total[5m])"},
                    {"refId": "B", "expr": "b + a_total"},
                ],
            }
        ],
    }
    path = write(tmp_path, "d.json", json.dumps(dashboard))
    report = check_files([path], [])
    assert report.missing == [Finding(str(path), "panel", "D / P", ("a_total", "b"))]


def test_dashboard_unknown_template_variable_is_a_clear_error(tmp_path):
    """A query whose PromQL only parses after a non-interval variable is substituted is an
    input error naming the panel, the target and the variable problem."""
    dashboard = {
        "title": "D",
        "panels": [{"id": 7, "targets": [{"refId": "A", "expr": "topk($n, foo)"}]}],
    }
    path = write(tmp_path, "d.json", json.dumps(dashboard))
    report = check_files([path], [CatalogueEntry("foo", "gauge")])
    [error] = report.errors
    assert (error.kind, error.name) == ("panel", "D / panel id 7")
    assert "target A" in error.message
    assert "Grafana template variable" in error.message
    assert report.exit_code() == 2


# --------------------------------------------------------------------------- allow-list, unused


def test_allow_missing_suppresses_named_metrics():
    """`allow_missing` names series that may be referenced without an emitting source."""
    allowed = {
        "khala:sync_client_errors:ratio_rate5m",
        "openagents_runtime_khala_fanout_dropped_total",
        "openagents_runtime_khala_fanout_queue_depth",
        "openagents_runtime_khala_fanout_queue_capacity",
    }
    report = check_files([KHALA], CATALOGUE, allow_missing=allowed)
    assert missing_by_name(report) == {
        ("alert", "KhalaSubscribersFlapping"): ["openagents_runtime_khala_subscriber_count"]
    }
    allowed.add("openagents_runtime_khala_subscriber_count")
    report = check_files([KHALA], CATALOGUE, allow_missing=allowed)
    assert report.missing == []
    assert report.exit_code() == 0


def test_unused_catalogue_metrics_are_informational(tmp_path):
    """Catalogue metrics no rule or panel uses are listed, sorted, and never change the exit
    code; a suffixed reference (_total, _bucket) marks its family used."""
    report = check_files([KHALA, PLATFORM, FLAT, ROWS, COLLAPSED], CATALOGUE)
    assert report.unused == [
        "telemetry_ingest_deprecated_schema_events",
        "telemetry_retention_backlog_events",
    ]
    ok = write(tmp_path, "ok.yaml", "groups: [{name: g, rules: [{alert: A, expr: up == 0}]}]\n")
    report = check_files([ok], CATALOGUE)
    assert report.unused == sorted(entry.name for entry in CATALOGUE)
    assert report.exit_code() == 0


def test_prometheus_synthetic_series_are_emitted(tmp_path):
    """`up`, `ALERTS` and `scrape_*` come from Prometheus itself, not from a catalogue."""
    rules = write(
        tmp_path,
        "r.yaml",
        """
groups:
  - name: g
    rules:
      - alert: Down
        expr: up == 0 or scrape_duration_seconds > 10 or ALERTS{alertstate="firing"}
""",
    )
    assert check_files([rules], []).missing == []
    assert check_files([rules], [], synthetic=()).missing[0].metrics == (
        "ALERTS",
        "scrape_duration_seconds",
        "up",
    )


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("not-yaml.yaml", "not valid YAML: expected the node content, but found '-' at line 4"),
        ("no-rules.yaml", "no Prometheus rules (`groups:` or `kind: PrometheusRule`)"),
        ("invalid.json", "not valid JSON: Expecting value at line 2 column 1"),
        ("dashboard-bad-shape.json", "panels: expected a list, got a mapping ('Broken layout')"),
    ],
)
def test_unusable_files_are_input_errors(name, message):
    """Files that are not YAML/JSON, hold no rules or have an unexpected shape: exit code 2."""
    report = check_files([BAD / name], CATALOGUE)
    [error] = report.errors
    assert error.file == str(BAD / name)
    assert message in error.message
    assert report.exit_code() == 2


def test_unparsable_promql_reported_and_other_rules_checked():
    """A rule whose PromQL does not parse is reported with file, rule and parser error; the
    other rules of the file are still checked, and missing metrics still listed."""
    path = BAD / "bad-promql.yaml"
    report = check_files([path], CATALOGUE)
    assert report.errors == [
        InputError(
            str(path),
            "PromQL does not parse (expr): unclosed left parenthesis in: "
            "sum(rate(openagents_sync_client_telemetry_event_count[5m]) / 2",
            "alert",
            "KhalaBrokenRatio",
        )
    ]
    assert missing_by_name(report) == {
        ("alert", "KhalaFanoutDropping"): ["openagents_runtime_khala_fanout_dropped_total"]
    }
    assert report.exit_code() == 2  # errors win over missing metrics


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("groups: []\n", "rule file defines no alerting or recording rules"),
        ("groups: {name: x}\n", "groups: expected a list of rule groups, got a mapping"),
        ("groups: [{name: g, rules: 3}]\n", "groups[0].rules: expected a list of rules"),
        ("groups: [[1]]\n", "groups[0]: expected a rule group mapping, got a list"),
        ("groups: [{name: g, rules: [{expr: up}]}]\n", "exactly one of `alert:` or `record:`"),
        ("groups: [{name: g, rules: [{alert: A}]}]\n", "`expr:` missing or not a string"),
        ("groups: [{name: g, rules: [{alert: A, expr: '  '}]}]\n", "`expr:` is empty"),
        ("just some words\n", "expected a mapping (rule file, PrometheusRule or dashboard)"),
        ("", "empty file"),
        (
            "kind: PrometheusRule\nmetadata: {name: khala-slo}\nspec: {}\n",
            "PrometheusRule 'khala-slo': PrometheusRule without `spec.groups`",
        ),
    ],
)
def test_rule_file_shape_errors(tmp_path, text, message):
    """YAML without rules or of an unexpected shape gets a message saying what is wrong where."""
    report = check_files([write(tmp_path, "rules.yaml", text)], CATALOGUE)
    assert any(message in error.message for error in report.errors), report.errors
    assert report.exit_code() == 2


@pytest.mark.parametrize(
    ("dashboard", "message"),
    [
        ({"title": "D", "panels": [{"targets": {"expr": "up"}}]}, "targets: expected a list"),
        ({"title": "D", "panels": ["x"]}, "panels[0]: expected a panel mapping, got a string"),
        ({"title": "D", "rows": [{"panels": 1}]}, "rows[0].panels: expected a list"),
        ({"title": "D", "panels": [{"targets": [{"expr": 5}]}]}, "expr: expected a string"),
        ({"title": "D", "templating": [], "panels": []}, "templating: expected a mapping"),
        ([{"title": "D"}], "expected a mapping"),
        ({"title": "D", "meta": {}}, "no Grafana dashboard"),
    ],
)
def test_dashboard_shape_errors(tmp_path, dashboard, message):
    """Dashboard JSON of an unexpected shape is an input error naming the offending path."""
    report = check_files([write(tmp_path, "d.json", json.dumps(dashboard))], CATALOGUE)
    assert any(message in error.message for error in report.errors), report.errors
    assert report.exit_code() == 2


def test_binary_missing_and_empty_directory_paths(tmp_path):
    """A binary file, a path that does not exist and a directory without rule files are errors."""
    binary = tmp_path / "rules.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    empty = tmp_path / "empty"
    empty.mkdir()
    report = check_files([binary, tmp_path / "nope.yaml", empty], CATALOGUE)
    assert [e.message for e in report.errors] == [
        "not a text file (not UTF-8): not YAML or JSON",
        "no such file or directory",
        "directory holds no .yaml, .yml or .json files",
    ]


def test_directories_are_searched_recursively():
    """A directory argument checks every .yaml/.yml/.json file under it, in sorted order."""
    report = check_files([FIXTURES], CATALOGUE)
    assert report.files == sorted(report.files)
    assert str(BAD / "bad-promql.yaml") in report.files
    assert str(KHALA) in report.files
    assert report.exit_code() == 2


# --------------------------------------------------------------------------- exit codes, output


def test_exit_code_policy():
    """0: everything emitted; 1: missing metrics; 2: unusable input, also when both."""
    finding = Finding("f", "alert", "A", ("x",))
    error = InputError("f", "broken")
    assert ConformanceReport().exit_code() == 0
    assert ConformanceReport(missing=[finding]).exit_code() == 1
    assert ConformanceReport(errors=[error]).exit_code() == 2
    assert ConformanceReport(missing=[finding], errors=[error]).exit_code() == 2
    assert ConformanceReport(unused=["never_used"]).exit_code() == 0


def test_json_shape_is_stable():
    """as_json has the documented keys, is JSON-serialisable, and is the same on every run."""
    paths = [KHALA, PLATFORM, FLAT, ROWS, COLLAPSED, BAD / "bad-promql.yaml"]
    first = check_files(paths, CATALOGUE).as_json()
    assert json.dumps(first) == json.dumps(check_files(paths, CATALOGUE).as_json())
    assert list(first) == ["missing", "errors", "unused", "unresolvable", "exit_code"]
    assert first["exit_code"] == 2
    for item in first["missing"]:
        assert list(item) == ["file", "kind", "name", "metrics"]
        assert item["kind"] in {"alert", "record", "panel", "variable"}
        assert item["metrics"] == sorted(item["metrics"])
    assert first["errors"] == [
        {
            "file": str(BAD / "bad-promql.yaml"),
            "kind": "alert",
            "name": "KhalaBrokenRatio",
            "message": "PromQL does not parse (expr): unclosed left parenthesis in: "
            "sum(rate(openagents_sync_client_telemetry_event_count[5m]) / 2",
        }
    ]


def test_text_report_sections_and_verdict():
    """The text report lists missing metrics per rule, errors, unused metrics and a verdict."""
    text = check_files([KHALA, BAD / "no-rules.yaml"], CATALOGUE).as_text()
    assert "Metrics with no emitting source:" in text
    assert (
        f"  {KHALA}: alert 'KhalaFanoutDropping'\n      openagents_runtime_khala_fanout_dropped_total"
        in text
    )
    assert "Unusable input:" in text
    assert "Catalogue metrics no rule or panel uses (informational):" in text
    assert text.splitlines()[-1].startswith("ERROR (unusable input): 2 file(s), 9 rule(s)/panel(s)")
    ok = check_files(
        [KHALA],
        CATALOGUE,
        allow_missing={
            "khala:sync_client_errors:ratio_rate5m",
            "openagents_runtime_khala_fanout_dropped_total",
            "openagents_runtime_khala_fanout_queue_depth",
            "openagents_runtime_khala_fanout_queue_capacity",
            "openagents_runtime_khala_subscriber_count",
        },
    )
    assert ok.as_text().splitlines()[-1].startswith("OK: 1 file(s)")


# --------------------------------------------------------------------------- the command


def run_command(*args: str) -> tuple[int, str]:
    """Run check_conformance in-process: (exit code, stdout)."""
    out = io.StringIO()
    try:
        call_command("check_conformance", *args, stdout=out)
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def test_catalogue(monkeypatch):
    """The command reads the store's metric catalogue (a governance port); tests give it
    CATALOGUE."""
    monkeypatch.setitem(ports._installed, "metric_catalogue", lambda: CATALOGUE)


def test_command_missing_metrics_exit_1(test_catalogue):
    """Missing metrics: exit 1 and a text report naming the alert and the metric."""
    code, out = run_command(str(KHALA))
    assert code == 1
    assert "alert 'KhalaFanoutDropping'" in out
    assert "openagents_runtime_khala_fanout_dropped_total" in out
    assert out.splitlines()[-1].startswith("FAIL (missing metrics)")


def test_command_all_emitted_exit_0_with_allow_missing(test_catalogue):
    """`--allow-missing` is repeatable; with every gap allowed the command succeeds (exit 0)."""
    allowed = [
        "openagents_runtime_khala_fanout_dropped_total",
        "openagents_runtime_khala_fanout_queue_depth",
        "openagents_runtime_khala_fanout_queue_capacity",
        "openagents_runtime_khala_subscriber_count",
        "telemetry_ingest_queue_depth",
    ]
    args = [str(KHALA), str(PLATFORM)]
    for name in allowed:
        args += ["--allow-missing", name]
    code, out = run_command(*args)
    assert code == 0, out
    assert out.splitlines()[-1].startswith("OK: 2 file(s)")


def test_command_json_format(test_catalogue):
    """`--format json` prints the stable JSON document and still exits with the policy code."""
    code, out = run_command(str(ROWS), "--format", "json")
    assert code == 1
    document = json.loads(out)
    assert document["missing"] == [
        {
            "file": str(ROWS),
            "kind": "panel",
            "name": "Telemetry Ingest (legacy) / Queue depth (id 2)",
            "metrics": ["telemetry_ingest_queue_depth"],
        }
    ]
    assert document["errors"] == []
    assert "openagents_sync_client_replay_lag_seconds" in document["unused"]


@pytest.mark.parametrize(
    "name",
    [
        "not-yaml.yaml",
        "no-rules.yaml",
        "invalid.json",
        "dashboard-bad-shape.json",
        "bad-promql.yaml",
    ],
)
def test_command_unusable_input_exit_2(test_catalogue, name):
    """Every kind of unusable input makes the command exit 2 (also alongside missing metrics)."""
    code, out = run_command(str(BAD / name), str(KHALA), "--format", "json")
    assert code == 2
    document = json.loads(out)
    assert document["errors"] and document["errors"][0]["file"] == str(BAD / name)
    assert document["missing"]  # the good file was still checked


@pytest.mark.django_db
def test_command_uses_real_metric_catalogue(tmp_path):
    """Without patching, the command checks against ingest.catalogue.metric_catalogue()."""
    rules = write(
        tmp_path,
        "ingest.yaml",
        """
groups:
  - name: ingest
    rules:
      - alert: IngestRejecting
        expr: sum(rate(telemetry_ingest_events_total{outcome="rejected"}[5m])) > 1
      - alert: IngestSlow
        expr: histogram_quantile(0.99, sum by (le) (rate(telemetry_ingest_batch_seconds_bucket[5m]))) > 1
""",
    )
    code, out = run_command(str(rules), "--format", "json")
    assert code == 0, out
    document = json.loads(out)
    assert "telemetry_ingest_events" not in document["unused"]
    assert "telemetry_ingest_deprecated_schema_events" in document["unused"]


def test_command_process_exit_status(db):
    """Run as a process (as CI does), the exit status is the report's exit code."""
    from django.db import connection

    database = connection.settings_dict
    result = subprocess.run(
        [sys.executable, "manage.py", "check_conformance", str(KHALA), "--format", "json"],
        cwd=REPO,
        # The test database: a fresh machine has no development database.
        env={
            **os.environ,
            "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:"
            f"{database['PORT']}/{database['NAME']}",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["missing"]

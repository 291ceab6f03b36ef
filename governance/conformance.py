"""Metric conformance: every metric that an alert, recording rule or panel uses must be emitted.

The platform keeps a catalogue of the Prometheus metric families it emits. This engine reads
Prometheus rule files (plain ``groups:`` files and Kubernetes ``PrometheusRule`` manifests, possibly
multi-document YAML) and Grafana dashboard JSON, extracts the metric names of every PromQL
expression with a real PromQL parser (``promql-parser``; no pattern matching over PromQL), and
reports the references that no catalogue entry, recording rule or Prometheus itself emits.

Pure: no Django imports. ``manage.py check_conformance`` is the CLI around :func:`check_files`.

Name matching (a reference is a *series* name; a catalogue entry is a *family* name):

* counter ``foo`` (or ``foo_total``): ``foo_total``, ``foo_created`` and ``foo`` itself.
* histogram ``foo``: ``foo_bucket``, ``foo_count``, ``foo_sum``, ``foo_created``.
* gauge histogram ``foo``: ``foo_bucket``, ``foo_gcount``, ``foo_gsum``.
* summary ``foo``: ``foo`` (the quantile series), ``foo_count``, ``foo_sum``, ``foo_created``.
* info ``foo`` (or ``foo_info``): ``foo_info`` and ``foo``.
* gauge, stateset, untyped/unknown ``foo``: ``foo``.

Recording rules (``record:``) in any of the given files count as emitted, wherever they are
defined, and so do the series Prometheus synthesises itself (``up``, ``ALERTS``, ``scrape_*``).

Exit code policy (:meth:`ConformanceReport.exit_code`): 0 when every reference is emitted; 1 when
some are missing; 2 when any input was unusable (unreadable file, unknown shape, PromQL that does
not parse) - even if metrics are missing too, because the missing list is then incomplete and the
check as a whole cannot be trusted; the missing metrics found are still reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser
import yaml

RULE_FILE_SUFFIXES = (".yaml", ".yml", ".json")

#: Series that Prometheus itself writes for every scrape target or alert, never a client library.
PROMETHEUS_SYNTHETIC_SERIES = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
        "scrape_timeout_seconds",
        "scrape_sample_limit",
        "scrape_body_size_bytes",
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)

#: Grafana's built-in macros, replaced by a representative value before a query is parsed.
GRAFANA_MACROS = {
    "__rate_interval_ms": "300000",
    "__rate_interval": "5m",
    "__interval_ms": "60000",
    "__interval": "1m",
    "__range_ms": "3600000",
    "__range_s": "3600",
    "__range": "1h",
}
#: What a dashboard's own ``interval`` variables are replaced by before a query is parsed.
GRAFANA_INTERVAL_VALUE = "5m"

_SERIES_SUFFIXES = {
    "counter": ("", "_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("", "_info"),
}
_FAMILY_SUFFIX = {"counter": "_total", "info": "_info"}


# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class CatalogueEntry:
    """One metric family the platform emits: its name and type.

    ``type`` is counter, gauge, histogram, summary or untyped (prometheus_client's ``unknown``,
    ``info``, ``stateset`` and ``gaugehistogram`` are understood too).
    """

    name: str
    type: str


def exposed_series(entry: CatalogueEntry) -> frozenset[str]:
    """The series names under which ``entry`` appears in an exposition (see the module doc)."""
    kind = (entry.type or "untyped").lower()
    suffixes = _SERIES_SUFFIXES.get(kind, ("",))
    base = entry.name.removesuffix(_FAMILY_SUFFIX.get(kind, "")) or entry.name
    return frozenset(base + suffix for suffix in suffixes)


# --------------------------------------------------------------------------- PromQL


class PromQLError(ValueError):
    """A PromQL expression that the parser rejects; ``message`` is the parser's explanation."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PromQLReferences:
    """The metric names an expression selects, and selectors whose metric cannot be known.

    A selector is *unresolvable* when its metric name is not fixed: ``{__name__=~"foo_.*"}``,
    ``{__name__!="x"}`` or no name at all (``{job="api"}``).
    """

    names: frozenset[str]
    unresolvable: tuple[str, ...] = ()


def promql_references(expr: str) -> PromQLReferences:
    """Parse ``expr`` and collect the metric names of all its vector and matrix selectors.

    Raises :class:`PromQLError` when the expression does not parse.
    """
    if not isinstance(expr, str):
        raise PromQLError(f"expression must be a string, got {type(expr).__name__}")
    try:
        tree = promql_parser.parse(expr)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # ValueError, or a pyo3 PanicException from the Rust side
        raise PromQLError(str(exc) or type(exc).__name__) from exc
    names: set[str] = set()
    unresolvable: list[str] = []

    def selector(node: Any) -> None:
        found, unknown = _selector_names(node)
        names.update(found)
        if unknown:
            unresolvable.append(_promql_text(node))

    _walk(tree, selector)
    return PromQLReferences(frozenset(names), tuple(dict.fromkeys(unresolvable)))


def promql_metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` references (unresolvable ``__name__`` regexes are left out).

    Raises :class:`PromQLError` on a parse failure.
    """
    return set(promql_references(expr).names)


def _walk(tree: Any, on_selector: Callable[[Any], None]) -> None:
    """Depth-first walk of a promql_parser AST, calling ``on_selector`` on every VectorSelector.

    Every node type of the parser is handled explicitly; an unknown one is an error rather than
    a subtree silently skipped (which would hide the metrics below it).
    """
    stack = [tree]
    while stack:
        node = stack.pop()
        if node is None or isinstance(node, str | int | float):
            continue  # scalar parameters (older parser versions hand some out as plain values)
        if isinstance(node, promql_parser.VectorSelector):
            on_selector(node)
        elif isinstance(node, promql_parser.MatrixSelector):
            stack.append(node.vector_selector)
        elif isinstance(node, promql_parser.AggregateExpr):
            stack.extend((node.param, node.expr))
        elif isinstance(node, promql_parser.BinaryExpr):
            stack.extend((node.rhs, node.lhs))
        elif isinstance(
            node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr
        ):
            stack.append(node.expr)
        elif isinstance(node, promql_parser.Call):
            stack.extend(reversed(list(node.args)))
        elif isinstance(node, promql_parser.NumberLiteral | promql_parser.StringLiteral):
            continue
        else:
            raise PromQLError(f"unsupported PromQL syntax node {type(node).__name__}")


def _selector_names(node: Any) -> tuple[set[str], bool]:
    """(metric names, whether some alternative has no fixed name) of one VectorSelector."""
    if node.name:
        return {node.name}, False
    matchers = node.matchers
    groups = list(getattr(matchers, "or_matchers", None) or []) or [matchers.matchers]
    names: set[str] = set()
    unknown = False
    for group in groups:
        equal = {
            m.value for m in group if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal
        }
        names |= equal
        unknown = unknown or not equal
    return names, unknown


def _promql_text(node: Any) -> str:
    try:
        return node.prettify()
    except Exception:  # pragma: no cover - defensive: fall back to the node's own rendering
        return str(node)


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Finding:
    """A rule or panel that references metrics without an emitting source."""

    file: str
    kind: str  # alert | record | panel | variable
    name: str
    metrics: tuple[str, ...]

    def as_json(self) -> dict:
        return {
            "file": self.file,
            "kind": self.kind,
            "name": self.name,
            "metrics": list(self.metrics),
        }


@dataclass(frozen=True)
class InputError:
    """Input that could not be checked: unreadable file, unexpected shape, unparsable PromQL."""

    file: str
    message: str
    kind: str | None = None
    name: str | None = None

    def as_json(self) -> dict:
        return {"file": self.file, "kind": self.kind, "name": self.name, "message": self.message}

    def __str__(self) -> str:
        if self.kind:
            return f"{self.file}: {self.kind} {self.name!r}: {self.message}"
        return f"{self.file}: {self.message}"


@dataclass(frozen=True)
class Unresolvable:
    """Selectors whose metric name is not fixed (``__name__=~...``); informational only."""

    file: str
    kind: str
    name: str
    selectors: tuple[str, ...]

    def as_json(self) -> dict:
        return {
            "file": self.file,
            "kind": self.kind,
            "name": self.name,
            "selectors": list(self.selectors),
        }


@dataclass
class ConformanceReport:
    """The outcome of :func:`check_files`. Only ``missing`` and ``errors`` affect the exit code."""

    missing: list[Finding] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    unresolvable: list[Unresolvable] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    checked: int = 0  # alerts, recording rules, panels and variables whose queries were checked

    def exit_code(self) -> int:
        """0: all referenced metrics emitted; 1: missing metrics; 2: unusable input (wins)."""
        if self.errors:
            return 2
        if self.missing:
            return 1
        return 0

    def as_json(self) -> dict:
        """Stable, JSON-serialisable form for CI (keys and list order are deterministic)."""
        return {
            "missing": [finding.as_json() for finding in self.missing],
            "errors": [error.as_json() for error in self.errors],
            "unused": list(self.unused),
            "unresolvable": [item.as_json() for item in self.unresolvable],
            "exit_code": self.exit_code(),
        }

    def as_text(self) -> str:
        """A human-readable report, ending with a one-line verdict."""
        lines: list[str] = []
        if self.missing:
            lines.append("Metrics with no emitting source:")
            for finding in self.missing:
                lines.append(f"  {finding.file}: {finding.kind} {finding.name!r}")
                lines.extend(f"      {metric}" for metric in finding.metrics)
        if self.errors:
            lines.append("Unusable input:")
            lines.extend(f"  {error}" for error in self.errors)
        if self.unresolvable:
            lines.append("Selectors without a fixed metric name (not checked):")
            for item in self.unresolvable:
                lines.append(f"  {item.file}: {item.kind} {item.name!r}")
                lines.extend(f"      {selector}" for selector in item.selectors)
        if self.unused:
            lines.append("Catalogue metrics no rule or panel uses (informational):")
            lines.extend(f"  {name}" for name in self.unused)
        code = self.exit_code()
        metric_count = sum(len(finding.metrics) for finding in self.missing)
        summary = (
            f"{len(self.files)} file(s), {self.checked} rule(s)/panel(s) checked: "
            f"{metric_count} missing metric reference(s) in {len(self.missing)} rule(s)/panel(s), "
            f"{len(self.errors)} input error(s), {len(self.unused)} unused catalogue metric(s)"
        )
        verdict = {0: "OK", 1: "FAIL (missing metrics)", 2: "ERROR (unusable input)"}[code]
        lines.append(f"{verdict}: {summary}")
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- reading files


@dataclass
class _Subject:
    """One alert, recording rule, panel or template variable and its PromQL expressions."""

    file: str
    kind: str
    name: str
    exprs: list[tuple[str, str]] = field(default_factory=list)  # (label for errors, PromQL)


class _FileError(Exception):
    pass


@dataclass
class _FileContents:
    file: str
    subjects: list[_Subject] = field(default_factory=list)
    records: set[str] = field(default_factory=set)
    errors: list[InputError] = field(default_factory=list)
    rule_groups: bool = False  # it held `groups:` (plain or PrometheusRule)
    dashboard: bool = False
    rule_count: int = 0

    def error(self, message: str, kind: str | None = None, name: str | None = None) -> None:
        self.errors.append(InputError(self.file, message, kind, name))


def _expand(paths: Sequence[Path | str]) -> Iterator[tuple[str, Path | None, str | None]]:
    """(display name, file or None, error) for every given file and every rule file in a dir."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in RULE_FILE_SUFFIXES
            )
            if not found:
                yield str(raw), None, "directory holds no .yaml, .yml or .json files"
            for p in found:
                yield str(p), p, None
        elif path.is_file():
            yield str(raw), path, None
        elif path.exists():
            yield str(raw), None, "not a regular file"
        else:
            yield str(raw), None, "no such file or directory"


def _load_documents(path: Path) -> list[Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _FileError(f"cannot read file: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _FileError("not a text file (not UTF-8): not YAML or JSON") from exc
    if path.suffix.lower() == ".json":
        try:
            return [json.loads(text)]
        except json.JSONDecodeError as exc:
            raise _FileError(
                f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from exc
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise _FileError(f"not valid YAML: {problem}{where}") from exc


def _read_file(display: str, path: Path) -> _FileContents:
    contents = _FileContents(display)
    try:
        documents = _load_documents(path)
    except _FileError as exc:
        contents.error(str(exc))
        return contents
    if not documents:
        contents.error("empty file: no Prometheus rules or Grafana dashboard")
        return contents
    for index, document in enumerate(documents):
        where = f"document {index + 1}: " if len(documents) > 1 else ""
        _read_document(contents, document, where)
    if contents.errors:
        return contents
    if not contents.rule_groups and not contents.dashboard:
        contents.error(
            "no Prometheus rules (`groups:` or `kind: PrometheusRule`) "
            "and no Grafana dashboard (`panels`/`rows`) found"
        )
    elif contents.rule_groups and not contents.dashboard and contents.rule_count == 0:
        contents.error("rule file defines no alerting or recording rules")
    return contents


def _read_document(contents: _FileContents, document: Any, where: str) -> None:
    if not isinstance(document, dict):
        contents.error(
            f"{where}expected a mapping (rule file, PrometheusRule or dashboard), "
            f"got {_type_name(document)}"
        )
        return
    kind = document.get("kind")
    if kind == "PrometheusRule":
        contents.rule_groups = True
        spec = document.get("spec")
        metadata = document.get("metadata")
        rule_name = metadata.get("name") if isinstance(metadata, dict) else None
        label = f"{where}PrometheusRule {rule_name!r}: " if rule_name else where
        if not isinstance(spec, dict) or "groups" not in spec:
            contents.error(f"{label}PrometheusRule without `spec.groups`")
            return
        _read_groups(contents, spec["groups"], f"{label}spec.groups")
    elif kind == "List" and isinstance(document.get("items"), list):
        for index, item in enumerate(document["items"]):
            _read_document(contents, item, f"{where}items[{index}]: ")
    elif "groups" in document:
        contents.rule_groups = True
        _read_groups(contents, document["groups"], f"{where}groups")
    elif isinstance(document.get("dashboard"), dict):
        contents.dashboard = True
        _read_dashboard(contents, document["dashboard"], f"{where}dashboard.")
    elif "panels" in document or "rows" in document:
        contents.dashboard = True
        _read_dashboard(contents, document, where)
    # Anything else (a Deployment next to a PrometheusRule, ...) is not ours to check.


def _read_groups(contents: _FileContents, groups: Any, where: str) -> None:
    if not isinstance(groups, list):
        contents.error(f"{where}: expected a list of rule groups, got {_type_name(groups)}")
        return
    for g_index, group in enumerate(groups):
        g_where = f"{where}[{g_index}]"
        if not isinstance(group, dict):
            contents.error(f"{g_where}: expected a rule group mapping, got {_type_name(group)}")
            continue
        rules = group.get("rules", [])
        if rules is None:
            rules = []
        if not isinstance(rules, list):
            contents.error(f"{g_where}.rules: expected a list of rules, got {_type_name(rules)}")
            continue
        for r_index, rule in enumerate(rules):
            _read_rule(contents, rule, f"{g_where}.rules[{r_index}]")


def _read_rule(contents: _FileContents, rule: Any, where: str) -> None:
    if not isinstance(rule, dict):
        contents.error(f"{where}: expected a rule mapping, got {_type_name(rule)}")
        return
    alert, record = rule.get("alert"), rule.get("record")
    if (alert is None) == (record is None):
        contents.error(f"{where}: a rule needs exactly one of `alert:` or `record:`")
        return
    kind, name = ("alert", alert) if alert is not None else ("record", record)
    if not isinstance(name, str) or not name:
        contents.error(f"{where}: `{kind}:` must be a non-empty string, got {name!r}")
        return
    contents.rule_count += 1
    if kind == "record":
        contents.records.add(name)
    expr = rule.get("expr")
    if isinstance(expr, bool) or not isinstance(expr, str | int | float):
        contents.error(f"{where}: `expr:` missing or not a string", kind, name)
        return
    expr = str(expr)
    if not expr.strip():
        contents.error(f"{where}: `expr:` is empty", kind, name)
        return
    contents.subjects.append(_Subject(contents.file, kind, name, [("expr", expr)]))


def _read_dashboard(contents: _FileContents, dashboard: dict, where: str) -> None:
    title = dashboard.get("title")
    title = title if isinstance(title, str) and title else "(untitled dashboard)"
    substitutions = dict(GRAFANA_MACROS)
    templating = dashboard.get("templating", {})
    variables: list = []
    if templating is not None and not isinstance(templating, dict):
        contents.error(f"{where}templating: expected a mapping, got {_type_name(templating)}")
    elif templating:
        variables = templating.get("list") or []
        if not isinstance(variables, list):
            contents.error(f"{where}templating.list: expected a list, got {_type_name(variables)}")
            variables = []
    for variable in variables:
        if (
            isinstance(variable, dict)
            and variable.get("type") == "interval"
            and isinstance(variable.get("name"), str)
            and variable["name"]
        ):
            substitutions.setdefault(variable["name"], GRAFANA_INTERVAL_VALUE)
    found_any = False
    for key in ("panels", "rows"):
        if key not in dashboard:
            continue
        found_any = True
        items = dashboard[key]
        if items is None:
            continue
        if not isinstance(items, list):
            contents.error(f"{where}{key}: expected a list, got {_type_name(items)} ({title!r})")
            continue
        for index, item in enumerate(items):
            _read_panel(contents, item, title, f"{where}{key}[{index}]", substitutions)
    if not found_any:
        contents.error(f"{where}dashboard {title!r} has neither `panels` nor `rows`")
    for index, variable in enumerate(variables):
        _read_variable(contents, variable, title, f"{where}templating.list[{index}]", substitutions)


def _read_panel(
    contents: _FileContents, panel: Any, title: str, where: str, substitutions: dict[str, str]
) -> None:
    if not isinstance(panel, dict):
        contents.error(f"{where}: expected a panel mapping, got {_type_name(panel)} ({title!r})")
        return
    name = f"{title} / {_panel_label(panel)}"
    targets = panel.get("targets", [])
    if targets is None:
        targets = []
    if not isinstance(targets, list):
        contents.error(
            f"{where}.targets: expected a list, got {_type_name(targets)}", "panel", name
        )
        targets = []
    subject = _Subject(contents.file, "panel", name)
    for index, target in enumerate(targets):
        if not isinstance(target, dict):
            contents.error(
                f"{where}.targets[{index}]: expected a mapping, got {_type_name(target)}",
                "panel",
                name,
            )
            continue
        expr = target.get("expr")
        if expr is None or expr == "":
            continue  # not a Prometheus query (or an unfinished one)
        if not _is_prometheus(target.get("datasource"), panel.get("datasource")):
            continue  # Loki, Elasticsearch, ... queries are not PromQL
        if not isinstance(expr, str):
            contents.error(
                f"{where}.targets[{index}].expr: expected a string, got {_type_name(expr)}",
                "panel",
                name,
            )
            continue
        ref = target.get("refId")
        label = f"target {ref}" if isinstance(ref, str) and ref else f"targets[{index}]"
        subject.exprs.append((label, _substitute(expr, substitutions)))
    if subject.exprs:
        contents.subjects.append(subject)
    # Collapsed rows keep their panels inside the row panel; the old schema nests them in rows.
    nested = panel.get("panels")
    if nested is None:
        return
    if not isinstance(nested, list):
        contents.error(f"{where}.panels: expected a list, got {_type_name(nested)}", "panel", name)
        return
    for index, child in enumerate(nested):
        _read_panel(contents, child, title, f"{where}.panels[{index}]", substitutions)


def _read_variable(
    contents: _FileContents, variable: Any, title: str, where: str, substitutions: dict[str, str]
) -> None:
    """A ``query`` template variable of a Prometheus data source is checked like a panel."""
    if not isinstance(variable, dict) or variable.get("type") != "query":
        return
    if not _is_prometheus(variable.get("datasource"), None):
        return
    query = variable.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    if not isinstance(query, str) or not query.strip():
        return
    var_name = variable.get("name") if isinstance(variable.get("name"), str) else "?"
    name = f"{title} / ${var_name}"
    expr = _variable_promql(query.strip())
    if expr is None:
        return
    contents.subjects.append(
        _Subject(contents.file, "variable", name, [("query", _substitute(expr, substitutions))])
    )


def _variable_promql(query: str) -> str | None:
    """The PromQL inside a Grafana Prometheus variable query, or None when it has none.

    ``label_values(selector, label)`` and ``label_names(selector)`` hold a series selector,
    ``query_result(expr)`` a whole expression; ``label_values(label)``, ``label_names()`` and
    ``metrics(regex)`` name no metric. Anything else is taken as PromQL.
    """
    for function in ("label_values", "label_names", "query_result", "metrics"):
        if query.startswith(function) and query.endswith(")"):
            opening = query[len(function) :].lstrip()
            if not opening.startswith("("):
                continue
            inner = opening[1:-1].strip()
            if function == "metrics":
                return None
            if function == "label_values":
                split = _last_top_level_comma(inner)
                inner = inner[:split].strip() if split is not None else ""
            return inner or None
    return query


def _last_top_level_comma(text: str) -> int | None:
    """Index of the last comma outside quotes, braces, brackets and parentheses."""
    depth, quote, escaped, last = 0, "", False, None
    for index, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in "({[":
            depth += 1
        elif char in ")}]":
            depth -= 1
        elif char == "," and depth == 0:
            last = index
    return last


def _is_prometheus(*datasources: Any) -> bool:
    """Whether the first data source that names a type is Prometheus (unknown: assume it is)."""
    for datasource in datasources:
        if isinstance(datasource, dict) and isinstance(datasource.get("type"), str):
            kind = datasource["type"].lower()
            if kind == "datasource":  # "-- Mixed --" / "-- Dashboard --": ask the next level
                continue
            return "prometheus" in kind
    return True


def _substitute(expr: str, substitutions: dict[str, str]) -> str:
    """Replace Grafana macros and interval variables (``$x``, ``${x}``, ``[[x]]``) by values."""
    for name in sorted(substitutions, key=len, reverse=True):
        value = substitutions[name]
        for form in (f"${{{name}}}", f"[[{name}]]", f"${name}"):
            expr = expr.replace(form, value)
    return expr


def _panel_label(panel: dict) -> str:
    title, panel_id = panel.get("title"), panel.get("id")
    has_title = isinstance(title, str) and title.strip()
    if has_title and panel_id is not None:
        return f"{title} (id {panel_id})"
    if has_title:
        return title
    if panel_id is not None:
        return f"panel id {panel_id}"
    return "(untitled panel)"


def _type_name(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------- the check


def check_files(
    paths: Sequence[Path | str],
    catalogue: Sequence[CatalogueEntry],
    *,
    allow_missing: Collection[str] = (),
    synthetic: Collection[str] = PROMETHEUS_SYNTHETIC_SERIES,
) -> ConformanceReport:
    """Check every alert, recording rule and panel of ``paths`` against ``catalogue``.

    ``paths`` may name files or directories (searched recursively for .yaml/.yml/.json).
    ``allow_missing`` names referenced series that may be missing (intentionally pre-wired);
    ``synthetic`` are series Prometheus writes itself. Catalogue entries need only ``.name`` and
    ``.type``. Recording rules of every given file count as emitted, in any order.
    """
    report = ConformanceReport()
    files: list[_FileContents] = []
    for display, path, problem in _expand(paths):
        report.files.append(display)
        if problem is not None:
            contents = _FileContents(display)
            contents.error(problem)
        else:
            contents = _read_file(display, path)
        files.append(contents)

    series_owner: dict[str, list[str]] = {}
    for entry in catalogue:
        for series in exposed_series(entry):
            series_owner.setdefault(series, []).append(entry.name)
    records = set().union(*(contents.records for contents in files))
    emitted = set(series_owner) | records | set(synthetic) | set(allow_missing)
    used: set[str] = set()

    for contents in files:  # errors in file order: reading first, then each file's PromQL
        report.errors.extend(contents.errors)
        for subject in contents.subjects:
            report.checked += 1
            names: set[str] = set()
            unresolvable: list[str] = []
            for label, expr in subject.exprs:
                try:
                    refs = promql_references(expr)
                except PromQLError as exc:
                    report.errors.append(
                        InputError(
                            subject.file,
                            f"PromQL does not parse ({label}): {exc.message}"
                            f"{_template_hint(expr)} in: {_clip(expr)}",
                            subject.kind,
                            subject.name,
                        )
                    )
                    continue
                names |= refs.names
                unresolvable.extend(refs.unresolvable)
            for name in names:
                used.update(series_owner.get(name, ()))
            missing = sorted(names - emitted)
            if missing:
                report.missing.append(
                    Finding(subject.file, subject.kind, subject.name, tuple(missing))
                )
            if unresolvable:
                report.unresolvable.append(
                    Unresolvable(
                        subject.file,
                        subject.kind,
                        subject.name,
                        tuple(dict.fromkeys(unresolvable)),
                    )
                )
    report.unused = sorted({entry.name for entry in catalogue} - used)
    return report


def _template_hint(expr: str) -> str:
    if "$" in expr or "[[" in expr:
        return " (it uses a Grafana template variable that cannot be substituted)"
    return ""


def _clip(expr: str, limit: int = 200) -> str:
    flat = " ".join(expr.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."

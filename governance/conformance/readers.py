"""Readers of Prometheus rule files, ``PrometheusRule`` manifests and Grafana dashboards.

Each file becomes the PromQL expressions of its alerts, recording rules, panels and template
variables (plain ``groups:`` files and Kubernetes ``PrometheusRule`` manifests, possibly
multi-document YAML, and Grafana dashboard JSON), the recording rules it defines, and the input
errors found on the way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .report import InputError

RULE_FILE_SUFFIXES = (".yaml", ".yml", ".json")

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


@dataclass
class Subject:
    """One alert, recording rule, panel or template variable and its PromQL expressions."""

    file: str
    kind: str
    name: str
    exprs: list[tuple[str, str]] = field(default_factory=list)  # (label for errors, PromQL)


class _FileError(Exception):
    pass


@dataclass
class FileContents:
    file: str
    subjects: list[Subject] = field(default_factory=list)
    records: set[str] = field(default_factory=set)
    errors: list[InputError] = field(default_factory=list)
    rule_groups: bool = False  # it held `groups:` (plain or PrometheusRule)
    dashboard: bool = False
    rule_count: int = 0

    def error(self, message: str, kind: str | None = None, name: str | None = None) -> None:
        self.errors.append(InputError(self.file, message, kind, name))


def read_paths(paths: Sequence[Path | str]) -> list[FileContents]:
    """Read every given file and every rule file below a given directory, in order.

    A path that cannot be read becomes contents holding only its error; ``contents.file`` is the
    name the report shows for it.
    """
    files: list[FileContents] = []
    for display, path, problem in _expand(paths):
        if problem is not None:
            contents = FileContents(display)
            contents.error(problem)
        else:
            contents = _read_file(display, path)
        files.append(contents)
    return files


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


def _read_file(display: str, path: Path) -> FileContents:
    contents = FileContents(display)
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


def _read_document(contents: FileContents, document: Any, where: str) -> None:
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


def _read_groups(contents: FileContents, groups: Any, where: str) -> None:
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


def _read_rule(contents: FileContents, rule: Any, where: str) -> None:
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
    contents.subjects.append(Subject(contents.file, kind, name, [("expr", expr)]))


def _read_dashboard(contents: FileContents, dashboard: dict, where: str) -> None:
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
    contents: FileContents, panel: Any, title: str, where: str, substitutions: dict[str, str]
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
    subject = Subject(contents.file, "panel", name)
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
    contents: FileContents, variable: Any, title: str, where: str, substitutions: dict[str, str]
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
        Subject(contents.file, "variable", name, [("query", _substitute(expr, substitutions))])
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

"""Release performance sign-off artifacts -> ``performance_budget_sample`` events (pure)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ingest.pipeline import RawItem
from telemetry_platform.conf import telemetry_settings

from .common import (
    ArtifactCode,
    ArtifactError,
    ArtifactItem,
    ItemRejection,
    ParsedArtifact,
    describe_non_number,
    deterministic_event_id,
    json_document,
    number_or_none,
    parse_timestamp,
    rfc3339,
)

PERF_SAMPLE_SCHEMA = "telemetry.performance_budget_sample.v1"
REQUIRED_FIELDS = ("timestamp", "build_id", "metrics")
MAX_PATH_LENGTH = 200
# Unit by the last matching segment suffix of a metric path (checked leaf first).
UNIT_SUFFIXES = (
    ("_ms", "ms"),
    ("_seconds", "s"),
    ("_bytes", "bytes"),
    ("_kb", "kB"),
    ("_mb", "MB"),
    ("errors", "count"),
)


def unit_for(path: str) -> str:
    """The unit of a metric path: from its leaf (``p95_ms``), else its parents (``rss_kb.max``)."""
    for segment in reversed(path.split(".")):
        for suffix, unit in UNIT_SUFFIXES:
            if segment == suffix.lstrip("_") or segment.endswith(suffix):
                return unit
    return ""


def _leaves(node: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            yield from _leaves(value, path)
        else:
            yield path, value


def _budget_candidates(path: str) -> set[str]:
    # boot.root.p95_ms -> {"p95_ms", "root_p95_ms", "boot_root_p95_ms"}
    parts = path.split(".")
    return {"_".join(parts[-count:]) for count in range(1, len(parts) + 1)}


def match_budgets(
    paths: list[str], budget_names: list[str], aliases: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Map metric paths to budget names: (path -> budget name, budget name -> problem code).

    A budget matches the path its alias names, else every path whose trailing segments,
    joined by ``_``, equal it. A budget matching no path is ``unknown_budget``; one matching
    several (without an alias) is ``ambiguous_budget``.
    """
    by_path: dict[str, str] = {}
    problems: dict[str, str] = {}
    known = set(paths)
    candidates = {path: _budget_candidates(path) for path in paths}
    for name in budget_names:
        alias = aliases.get(name)
        if alias is not None:
            matches = [alias] if alias in known else []
        else:
            matches = [path for path in paths if name in candidates[path]]
        if not matches:
            problems[name] = ArtifactCode.UNKNOWN_BUDGET
        elif len(matches) > 1:
            problems[name] = ArtifactCode.AMBIGUOUS_BUDGET
        elif matches[0] in by_path:
            # Two budgets for one path: neither is trusted.
            problems[name] = ArtifactCode.AMBIGUOUS_BUDGET
            problems[by_path.pop(matches[0])] = ArtifactCode.AMBIGUOUS_BUDGET
        else:
            by_path[matches[0]] = name
    return by_path, problems


def _failure_names(failures: Any) -> set[str]:
    """Budget names or metric paths the artifact itself lists as failed."""
    names: set[str] = set()
    if not isinstance(failures, list):
        return names
    for failure in failures:
        if isinstance(failure, str):
            names.add(failure)
        elif isinstance(failure, Mapping):
            for key in ("budget", "name", "metric", "metric_path", "key"):
                if isinstance(failure.get(key), str):
                    names.add(failure[key])
    return names


def perf_signoff_parse(
    content: bytes, *, source: str = "", aliases: Mapping[str, str] | None = None
) -> ParsedArtifact:
    """Turn a sign-off artifact into one event per measured value.

    Refuses the artifact (ArtifactError) when it is not JSON or lacks ``timestamp``,
    ``build_id`` or ``metrics``; refuses single values (non-numeric, null) and budgets
    (unknown, ambiguous, non-numeric) item by item, so the good parts still land.
    """
    document = json_document(content)
    if not isinstance(document, dict):
        raise ArtifactError(ArtifactCode.NOT_AN_OBJECT, "artifact must be a JSON object")
    missing = [name for name in REQUIRED_FIELDS if document.get(name) in (None, "")]
    if missing:
        raise ArtifactError(
            ArtifactCode.MISSING_FIELD,
            f"artifact lacks required field(s): {', '.join(missing)}",
            field=missing[0],
        )
    build_id = document["build_id"]
    if not isinstance(build_id, str | int) or isinstance(build_id, bool):
        raise ArtifactError(
            ArtifactCode.MISSING_FIELD, "'build_id' must be a string", field="build_id"
        )
    build_id = str(build_id)
    occurred_at = parse_timestamp(document["timestamp"], field_name="timestamp")
    metrics = document["metrics"]
    if not isinstance(metrics, dict):
        raise ArtifactError(
            ArtifactCode.NOT_AN_OBJECT, "'metrics' must be an object", field="metrics"
        )
    budgets = document.get("budgets")
    parsed = ParsedArtifact(facts={"build_id": build_id, "occurred_at": rfc3339(occurred_at)})
    if budgets is None:
        budgets = {}
        parsed.warnings.append("artifact has no 'budgets': samples are stored without budgets")
    elif not isinstance(budgets, dict):
        parsed.entries.append(
            ItemRejection("budgets", ArtifactCode.NOT_AN_OBJECT, "'budgets' must be an object")
        )
        budgets = {}
    leaves = list(_leaves(metrics))
    if not leaves:
        raise ArtifactError(
            ArtifactCode.EMPTY_ARTIFACT, "'metrics' holds no values", field="metrics"
        )
    paths = [path for path, _ in leaves]
    budget_of, problems = match_budgets(
        paths,
        [str(name) for name in budgets],
        telemetry_settings.PERF_BUDGET_ALIASES if aliases is None else aliases,
    )
    budget_values: dict[str, float] = {}
    for name, raw in budgets.items():
        name = str(name)
        value = number_or_none(raw)
        if name in problems:
            code = problems[name]
            message = (
                "no measured metric matches this budget"
                if code == ArtifactCode.UNKNOWN_BUDGET
                else "this budget matches more than one measured metric"
            )
            parsed.entries.append(ItemRejection(f"budgets.{name}", code, message))
        elif value is None:
            parsed.entries.append(
                ItemRejection(
                    f"budgets.{name}",
                    ArtifactCode.INVALID_BUDGET,
                    f"budget {describe_non_number(raw)[1]}; its metric is stored without it",
                )
            )
        else:
            budget_values[name] = value
    failed = _failure_names(document.get("budget_failures"))
    computed_failures = 0
    for path, raw in leaves:
        value = number_or_none(raw)
        if value is None:
            code, message = describe_non_number(raw)
            parsed.entries.append(ItemRejection(path, code, message))
            continue
        if len(path) > MAX_PATH_LENGTH:
            parsed.entries.append(
                ItemRejection(path[:80], "too_long", f"metric path over {MAX_PATH_LENGTH} chars")
            )
            continue
        budget_name = budget_of.get(path, "")
        budget = budget_values.get(budget_name)
        passed = not (
            (budget is not None and value > budget)
            or (budget_name and budget_name in failed)
            or path in failed
        )
        computed_failures += not passed
        envelope: dict[str, Any] = {
            "event_id": deterministic_event_id(build_id, path),
            "occurred_at": rfc3339(occurred_at),
        }
        if source:
            envelope["source"] = source
        event: dict[str, Any] = {
            "envelope": envelope,
            "metric_path": path,
            "value": value,
            "unit": unit_for(path),
            "build_id": build_id,
            "pass": passed,
        }
        if budget is not None:
            event["budget"] = budget
            event["budget_name"] = budget_name
        parsed.entries.append(ArtifactItem(path, RawItem(schema=PERF_SAMPLE_SCHEMA, body=event)))
    declared = document.get("pass")
    if isinstance(declared, bool) and declared != (computed_failures == 0):
        parsed.warnings.append(
            f"artifact declares pass={str(declared).lower()} but {computed_failures} "
            "sample(s) fail their budget here"
        )
    return parsed

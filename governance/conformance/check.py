"""The conformance check: every metric that an alert, recording rule or panel uses must be emitted.

The platform keeps a catalogue of the Prometheus metric families it emits. The check reads rule
files and dashboards, extracts the metric names of every PromQL expression with a real PromQL
parser (``promql-parser``; no pattern matching over PromQL), and reports the references that no
catalogue entry, recording rule or Prometheus itself emits.

Recording rules (``record:``) in any of the given files count as emitted, wherever they are
defined, and so do the series Prometheus synthesises itself (``up``, ``ALERTS``, ``scrape_*``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from .catalogue import PROMETHEUS_SYNTHETIC_SERIES, CatalogueEntry, exposed_series
from .promql import PromQLError, promql_references
from .readers import read_paths
from .report import ConformanceReport, Finding, InputError, Unresolvable


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
    files = read_paths(paths)
    report.files = [contents.file for contents in files]
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

"""The conformance report: findings, input errors, unresolvable selectors, JSON and text forms.

Exit code policy (:meth:`ConformanceReport.exit_code`): 0 when every reference is emitted; 1 when
some are missing; 2 when any input was unusable (unreadable file, unknown shape, PromQL that does
not parse) - even if metrics are missing too, because the missing list is then incomplete and the
check as a whole cannot be trusted; the missing metrics found are still reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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

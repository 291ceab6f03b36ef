"""manage.py ingest_artifact: load sign-off artifacts, diagnostics snapshots or JSONL files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingest.artifacts import (
    ARTIFACT_KINDS,
    ArtifactError,
    ArtifactReport,
    diagnostics_snapshot_ingest,
    jsonl_artifact_ingest,
    perf_signoff_ingest,
)
from ingest.artifacts.services import DIAGNOSTICS, JSONL, PERF_SIGNOFF, cli_context
from ingest.pipeline import RetryableError

DEFAULT_SOURCE = "artifacts"


class Command(BaseCommand):
    help = (
        "Ingest artifact files through the ingest pipeline (validation, redaction, dedupe, "
        "retention) and report accepted / duplicate / rejected items with reasons. "
        "Exit status 1 when anything was rejected or a file could not be used."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument("--kind", required=True, choices=ARTIFACT_KINDS)
        parser.add_argument("--schema", default="", help="jsonl: the schema of every line")
        parser.add_argument(
            "--source",
            default=DEFAULT_SOURCE,
            help=f"source recorded on events whose schema has none (default: {DEFAULT_SOURCE})",
        )
        parser.add_argument("--service", default="", help="diagnostics: service name")
        parser.add_argument("--instance", default="", help="diagnostics: instance name")
        parser.add_argument("--format", choices=("text", "json"), default="text")

    def handle(self, *args: Any, **options: Any) -> None:
        kind = options["kind"]
        if kind == JSONL and not options["schema"]:
            raise CommandError("--kind jsonl needs --schema NAME")
        failed = False
        reports = []
        for name in options["files"]:
            try:
                report = self._ingest(Path(name), kind, options)
            except (OSError, ArtifactError, RetryableError) as exc:
                failed = True
                reports.append({"file": name, "error": _error(exc)})
                if options["format"] == "text":
                    self.stderr.write(f"{name}: not ingested: {_error(exc)['message']}")
                continue
            failed = failed or bool(report.rejected)
            reports.append({"file": name, **report.as_dict()})
            if options["format"] == "text":
                self._print(name, report)
        if options["format"] == "json":
            self.stdout.write(json.dumps(reports, indent=2))
        if failed:
            raise CommandError("some items or files were rejected", returncode=1)

    def _ingest(self, path: Path, kind: str, options: dict[str, Any]) -> ArtifactReport:
        content = path.read_bytes()
        context = cli_context(source=options["source"])
        if kind == PERF_SIGNOFF:
            return perf_signoff_ingest(content=content, context=context)
        if kind == DIAGNOSTICS:
            return diagnostics_snapshot_ingest(
                content=content,
                context=context,
                service=options["service"],
                instance=options["instance"],
            )
        return jsonl_artifact_ingest(content=content, schema=options["schema"], context=context)

    def _print(self, name: str, report: ArtifactReport) -> None:
        totals = report.totals()
        facts = "".join(f", {key} {value}" for key, value in report.facts.items())
        self.stdout.write(
            f"{name}: {report.kind}{facts}: received {totals['received']}, accepted "
            f"{totals['accepted']}, duplicate {totals['duplicate']}, rejected {totals['rejected']}"
        )
        for result in report.rejected:
            where = f" ({result.field})" if result.field else ""
            self.stdout.write(f"  {result.ref}: {result.code}{where}: {result.message}")
        for warning in report.warnings:
            self.stdout.write(f"  warning: {warning}")


def _error(exc: Exception) -> dict[str, str]:
    if isinstance(exc, ArtifactError):
        return {"code": exc.code, "message": exc.message}
    if isinstance(exc, RetryableError):
        return {"code": "store_unavailable", "message": str(exc)}
    return {"code": "unreadable_file", "message": str(exc)}

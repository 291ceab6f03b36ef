"""manage.py check_conformance: fail CI when alerts, recording rules or dashboards use metrics
that the platform does not emit.

    manage.py check_conformance deploy/monitoring/ dashboards/ingest.json --format json

Exit codes: 0 every referenced metric is emitted; 1 some are missing; 2 some input is unusable
(unreadable file, unknown shape, PromQL that does not parse) - 2 wins over 1, since a check that
could not read all its input cannot vouch for it. The list of catalogue metrics that nothing uses
is informational and never changes the exit code.
"""

import json
import sys

from django.core.management.base import BaseCommand, CommandParser

from governance.conformance import CatalogueEntry, check_files
from governance.conformance_record import conformance_check_record
from governance.ports import metric_catalogue


class Command(BaseCommand):
    help = (
        "Check Prometheus rule files (plain or PrometheusRule manifests) and Grafana dashboards "
        "for metrics that no catalogue entry, recording rule or Prometheus itself emits. "
        "Exit 0: all emitted; 1: missing metrics; 2: unusable input (wins over 1)."
    )
    requires_system_checks: list = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "paths",
            nargs="+",
            metavar="PATH",
            help="rule files, dashboard JSON files, or directories holding them (recursively)",
        )
        parser.add_argument(
            "--format",
            choices=("text", "json"),
            default="text",
            help="report format (json is stable, for CI)",
        )
        parser.add_argument(
            "--allow-missing",
            action="append",
            default=[],
            metavar="NAME",
            help="a series name that may be referenced without being emitted (repeatable)",
        )

    def handle(self, *args: object, **options: object) -> None:
        catalogue = [CatalogueEntry(entry.name, entry.type) for entry in metric_catalogue()]
        report = check_files(
            options["paths"], catalogue, allow_missing=frozenset(options["allow_missing"])
        )
        if options["format"] == "json":
            self.stdout.write(json.dumps(report.as_json(), indent=2))
        else:
            self.stdout.write(report.as_text(), ending="")
        # The governance home shows the last runs; recording is best-effort (see the module).
        if not conformance_check_record(report):
            self.stderr.write("note: this check's status could not be recorded (Redis refused)")
        code = report.exit_code()
        if code:
            sys.exit(code)

"""manage.py verify_audit_chain: prove the audit log was not altered (exit 1 if it was)."""

from __future__ import annotations

import sys
from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.verification import audit_chains_verify
from telemetry_platform.conf import telemetry_settings


class Command(BaseCommand):
    help = "Verify the audit event chains; report every broken, missing or reordered link."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", default=None, help="first day to verify (YYYY-MM-DD)")
        parser.add_argument(
            "--digests",
            default=None,
            metavar="DIR",
            help="also check the exported digest files in DIR (catches chains deleted with heads)",
        )

    def handle(self, *args: object, **options: object) -> None:
        since = None
        if options["since"]:
            try:
                since = date.fromisoformat(options["since"])
            except ValueError:
                raise CommandError("--since must be a date, YYYY-MM-DD") from None
        report = audit_chains_verify(
            since=since,
            keys=telemetry_settings.HASH_KEYS,
            digest_keys=telemetry_settings.AUDIT_DIGEST_KEYS,
            digests=options["digests"],
        )
        for problem in report.problems:
            self.stdout.write(f"  {problem}")
        summary = (
            f"{report.chains} chains, {report.links} links checked"
            f" ({report.purged_chains} partly or wholly purged by retention)"
        )
        if options["digests"]:
            summary += f", {report.digest_files} digest file(s)"
        if report.problems:
            self.stdout.write(self.style.ERROR(f"{len(report.problems)} problem(s); {summary}."))
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS(f"Audit chains intact: {summary}."))

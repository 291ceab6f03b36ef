"""manage.py export_audit_digests: write the digest files of closed days not exported yet."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.digests import audit_digests_export
from telemetry_platform.conf import telemetry_settings


class Command(BaseCommand):
    help = "Write one signed digest file per closed UTC day of audit chains (beat does it hourly)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dir", default=None, help="directory (default: TELEMETRY_AUDIT_DIGEST_DIR)"
        )

    def handle(self, *args: object, **options: object) -> None:
        directory = options["dir"] or telemetry_settings.AUDIT_DIGEST_DIR
        if not directory:
            raise CommandError("no directory: pass --dir or set TELEMETRY_AUDIT_DIGEST_DIR")
        written = audit_digests_export(directory=directory)
        for path in written:
            self.stdout.write(f"  {path.name}")
        self.stdout.write(self.style.SUCCESS(f"{len(written)} digest file(s) written."))

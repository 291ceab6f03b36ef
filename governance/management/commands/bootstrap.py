"""manage.py bootstrap: migrate, then load the default governance configuration (idempotent)."""

from django.core.management import call_command
from django.core.management.base import BaseCommand

from governance.services import default_configuration_load


class Command(BaseCommand):
    help = "Migrate the database and load the default governance configuration. Safe to re-run."

    def handle(self, *args: object, **options: object) -> None:
        call_command("migrate", interactive=False, verbosity=options.get("verbosity", 1))
        changes = default_configuration_load()
        if changes:
            for change in changes:
                self.stdout.write(f"  + {change}")
        self.stdout.write(self.style.SUCCESS("Default governance configuration is loaded."))

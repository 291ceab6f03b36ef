"""manage.py create_api_key: create an ingest API key and print its secret once."""

from django.core.management.base import BaseCommand, CommandError

from ingest.models import ApiKey
from ingest.services import api_key_create


class Command(BaseCommand):
    help = "Create an ingest API key. The key is printed once; only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="unique name of the key")
        parser.add_argument(
            "--source", default="", help="source recorded on its events (default: the name)"
        )
        parser.add_argument(
            "--kind",
            choices=ApiKey.Kind.values,
            default=ApiKey.Kind.INGEST,
            help="schema_check: a CI key that may only check proto changes (telemetry-client "
            "schema-check); ingest (default): sends events",
        )
        parser.add_argument(
            "--schema",
            action="append",
            default=[],
            help="schema_check keys: a schema it may check (repeatable; trailing * = prefix)",
        )

    def handle(self, *args: object, **options: str) -> None:
        if ApiKey.objects.filter(name=options["name"]).exists():
            raise CommandError(f"an API key named {options['name']!r} already exists")
        created = api_key_create(
            name=options["name"],
            source=options["source"],
            actor=None,
            kind=options["kind"],
            allowed_schemas=options["schema"],
        )
        self.stderr.write(
            f"Created API key {created.api_key.name!r} (source {created.api_key.source!r}). "
            "Store it now: it cannot be shown again."
        )
        self.stdout.write(created.secret)

"""manage.py create_api_key: create an ingest API key and print its secret once."""

from django.core.management.base import BaseCommand, CommandError

from ingest.models import ApiKey
from ingest.services import ApiKeyScopeError, api_key_create


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
            "schema-check); publishable: a browser key, safe to embed in a page (needs "
            "--schema and --origin); ingest (default): sends events",
        )
        parser.add_argument(
            "--schema",
            action="append",
            default=[],
            help="a schema it may check (schema_check) or send (publishable, ingest) "
            "(repeatable; trailing * = prefix)",
        )
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            help="publishable keys: an origin pages may send from (https://app.example.com; "
            "repeatable)",
        )
        parser.add_argument(
            "--surface",
            action="append",
            default=[],
            help="a surface it may send (CLIENT_SURFACE_WEB; repeatable)",
        )
        parser.add_argument(
            "--allow-no-origin",
            action="store_true",
            help="publishable keys: accept requests with neither Origin nor Referer",
        )

    def handle(self, *args: object, **options: str) -> None:
        if ApiKey.objects.filter(name=options["name"]).exists():
            raise CommandError(f"an API key named {options['name']!r} already exists")
        try:
            created = api_key_create(
                name=options["name"],
                source=options["source"],
                actor=None,
                kind=options["kind"],
                allowed_schemas=options["schema"],
                allowed_origins=options["origin"],
                allowed_surfaces=options["surface"],
                allow_no_origin=bool(options["allow_no_origin"]),
            )
        except ApiKeyScopeError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(
            f"Created API key {created.api_key.name!r} (source {created.api_key.source!r}). "
            "Store it now: it cannot be shown again."
        )
        self.stdout.write(created.secret)

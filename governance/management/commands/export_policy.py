"""manage.py export_policy: print a schema's field policies as policy-as-code YAML."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.models import SchemaRevision
from governance.policies import policy_yaml_dump
from governance.selectors import field_policy_specs


class Command(BaseCommand):
    help = "Print the field policies of a schema's latest (or given) revision as YAML."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("schema")
        parser.add_argument("--revision", type=int, default=None, help="a specific revision number")

    def handle(self, *args: object, **options: object) -> None:
        revisions = SchemaRevision.objects.filter(schema__name=options["schema"])
        if options["revision"] is not None:
            revisions = revisions.filter(version=options["revision"])
        revision = revisions.order_by("-version").first()
        if revision is None:
            raise CommandError(f"no schema revision {options['schema']!r}")
        version = options["revision"]
        self.stdout.write(
            policy_yaml_dump(revision.schema.name, field_policy_specs(revision), version=version),
            ending="",
        )

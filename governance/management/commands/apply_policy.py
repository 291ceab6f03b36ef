"""manage.py apply_policy: apply a policy-as-code YAML file and print what changed."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.policies import PolicyDocumentError, policy_yaml_parse
from governance.services import PolicyApplyError, policy_document_apply


class Command(BaseCommand):
    help = "Apply field policies from a YAML file (see export_policy for the format)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")

    def handle(self, *args: object, **options: object) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            document = policy_yaml_parse(path.read_text(encoding="utf-8"))
            changes = policy_document_apply(document=document, actor=None)
        except (PolicyDocumentError, PolicyApplyError) as exc:
            raise CommandError("policy not applied:\n  " + "\n  ".join(exc.errors)) from exc
        except UnicodeDecodeError:
            raise CommandError(f"{path}: not UTF-8 text") from None
        for change in changes:
            self.stdout.write(f"  {change}")
        self.stdout.write(self.style.SUCCESS(f"{len(changes)} field policies changed."))

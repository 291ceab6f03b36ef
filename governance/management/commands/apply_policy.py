"""manage.py apply_policy: propose a policy-as-code YAML file (and, for CI, approve it)."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.policies import PolicyDocumentError, policy_yaml_parse
from governance.services import (
    ChangeRequestError,
    change_request_approve,
    policy_document_propose,
)


class Command(BaseCommand):
    help = (
        "Propose the field policies of a YAML file as a submitted change request "
        "(see export_policy for the format); with --approver, also approve and apply it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--author", required=True, help="Username proposing the change.")
        parser.add_argument(
            "--approver",
            help="Username approving and applying it (must hold the approver permission and "
            "not be the author).",
        )
        parser.add_argument("--reason", default="", help="Why (default: names the file).")

    def handle(self, *args: object, **options: object) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        author = self._user(options["author"], "--author")
        approver = self._user(options["approver"], "--approver") if options["approver"] else None
        try:
            document = policy_yaml_parse(path.read_text(encoding="utf-8"))
        except PolicyDocumentError as exc:
            raise CommandError("policy not applied:\n  " + "\n  ".join(exc.errors)) from exc
        except UnicodeDecodeError:
            raise CommandError(f"{path}: not UTF-8 text") from None
        try:
            change_request = policy_document_propose(
                document=document,
                reason=options["reason"] or f"Policy as code: {path.name}",
                actor=author,
            )
        except ChangeRequestError as exc:
            if exc.code == "no_change":
                self.stdout.write(self.style.SUCCESS(f"Nothing to change: {exc.message}."))
                return
            raise CommandError(f"policy not proposed ({exc.code}): {exc.message}") from exc
        self.stdout.write(
            f"Change request #{change_request.pk} submitted: {change_request.summary}"
        )
        if approver is None:
            self.stdout.write("It applies once someone else approves it in the admin.")
            return
        try:
            change_request = change_request_approve(
                change_request=change_request, actor=approver, apply=True
            )
        except ChangeRequestError as exc:
            raise CommandError(
                f"change request #{change_request.pk} stays submitted; not approved "
                f"({exc.code}): {exc.message}"
            ) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Approved by {approver.get_username()} and applied as version "
                f"{change_request.applied_version} of {change_request.target}."
            )
        )

    def _user(self, username: str, option: str):
        user = get_user_model().objects.filter(username=username).first()
        if user is None or not user.is_active:
            raise CommandError(f"{option}: no active user {username!r}")
        return user

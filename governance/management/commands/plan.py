"""manage.py plan: export, diff and apply the telemetry plan (one YAML file per schema)."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.models import Schema
from governance.services import ChangeRequestError
from governance.telemetry_plan import (
    PlanDocumentError,
    PlanRefused,
    SchemaDrift,
    plan_directory_read,
    plan_directory_write,
    schema_plan_get,
    telemetry_plan_apply,
    telemetry_plan_changes,
)

UNUSABLE = 2  # exit status of a plan that cannot be read or checked (1: drift / refused)


class Command(BaseCommand):
    help = (
        "The telemetry plan as code. export DIR writes <schema>.yaml per schema; diff DIR "
        "exits 1 when the registry differs from the plan; apply DIR --author U [--approver V] "
        "proposes one reviewed change request per target (and, with --approver, applies them)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True)
        export = commands.add_parser("export", help="Write the registry's plan to DIR.")
        export.add_argument("directory")
        export.add_argument(
            "--schema", action="append", default=[], help="Only this schema (repeatable)."
        )
        diff = commands.add_parser("diff", help="Show where the registry differs from DIR.")
        diff.add_argument("directory")
        apply = commands.add_parser("apply", help="Propose (and approve) the plan of DIR.")
        apply.add_argument("directory")
        apply.add_argument("--author", required=True, help="Username proposing the changes.")
        apply.add_argument(
            "--approver",
            help="Username approving and applying them (a second person with approve rights).",
        )
        apply.add_argument("--reason", default="", help="Why (default: names the schema).")

    def handle(self, *args: object, **options: object) -> None:
        directory = Path(options["directory"])
        if options["action"] == "export":
            self._export(directory, options["schema"])
        elif options["action"] == "diff":
            self._diff(directory)
        else:
            self._apply(directory, options)

    def _export(self, directory: Path, names: list[str]) -> None:
        schemas = Schema.objects.order_by("name")
        if names:
            schemas = schemas.filter(name__in=names)
            unknown = sorted(set(names) - set(schemas.values_list("name", flat=True)))
            if unknown:
                raise CommandError(f"no schema named {', '.join(unknown)}", returncode=UNUSABLE)
        plans = [schema_plan_get(schema=schema) for schema in schemas if schema.revisions.exists()]
        for path in plan_directory_write(directory, plans):
            self.stdout.write(f"wrote {path}")

    def _checked(self, directory: Path, doing: str) -> dict:
        try:
            return plan_directory_read(directory)
        except PlanDocumentError as exc:
            raise CommandError(
                f"plan not {doing}: unusable plan files\n  " + "\n  ".join(exc.errors),
                returncode=UNUSABLE,
            ) from exc

    def _write_drift(self, drifts: list[SchemaDrift]) -> None:
        for drift in drifts:
            self.stdout.write(f"{drift.schema}: differs from its plan (live -> plan)")
            for change in drift.changes:
                self.stdout.write(f"  {change.target}")
                for row in change.rows:
                    self.stdout.write(f"    {row.item}: {row.old} -> {row.new}")

    def _diff(self, directory: Path) -> None:
        plans = self._checked(directory, "compared")
        try:
            drifts = telemetry_plan_changes(plans)
        except PlanRefused as exc:
            raise CommandError(
                "plan not compared: it cannot apply\n  " + "\n  ".join(exc.errors),
                returncode=UNUSABLE,
            ) from exc
        self._write_drift(drifts)
        if drifts:
            raise CommandError(f"drift: {len(drifts)} schema(s) differ from the plan", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"No drift: {len(plans)} schema(s) match the plan."))

    def _apply(self, directory: Path, options: dict) -> None:
        author = self._user(options["author"], "--author")
        approver = self._user(options["approver"], "--approver") if options["approver"] else None
        plans = self._checked(directory, "applied")
        try:
            requests = telemetry_plan_apply(
                plans=plans, author=author, approver=approver, reason=options["reason"]
            )
        except PlanRefused as exc:
            raise CommandError(
                "plan refused, nothing proposed:\n  " + "\n  ".join(exc.errors)
            ) from exc
        except ChangeRequestError as exc:
            raise CommandError(
                f"plan refused ({exc.code}), nothing proposed: {exc.message}"
            ) from exc
        if not requests:
            self.stdout.write(
                self.style.SUCCESS("Nothing to change: the registry matches the plan.")
            )
            return
        for change_request in requests:
            state = (
                f"applied as version {change_request.applied_version}"
                if approver is not None
                else "submitted"
            )
            self.stdout.write(f"#{change_request.pk} {change_request.summary}: {state}")
        if approver is None:
            self.stdout.write("They apply once someone else approves them in the admin.")

    def _user(self, username: str, option: str):
        user = get_user_model().objects.filter(username=username).first()
        if user is None or not user.is_active:
            raise CommandError(f"{option}: no active user {username!r}", returncode=UNUSABLE)
        return user

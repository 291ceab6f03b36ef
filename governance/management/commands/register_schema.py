"""manage.py register_schema: register a .proto message as a new schema revision."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.choices import RevisionStatus
from governance.descriptors import field_catalogue
from governance.schemas import load_schema
from governance.services import SchemaRegistrationError, schema_register

MAX_PROTO_BYTES = 1024 * 1024


def parse_roles(pairs: list[str]) -> dict[str, str]:
    """Turn ``ROLE=FIELD_PATH`` arguments into a dict; raise CommandError on a malformed one."""
    roles = {}
    for pair in pairs:
        role, sep, path = pair.partition("=")
        if not sep or not role or not path:
            raise CommandError(f"--role expects ROLE=FIELD_PATH, got {pair!r}")
        roles[role.strip()] = path.strip()
    return roles


class Command(BaseCommand):
    help = (
        "Register the message MESSAGE of the given .proto file(s) as a new revision of schema "
        "NAME. The revision must be compatible with every earlier one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", help=".proto files (every file the schema needs)")
        parser.add_argument("--message", required=True, help="fully qualified event message")
        parser.add_argument("--name", required=True, help="schema name, e.g. pkg.event.v1")
        parser.add_argument("--event-class", default=None, help="required for a new schema")
        parser.add_argument(
            "--role",
            action="append",
            default=[],
            metavar="ROLE=FIELD_PATH",
            help="set an envelope role explicitly (repeatable), e.g. occurred_at=ts",
        )
        parser.add_argument(
            "--status", default=RevisionStatus.ACTIVE, choices=RevisionStatus.values
        )
        parser.add_argument(
            "--proto-path",
            default=None,
            help="import root: files are named relative to it (default: their base names)",
        )
        parser.add_argument("--description", default="")

    def handle(self, *args: object, **options: object) -> None:
        sources = self._read_sources(options["files"], options["proto_path"])
        try:
            registered = schema_register(
                name=options["name"],
                proto_files=sources,
                message_name=options["message"],
                event_class=options["event_class"],
                roles=parse_roles(options["role"]),
                status=options["status"],
                description=options["description"],
                actor=None,
            )
        except SchemaRegistrationError as exc:
            raise CommandError(
                f"schema not registered ({exc.code}):\n  " + "\n  ".join(exc.errors)
            ) from exc
        revision = registered.revision
        if not registered.created:
            self.stdout.write(f"{revision} is already registered with these sources; unchanged.")
            return
        compiled = load_schema(bytes(revision.descriptor_set), revision.message_name)
        fields = field_catalogue(compiled.descriptor)
        self.stdout.write(
            self.style.SUCCESS(
                f"Registered {revision} ({revision.status}, event class "
                f"{revision.schema.event_class_id}): {len(fields)} field paths."
            )
        )
        for role, path in sorted(revision.roles.items()):
            self.stdout.write(f"  role {role:<17} {path}")
        if "event_id" not in revision.roles:
            self.stdout.write("  (no event-id field: ids are derived from each event's content)")

    @staticmethod
    def _read_sources(files: list[str], proto_path: str | None) -> dict[str, str]:
        sources = {}
        root = Path(proto_path).resolve() if proto_path else None
        for name in files:
            path = Path(name)
            if not path.is_file():
                raise CommandError(f"{name}: no such file")
            if path.stat().st_size > MAX_PROTO_BYTES:
                raise CommandError(f"{name}: larger than {MAX_PROTO_BYTES} bytes")
            if root is not None:
                try:
                    key = path.resolve().relative_to(root).as_posix()
                except ValueError:
                    raise CommandError(f"{name} is not under --proto-path {root}") from None
            else:
                key = path.name
            try:
                sources[key] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise CommandError(f"{name}: not UTF-8 text") from None
        return sources

"""manage.py grant_role: put a user (created if asked) in one of the platform's roles."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.roles import PLATFORM_ADMIN, ROLE_PERMISSIONS

ROLES = (*ROLE_PERMISSIONS, PLATFORM_ADMIN)


class Command(BaseCommand):
    help = "Add a user to a role (group); --create makes the user, printing a generated password."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("role", choices=ROLES, help="One of: " + ", ".join(ROLES))
        parser.add_argument("--create", action="store_true", help="Create the user if missing.")

    def handle(self, *args: object, **options: object) -> None:
        user_model = get_user_model()
        username = options["username"]
        user = user_model.objects.filter(username=username).first()
        if user is None:
            if not options["create"]:
                raise CommandError(f"no user {username!r} (add --create to make one)")
            password = secrets.token_urlsafe(18)
            user = user_model.objects.create_user(username=username, password=password)
            self.stdout.write(f"Created {username!r}; password (shown only this once): {password}")
        group = Group.objects.filter(name=options["role"]).first()
        if group is None:
            raise CommandError("the roles are missing: run `manage.py bootstrap` first")
        user.groups.add(group)
        if not user.is_staff:
            user.is_staff = True  # every role works in the admin
            user.save(update_fields=["is_staff"])
        self.stdout.write(self.style.SUCCESS(f"{username} is a {options['role']}."))

"""manage.py ensure_admin: create a superuser if none exists and say how to log in."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create an admin account if no superuser exists. User name from ADMIN_USERNAME "
        "(default admin), password from ADMIN_PASSWORD or generated and printed once."
    )

    def handle(self, *args: object, **options: object) -> None:
        user_model = get_user_model()
        host = os.environ.get("HOST", "127.0.0.1")
        port = os.environ.get("PORT", "8000")
        url = f"http://{host}:{port}/admin/"
        existing = user_model.objects.filter(is_superuser=True).order_by("pk").first()
        if existing is not None:
            self.stdout.write(
                f"Admin: {url} (existing superuser {existing.get_username()!r}; "
                "reset its password with `manage.py changepassword`)"
            )
            return
        username = os.environ.get("ADMIN_USERNAME") or "admin"
        password = os.environ.get("ADMIN_PASSWORD")
        user_model.objects.create_superuser(
            username=username,
            email=os.environ.get("ADMIN_EMAIL", ""),
            password=password or (generated := secrets.token_urlsafe(18)),
        )
        self.stdout.write(
            self.style.SUCCESS(f"Created admin account {username!r}. Log in at {url}")
        )
        if password:
            self.stdout.write("Password: the value of ADMIN_PASSWORD.")
        else:
            self.stdout.write(
                f"Password (generated, shown only this once): {generated}\n"
                "Set ADMIN_PASSWORD before the first run to choose it instead."
            )

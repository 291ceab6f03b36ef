"""manage.py bootstrap and ensure_admin: idempotent set-up on every deploy."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from governance.models import EventClass, Schema, SchemaRevision
from governance.services import default_configuration_load

pytestmark = pytest.mark.django_db


def test_default_configuration_is_idempotent(platform_config):
    """A second load changes nothing: same classes, same revisions, no new beat entries."""
    before = (EventClass.objects.count(), SchemaRevision.objects.count())
    assert default_configuration_load() == []
    assert (EventClass.objects.count(), SchemaRevision.objects.count()) == before
    assert PeriodicTask.objects.filter(task="ingest.tasks.purge_expired_events").count() == 1


def test_default_configuration_keeps_operator_edits(platform_config):
    """Retention changed by a governance owner survives the next deploy's configuration load."""
    EventClass.objects.filter(name="service_metric").update(retention_days=14)
    default_configuration_load()
    assert EventClass.objects.get(name="service_metric").retention_days == 14


def test_platform_schemas_are_registered_with_roles(platform_config):
    """Each class has a platform schema; roles come from the proto's field options."""
    assert set(Schema.objects.values_list("event_class", flat=True)) == {
        "audit_event",
        "service_metric",
        "client_diagnostic",
        "performance_budget_sample",
        "service_log",
    }
    audit = SchemaRevision.objects.get(schema__name="telemetry.audit_event.v1")
    assert audit.roles["occurred_at"] == "occurred_at"
    assert audit.roles["actor"] == "user_id"
    assert "event_id" not in audit.roles  # control-service audit events have none
    diagnostic = SchemaRevision.objects.get(schema__name="telemetry.client_diagnostic.v1")
    assert diagnostic.roles["event_id"] == "envelope.event_id"
    assert diagnostic.roles["app_version"] == "envelope.build.app_version"


def test_ensure_admin_creates_one_superuser_once(monkeypatch, capsys):
    """No superuser: one is created with ADMIN_PASSWORD; a second run creates nothing."""
    monkeypatch.setenv("ADMIN_USERNAME", "ops")
    monkeypatch.setenv("ADMIN_PASSWORD", "s3cret-from-env!")
    call_command("ensure_admin")
    user = get_user_model().objects.get(username="ops")
    assert user.is_superuser and user.check_password("s3cret-from-env!")
    assert "s3cret-from-env!" not in capsys.readouterr().out
    call_command("ensure_admin")
    assert get_user_model().objects.filter(is_superuser=True).count() == 1


def test_ensure_admin_generates_and_prints_a_password(monkeypatch, capsys):
    """Without ADMIN_PASSWORD a password is generated and printed once; it works."""
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("ADMIN_USERNAME", raising=False)
    call_command("ensure_admin")
    out = capsys.readouterr().out
    password = out.split("shown only this once): ")[1].split()[0]
    assert get_user_model().objects.get(username="admin").check_password(password)


def test_create_api_key_command_prints_the_secret_once(platform_config, capsys):
    """The command prints the key on stdout; only its hash is stored."""
    from ingest.models import ApiKey
    from ingest.services import api_key_authenticate

    call_command("create_api_key", "--name", "release-pipeline")
    secret = capsys.readouterr().out.strip()
    stored = ApiKey.objects.get(name="release-pipeline")
    assert secret.startswith("tgp_") and secret != stored.secret_hash
    assert api_key_authenticate(presented=secret).api_key == stored


def test_check_services_names_the_unreachable_service():
    """With PostgreSQL or Redis unreachable the check says which, where, and how to start it."""
    env = {
        "DATABASE_URL": "postgres://root@127.0.0.1:1/telemetry_platform",
        "CELERY_BROKER_URL": "redis://127.0.0.1:2/0",
        "PATH": "/usr/bin:/bin",
    }
    completed = subprocess.run(
        [sys.executable, "scripts/check_services.py"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert "PostgreSQL is not reachable at 127.0.0.1:1" in completed.stderr
    assert "pg_ctlcluster" in completed.stderr
    assert "Redis is not reachable at redis://127.0.0.1:2/0" in completed.stderr
    assert "redis-server" in completed.stderr

"""The audit event proxy (its search permission) and the security analysts' group."""

from django.db import migrations


def create_security_group(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    group, _ = group_model.objects.get_or_create(name="security")
    group.permissions.add(
        *permission_model.objects.filter(
            content_type__app_label="audit",
            codename__in=["search_auditevent", "view_auditevent"],
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_chain_heads"),
        ("ingest", "0005_audit_chain"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditEvent",
            fields=[],
            options={
                "verbose_name": "audit event",
                "ordering": ["-occurred_at", "-id"],
                "permissions": [("search_auditevent", "Can search and export audit events")],
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("ingest.event",),
        ),
        migrations.RunPython(create_security_group, migrations.RunPython.noop),
    ]

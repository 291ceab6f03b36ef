"""The platform's roles as groups (governance/roles.py); the old "security" group is renamed."""

from django.db import migrations

from governance.roles import SECURITY_ANALYST, roles_sync


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    old = group_model.objects.filter(name="security").first()
    if old is not None and not group_model.objects.filter(name=SECURITY_ANALYST).exists():
        old.name = SECURITY_ANALYST
        old.save(update_fields=["name"])
    roles_sync(group_model=group_model, permission_model=apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0005_change_requests"),
        ("audit", "0002_security_group"),
        ("ingest", "0006_performance_trend"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]

# Per-schema breaking-change configuration (buf's category, ignore, ignore_only,
# ignore_unstable_packages); existing schemas get WIRE_JSON, the old default.

import django.contrib.postgres.fields
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0006_roles"),
    ]

    operations = [
        migrations.AddField(
            model_name="schema",
            name="breaking_category",
            field=models.CharField(
                choices=[
                    ("FILE", "FILE"),
                    ("PACKAGE", "PACKAGE"),
                    ("WIRE_JSON", "WIRE_JSON"),
                    ("WIRE", "WIRE"),
                ],
                default="WIRE_JSON",
                help_text="buf category new revisions must pass: WIRE_JSON (default), WIRE, "
                "PACKAGE or FILE.",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="schema",
            name="breaking_ignore",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.CharField(max_length=300),
                blank=True,
                default=list,
                help_text="Proto files or directories no breaking rule applies to (buf's ignore).",
                size=None,
            ),
        ),
        migrations.AddField(
            model_name="schema",
            name="breaking_ignore_only",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Rule id or category -> paths it does not apply to (buf's "
                'ignore_only), e.g. {"FIELD_SAME_JSON_NAME": ["acme/v1/legacy.proto"]}.',
            ),
        ),
        migrations.AddField(
            model_name="schema",
            name="breaking_ignore_unstable_packages",
            field=models.BooleanField(
                default=False,
                help_text="Skip files of alpha, beta and test packages (v1beta1, ...).",
            ),
        ),
    ]

# API keys get a kind: ingest (every existing key) or schema_check (CI, check only).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0007_audit_chain_head"),
    ]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="kind",
            field=models.CharField(
                choices=[
                    ("ingest", "Ingest: sends events"),
                    ("schema_check", "Schema check: may only check proto changes (CI)"),
                ],
                default="ingest",
                help_text="A schema_check key may only call POST /api/v1/schemas/NAME/check "
                "(for the schemas in allowed_schemas); it can neither send events nor register.",
                max_length=16,
            ),
        ),
    ]

"""Stored events record which field paths were redacted and by which rule (never the values)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ingest", "0001_initial")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE ingest_event ADD COLUMN redactions jsonb NOT NULL DEFAULT '[]'::jsonb;",
            reverse_sql="ALTER TABLE ingest_event DROP COLUMN redactions;",
        ),
        migrations.AddField(
            model_name="event",
            name="redactions",
            field=models.JSONField(
                default=list, help_text="[field path, rule] pairs of what redaction changed."
            ),
        ),
    ]

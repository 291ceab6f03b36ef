"""Events carry the one-way hashes of the people they name, GIN-indexed (data-subject requests)."""

import django.contrib.postgres.fields
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ingest", "0010_ingest_tally")]

    operations = [
        migrations.RunSQL(
            """
            ALTER TABLE ingest_event ADD COLUMN subject_hashes text[];
            CREATE INDEX ingest_event_subject_idx ON ingest_event USING gin (subject_hashes)
                WHERE subject_hashes IS NOT NULL;
            """,
            reverse_sql=(
                "DROP INDEX IF EXISTS ingest_event_subject_idx; "
                "ALTER TABLE ingest_event DROP COLUMN subject_hashes;"
            ),
        ),
        migrations.AddField(
            model_name="event",
            name="subject_hashes",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.CharField(max_length=80), null=True, size=None
            ),
        ),
    ]

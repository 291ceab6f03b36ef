"""Audit events carry their chain position and links (tamper evidence)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ingest", "0004_retention")]

    operations = [
        migrations.RunSQL(
            """
            ALTER TABLE ingest_event
                ADD COLUMN chain_seq bigint,
                ADD COLUMN chain_prev varchar(80),
                ADD COLUMN chain_link varchar(80);
            """,
            reverse_sql=(
                "ALTER TABLE ingest_event DROP COLUMN chain_seq, DROP COLUMN chain_prev, "
                "DROP COLUMN chain_link;"
            ),
        ),
        migrations.AddField(
            model_name="event", name="chain_seq", field=models.BigIntegerField(null=True)
        ),
        migrations.AddField(
            model_name="event", name="chain_prev", field=models.CharField(max_length=80, null=True)
        ),
        migrations.AddField(
            model_name="event", name="chain_link", field=models.CharField(max_length=80, null=True)
        ),
    ]

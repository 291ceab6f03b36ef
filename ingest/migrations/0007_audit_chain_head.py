"""The audit chain heads move to the store, which owns the chain: state only, same table."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0006_performance_trend"),
        ("audit", "0003_chain_head_digest"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditChainHead",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("source", models.CharField(max_length=200)),
                        ("day", models.DateField()),
                        ("last_seq", models.BigIntegerField()),
                        ("last_link", models.CharField(max_length=80)),
                        ("purged_at", models.DateTimeField(blank=True, null=True)),
                        ("rows_purged", models.BigIntegerField(default=0)),
                        ("digest", models.CharField(blank=True, default="", max_length=100)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        "db_table": "audit_auditchainhead",
                        "ordering": ["day", "source"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("source", "day"), name="audit_chain_head_unique"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]

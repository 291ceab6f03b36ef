"""The audit chain heads now belong to the store (ingest/0007): state only, the table stays."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_chain_head_digest"),
        ("ingest", "0007_audit_chain_head"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditChainHead")],
            database_operations=[],
        ),
    ]

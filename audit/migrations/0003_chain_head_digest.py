"""Chain heads carry a keyed digest of their state; existing heads are sealed as they stand.

Heads a purge marked before this migration never counted what it removed: their
``rows_purged`` is set to the links absent now, so the sealed state matches the rows.
"""

import hashlib
import hmac
import json
from datetime import UTC

from django.db import migrations, models


def seal_heads(apps, schema_editor):
    # A frozen copy of audit.chain.head_content ("head.v1"): migrations must not follow
    # later changes of application code.
    from telemetry_platform.conf import telemetry_settings

    key_id = telemetry_settings.AUDIT_DIGEST_KEY_ID
    key = telemetry_settings.AUDIT_DIGEST_KEYS[key_id].encode("utf-8")
    head_model = apps.get_model("audit", "AuditChainHead")
    for head in head_model.objects.iterator():
        if head.purged_at is not None:
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(DISTINCT chain_seq) FROM ingest_event "
                    "WHERE event_class = 'audit_event' AND source = %s AND chain_seq BETWEEN 1 AND %s "
                    "AND occurred_at >= %s::date AND occurred_at < %s::date + 1",
                    [head.source, head.last_seq, head.day, head.day],
                )
                head.rows_purged = head.last_seq - cursor.fetchone()[0]
        content = json.dumps(
            [
                "head.v1",
                head.source,
                head.day.isoformat(),
                head.last_seq,
                head.last_link,
                head.purged_at.astimezone(UTC).isoformat() if head.purged_at else None,
                head.rows_purged,
            ],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8")
        digest = f"{key_id}:{hmac.new(key, content, hashlib.sha256).hexdigest()}"
        head_model.objects.filter(pk=head.pk).update(rows_purged=head.rows_purged, digest=digest)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_security_group"), ("ingest", "0005_audit_chain")]

    operations = [
        migrations.AddField(
            model_name="auditchainhead",
            name="digest",
            field=models.CharField(blank=True, default="", max_length=100),
        ),
        migrations.RunPython(seal_heads, migrations.RunPython.noop),
    ]

# API keys get a publishable kind: allowed origins, requests without an origin, a per-IP limit.

import django.contrib.postgres.fields
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ingest', '0008_api_key_kind'),
    ]

    operations = [
        migrations.AddField(
            model_name='apikey',
            name='allow_no_origin',
            field=models.BooleanField(default=False, help_text='Publishable keys: accept requests with neither Origin nor Referer (servers, native apps). Off by default.'),
        ),
        migrations.AddField(
            model_name='apikey',
            name='allowed_origins',
            field=django.contrib.postgres.fields.ArrayField(base_field=models.CharField(max_length=200), blank=True, default=list, help_text='Publishable keys: origins (https://app.example.com) pages may send from; checked against Origin, or Referer when there is no Origin.', size=None),
        ),
        migrations.AddField(
            model_name='apikey',
            name='rate_limit_per_ip_per_second',
            field=models.FloatField(blank=True, help_text='Publishable keys: events per second per client IP (empty: TELEMETRY_PUBLISHABLE_IP_EVENTS_PER_SECOND). The IP is never stored.', null=True),
        ),
        migrations.AlterField(
            model_name='apikey',
            name='kind',
            field=models.CharField(choices=[('ingest', 'Ingest: sends events'), ('schema_check', 'Schema check: may only check proto changes (CI)'), ('publishable', 'Publishable: embedded in pages, sends from allowed origins')], default='ingest', help_text='A schema_check key may only call POST /api/v1/schemas/NAME/check (for the schemas in allowed_schemas); it can neither send events nor register.', max_length=16),
        ),
    ]

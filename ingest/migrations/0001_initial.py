"""The event store (partitioned by class, then time) and API keys."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

CREATE_EVENT_TABLE = """
CREATE TABLE ingest_event (
    id bigserial NOT NULL,
    event_class varchar(48) NOT NULL,
    schema_revision_id bigint NOT NULL,
    source varchar(200) NOT NULL,
    event_id varchar(200) NOT NULL,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    request_id varchar(200) NOT NULL DEFAULT '',
    trace_id varchar(32) NOT NULL DEFAULT '',
    actor_hash varchar(200) NOT NULL DEFAULT '',
    ingest_request_id varchar(200) NOT NULL DEFAULT '',
    payload jsonb NOT NULL,
    PRIMARY KEY (event_class, occurred_at, id),
    CONSTRAINT ingest_event_dedupe UNIQUE (event_class, source, event_id, occurred_at)
) PARTITION BY LIST (event_class);
-- Rows of a class with no partition of its own (none, by construction) land here.
CREATE TABLE ingest_event_unclassified PARTITION OF ingest_event DEFAULT;
CREATE INDEX ingest_event_id_idx ON ingest_event (id);
CREATE INDEX ingest_event_occurred_idx ON ingest_event (occurred_at DESC);
CREATE INDEX ingest_event_request_idx ON ingest_event (request_id) WHERE request_id <> '';
CREATE INDEX ingest_event_trace_idx ON ingest_event (trace_id) WHERE trace_id <> '';
"""


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("governance", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiKey",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100, unique=True)),
                (
                    "source",
                    models.CharField(
                        blank=True,
        help_text="Source recorded on events whose schema has no source field (default: the name).",
                        max_length=200,
                    ),
                ),
                ("prefix", models.CharField(editable=False, max_length=16, unique=True)),
                ("secret_hash", models.CharField(editable=False, max_length=64)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("revoked_at", models.DateTimeField(blank=True, editable=False, null=True)),
                ("last_used_at", models.DateTimeField(blank=True, editable=False, null=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"verbose_name": "API key", "ordering": ["name"]},
        ),
        migrations.RunSQL(CREATE_EVENT_TABLE, reverse_sql="DROP TABLE ingest_event CASCADE;"),
        migrations.CreateModel(
            name="Event",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("source", models.CharField(max_length=200)),
                ("event_id", models.CharField(max_length=200)),
                ("occurred_at", models.DateTimeField()),
                ("received_at", models.DateTimeField()),
                ("request_id", models.CharField(blank=True, max_length=200)),
                ("trace_id", models.CharField(blank=True, max_length=32)),
                ("actor_hash", models.CharField(blank=True, max_length=200)),
                (
                    "ingest_request_id",
                    models.CharField(
                        blank=True,
                        help_text="x-request-id of the HTTP request that brought it.",
                        max_length=200,
                    ),
                ),
                ("payload", models.JSONField()),
                (
                    "event_class",
                    models.ForeignKey(
                        db_column="event_class",
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        to="governance.eventclass",
                    ),
                ),
                (
                    "schema_revision",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="governance.schemarevision",
                    ),
                ),
            ],
            options={"db_table": "ingest_event", "ordering": ["-occurred_at"], "managed": False},
        ),
    ]

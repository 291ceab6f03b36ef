"""The event store and the API keys that clients ingest with."""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from governance.models import EventClass, SchemaRevision

from .chain import head_content, keyed_digest, keyed_digest_valid, tombstone_content


class ApiKey(models.Model):
    """A credential for ingest clients. Only a SHA-256 of the secret is stored.

    The key reads ``tgp_<prefix>_<secret>``; the prefix finds the row, the hash proves
    the secret. Secrets are 256 random bits, so a fast hash is enough (no stretching).
    """

    class Kind(models.TextChoices):
        INGEST = "ingest", "Ingest: sends events"
        SCHEMA_CHECK = "schema_check", "Schema check: may only check proto changes (CI)"
        PUBLISHABLE = "publishable", "Publishable: embedded in pages, sends from allowed origins"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(
        max_length=16,
        choices=Kind.choices,
        default=Kind.INGEST,
        help_text="A schema_check key may only call POST /api/v1/schemas/NAME/check "
        "(for the schemas in allowed_schemas); it can neither send events nor register.",
    )
    source = models.CharField(
        max_length=200,
        blank=True,
        help_text="Source recorded on events whose schema has no source field (default: the name).",
    )
    allowed_sources = ArrayField(
        models.CharField(max_length=200),
        blank=True,
        default=list,
        help_text="Sources this key may send events for (comma-separated); empty: any.",
    )
    allowed_surfaces = ArrayField(
        models.CharField(max_length=200),
        blank=True,
        default=list,
        help_text="Surfaces (e.g. CLIENT_SURFACE_IOS) this key may send; empty: any.",
    )
    allowed_event_classes = ArrayField(
        models.CharField(max_length=48),
        blank=True,
        default=list,
        help_text="Event classes this key may send; empty: any.",
    )
    allowed_schemas = ArrayField(
        models.CharField(max_length=200),
        blank=True,
        default=list,
        help_text="Schema names this key may send (a trailing * matches a prefix); empty: any.",
    )
    allowed_origins = ArrayField(
        models.CharField(max_length=200),
        blank=True,
        default=list,
        help_text="Publishable keys: origins (https://app.example.com) pages may send from; "
        "checked against Origin, or Referer when there is no Origin.",
    )
    allow_no_origin = models.BooleanField(
        default=False,
        help_text="Publishable keys: accept requests with neither Origin nor Referer "
        "(servers, native apps). Off by default.",
    )
    rate_limit_per_ip_per_second = models.FloatField(
        null=True,
        blank=True,
        help_text="Publishable keys: events per second per client IP "
        "(empty: TELEMETRY_PUBLISHABLE_IP_EVENTS_PER_SECOND). The IP is never stored.",
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    rate_limit_per_second = models.FloatField(
        null=True,
        blank=True,
        help_text="Events per second for this key (empty: TELEMETRY_RATE_LIMIT_EVENTS_PER_SECOND).",
    )
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def is_publishable(self) -> bool:
        return self.kind == self.Kind.PUBLISHABLE


class Event(models.Model):
    """One accepted, redacted event.

    The table is partitioned by event class (LIST) and within each class by time
    (RANGE on occurred_at); see migration 0001 and docs/decisions.md. PostgreSQL
    requires the partition keys in every unique constraint, so the primary key is
    (event_class, occurred_at, id) and deduplication is on
    (event_class, source, event_id, occurred_at). Django only needs ``id`` to be
    unique, which the shared sequence guarantees.
    """

    id = models.BigAutoField(primary_key=True)
    event_class = models.ForeignKey(
        EventClass, on_delete=models.DO_NOTHING, db_column="event_class", db_constraint=False
    )
    schema_revision = models.ForeignKey(
        SchemaRevision, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    source = models.CharField(max_length=200)
    event_id = models.CharField(max_length=200)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    request_id = models.CharField(max_length=200, blank=True)
    trace_id = models.CharField(max_length=32, blank=True)
    actor_hash = models.CharField(max_length=200, blank=True)
    ingest_request_id = models.CharField(
        max_length=200, blank=True, help_text="x-request-id of the HTTP request that brought it."
    )
    payload = models.JSONField()
    redactions = models.JSONField(
        default=list, help_text="[field path, rule] pairs of what redaction changed."
    )
    # Audit events only: position in their (source, day) chain and the keyed links.
    chain_seq = models.BigIntegerField(null=True)
    # NULL, not "": these rows are not in any chain (the column is shared with other classes).
    chain_prev = models.CharField(max_length=80, null=True)  # noqa: DJ001
    chain_link = models.CharField(max_length=80, null=True)  # noqa: DJ001
    # One-way hashes of the people the event names (GIN-indexed; NULL when none).
    subject_hashes = ArrayField(models.CharField(max_length=80), null=True)

    class Meta:
        managed = False
        db_table = "ingest_event"
        ordering = ["-occurred_at"]

    def __str__(self) -> str:
        return f"{self.event_class_id}:{self.source}:{self.event_id}"


class PurgeRun(models.Model):
    """One run of the retention purge for one event class: the proof of what was removed."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        INTERRUPTED = "interrupted", "Interrupted"
        SKIPPED = "skipped", "Skipped (another purge of this class was running)"

    event_class = models.ForeignKey(EventClass, on_delete=models.PROTECT, related_name="+")
    cutoff = models.DateTimeField(help_text="Events before this (class retention) were eligible.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    partitions_dropped = ArrayField(models.CharField(max_length=63), default=list, blank=True)
    rows_deleted = models.BigIntegerField(default=0)
    rows_kept_by_holds = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    triggered_by = models.CharField(max_length=100, default="beat")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"purge {self.event_class_id} {self.started_at:%Y-%m-%d %H:%M} {self.status}"


class PerformanceTrend(Event):
    """The performance_budget_sample events, seen as trends per metric path (admin page)."""

    class Meta:
        proxy = True
        verbose_name = "performance trend"
        verbose_name_plural = "performance trends"


class AuditChainHead(models.Model):
    """Where a chain ends. Verification compares the stored rows with it; a purge marks it.

    After a purge removed (some of) a chain's rows, ``purged_at`` says so and
    ``rows_purged`` how many links are gone; the final link is kept, so the record of
    what existed outlives the rows. ``digest`` is a keyed digest of that state under the
    digest key (not in the database): a head edited in SQL no longer matches it.
    """

    source = models.CharField(max_length=200)
    day = models.DateField()
    last_seq = models.BigIntegerField()
    last_link = models.CharField(max_length=80)
    purged_at = models.DateTimeField(null=True, blank=True)
    rows_purged = models.BigIntegerField(default=0)
    digest = models.CharField(max_length=100, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Created by the audit app (audit/0001); the store owns it since it owns the chain.
        db_table = "audit_auditchainhead"
        constraints = [
            models.UniqueConstraint(fields=["source", "day"], name="audit_chain_head_unique")
        ]
        ordering = ["day", "source"]

    def __str__(self) -> str:
        return f"{self.source} {self.day}: {self.last_seq} links"

    def state_content(self) -> bytes:
        """The bytes ``digest`` covers."""
        return head_content(
            source=self.source,
            day=self.day,
            last_seq=self.last_seq,
            last_link=self.last_link,
            purged_at=self.purged_at,
            rows_purged=self.rows_purged,
        )

    def seal(self, *, key_id: str, key: str) -> None:
        """Set ``digest`` for the current state (the caller saves)."""
        self.digest = keyed_digest(self.state_content(), key_id=key_id, key=key)

    def seal_valid(self, *, keys: Mapping[str, str]) -> bool:
        """Whether ``digest`` matches the current state under one of ``keys``."""
        return bool(self.digest) and keyed_digest_valid(
            self.digest, self.state_content(), keys=keys
        )


class IngestTally(models.Model):
    """How many events of one sender ended one way in one hour (UTC), per schema, reject
    code, field path and claimed app version: upserted by the store, one row per kind per
    batch (never per event), holding counts and names only. Violation reports and the
    governance home read it; days are sums of hours."""

    hour = models.DateTimeField()
    source = models.CharField(max_length=200, help_text="The sending API key's source.")
    event_class = models.CharField(max_length=48)
    schema_name = models.CharField(max_length=200, help_text='"unknown" for unregistered names.')
    status = models.CharField(max_length=16)  # accepted | duplicate | rejected
    code = models.CharField(max_length=48, blank=True)
    field_path = models.CharField(max_length=200, blank=True)
    app_version = models.CharField(max_length=40, blank=True)
    # Concurrent batches of one sender raise the same counter; each writer thread takes
    # one of a few shards so they do not queue on one row lock until each other's commit.
    # Readers always sum over shards.
    shard = models.PositiveSmallIntegerField(default=0)
    count = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "hour",
                    "source",
                    "event_class",
                    "schema_name",
                    "status",
                    "code",
                    "field_path",
                    "app_version",
                    "shard",
                ],
                name="ingest_tally_unique",
            )
        ]
        indexes = [models.Index(fields=["source", "schema_name", "hour"], name="ingest_tally_src")]
        ordering = ["-hour"]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.source} {self.schema_name}: {self.count}"


class AuditChainTombstone(models.Model):
    """An erased audit event's place in its chain: its position and links, never its content.

    A data-subject erasure deletes the row and leaves this in its place, so verification
    can still walk the chain (the next row links to ``chain_link``) and tell an erasure
    from a deletion. ``erased_by`` names what erased it (``subject-request:ID``);
    ``digest`` is a keyed digest of this record under the digest key, so a tombstone
    edited or invented in SQL does not verify.
    """

    source = models.CharField(max_length=200)
    day = models.DateField()
    chain_seq = models.BigIntegerField()
    chain_prev = models.CharField(max_length=80)
    chain_link = models.CharField(max_length=80)
    erased_by = models.CharField(max_length=100)
    erased_at = models.DateTimeField()
    digest = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "day", "chain_seq"], name="audit_chain_tombstone_unique"
            )
        ]
        ordering = ["day", "source", "chain_seq"]

    def __str__(self) -> str:
        return f"{self.source} {self.day} #{self.chain_seq}: erased by {self.erased_by}"

    def state_content(self) -> bytes:
        """The bytes ``digest`` covers."""
        return tombstone_content(
            source=self.source,
            day=self.day,
            chain_seq=self.chain_seq,
            chain_prev=self.chain_prev,
            chain_link=self.chain_link,
            erased_by=self.erased_by,
            erased_at=self.erased_at,
        )

    def seal(self, *, key_id: str, key: str) -> None:
        """Set ``digest`` for the current state (the caller saves)."""
        self.digest = keyed_digest(self.state_content(), key_id=key_id, key=key)

    def seal_valid(self, *, keys: Mapping[str, str]) -> bool:
        """Whether ``digest`` matches the current state under one of ``keys``."""
        return bool(self.digest) and keyed_digest_valid(
            self.digest, self.state_content(), keys=keys
        )

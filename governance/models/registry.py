"""Governance records: event classes with retention, schemas and their revisions."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from ..choices import Classification, RedactionAction, RevisionStatus, ScanAction
from ..compatibility import CATEGORIES, DEFAULT_CATEGORY, RuleSet

identifier_validator = RegexValidator(
    r"^[a-z][a-z0-9_]{0,39}$",
    "Use lower-case letters, digits and underscores, starting with a letter (at most 40).",
)
schema_name_validator = RegexValidator(
    r"^[A-Za-z][A-Za-z0-9_.\-]{0,199}$",
    "Use letters, digits, dots, dashes and underscores, starting with a letter.",
)


class EventClass(models.Model):
    """A class of telemetry (audit_event, service_metric, ...) and how long its events are kept."""

    name = models.CharField(primary_key=True, max_length=48, validators=[identifier_validator])
    description = models.TextField(blank=True)
    retention_days = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(36500)],
        help_text="Events older than this many days are purged.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "event classes"

    def __str__(self) -> str:
        return self.name


class Schema(models.Model):
    """A named event schema; its revisions evolve additively."""

    name = models.CharField(max_length=200, unique=True, validators=[schema_name_validator])
    event_class = models.ForeignKey(EventClass, on_delete=models.PROTECT, related_name="schemas")
    description = models.TextField(blank=True)
    # How new revisions are checked against earlier ones: buf's breaking configuration.
    breaking_category = models.CharField(
        max_length=16,
        choices=[(category, category) for category in CATEGORIES],
        default=DEFAULT_CATEGORY,
        help_text="buf category new revisions must pass: WIRE_JSON (default), WIRE, "
        "PACKAGE or FILE.",
    )
    breaking_ignore = ArrayField(
        models.CharField(max_length=300),
        blank=True,
        default=list,
        help_text="Proto files or directories no breaking rule applies to (buf's ignore).",
    )
    breaking_ignore_only = models.JSONField(
        default=dict,
        blank=True,
        help_text='Rule id or category -> paths it does not apply to (buf\'s ignore_only), '
        'e.g. {"FIELD_SAME_JSON_NAME": ["acme/v1/legacy.proto"]}.',
    )
    breaking_ignore_unstable_packages = models.BooleanField(
        default=False, help_text="Skip files of alpha, beta and test packages (v1beta1, ...)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def breaking_rule_set(self) -> RuleSet:
        """The rule set new revisions of this schema are checked with (ValueError if invalid)."""
        return RuleSet(
            use=(self.breaking_category,),
            ignore=tuple(self.breaking_ignore),
            ignore_only={rule: tuple(paths) for rule, paths in self.breaking_ignore_only.items()},
            ignore_unstable_packages=self.breaking_ignore_unstable_packages,
        )

    def clean(self) -> None:
        """Refuse ignore_only entries naming no buf rule or category."""
        if not isinstance(self.breaking_ignore_only, dict) or not all(
            isinstance(paths, list) for paths in self.breaking_ignore_only.values()
        ):
            raise ValidationError({"breaking_ignore_only": "a mapping of rule -> list of paths"})
        try:
            self.breaking_rule_set()
        except ValueError as exc:
            raise ValidationError({"breaking_ignore_only": str(exc)}) from exc


class SchemaRevision(models.Model):
    """One version of a schema: the .proto source, its compiled descriptors and field roles."""

    schema = models.ForeignKey(Schema, on_delete=models.PROTECT, related_name="revisions")
    version = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=RevisionStatus.choices, default=RevisionStatus.ACTIVE
    )
    message_name = models.CharField(
        max_length=300, help_text="Fully qualified name of the message that is the event."
    )
    proto_files = models.JSONField(help_text="The uploaded .proto sources: file name -> text.")
    descriptor_set = models.BinaryField(help_text="Compiled FileDescriptorSet, imports included.")
    roles = models.JSONField(default=dict, help_text="Envelope role -> field path.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["schema__name", "version"]
        constraints = [
            models.UniqueConstraint(fields=["schema", "version"], name="schema_revision_unique")
        ]

    def __str__(self) -> str:
        return f"{self.schema.name} v{self.version}"


class PolicyEpoch(models.Model):
    """A single counter bumped in the same transaction as any schema or policy change.

    Each process compares it with the epoch its compiled plans were built at, and
    rebuilds them when it moved, so no process keeps enforcing a stale policy.
    """

    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"policy epoch {self.value}"


class FieldPolicy(models.Model):
    """The classification and redaction action of one field path of one schema revision."""

    revision = models.ForeignKey(
        SchemaRevision, on_delete=models.CASCADE, related_name="field_policies"
    )
    path = models.CharField(max_length=300)
    classification = models.CharField(max_length=20, choices=Classification.choices)
    action = models.CharField(max_length=20, choices=RedactionAction.choices)
    keep_chars = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="mask: last N characters kept; truncate: first N kept."
    )
    scan = models.BooleanField(
        default=False, help_text="Run the content scanners over this field's text."
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["revision", "path"]
        constraints = [
            models.UniqueConstraint(fields=["revision", "path"], name="field_policy_unique")
        ]
        verbose_name_plural = "field policies"

    def __str__(self) -> str:
        return f"{self.revision} {self.path}: {self.classification}/{self.action}"


class ScannerRule(models.Model):
    """A custom content scanner (a regular expression) added by a governance owner."""

    name = models.CharField(max_length=64, unique=True, validators=[identifier_validator])
    pattern = models.TextField(help_text="Python regular expression, at most 500 characters.")
    action = models.CharField(max_length=16, choices=ScanAction.choices, default=ScanAction.REPLACE)
    replacement = models.CharField(
        max_length=64, blank=True, help_text="Token for replace (default: [name])."
    )
    keep_chars = models.PositiveSmallIntegerField(default=4, help_text="mask: last N kept.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RetentionOverride(models.Model):
    """A schema kept for a different number of days than its event class."""

    schema = models.OneToOneField(Schema, on_delete=models.CASCADE, related_name="retention")
    retention_days = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    reason = models.CharField(max_length=300)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.schema.name}: {self.retention_days} days"


class LegalHold(models.Model):
    """Events matching every set criterion are never purged while the hold is active."""

    reason = models.CharField(max_length=300)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    event_class = models.ForeignKey(
        EventClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    schema = models.ForeignKey(
        Schema, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The keyed hashes of the actor identifier under every configured key: the raw
    # identifier typed by the analyst is never stored.
    actor_hashes = ArrayField(models.CharField(max_length=200), blank=True, default=list)
    occurred_from = models.DateTimeField(null=True, blank=True)
    occurred_to = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"hold #{self.pk}: {self.reason}"


metric_name_validator = RegexValidator(
    r"^[a-zA-Z_][a-zA-Z0-9_]{0,199}$", "A Prometheus metric name: letters, digits, underscores."
)


class MetricDefinition(models.Model):
    """An aggregate metric computed from a schema's ingested events, exposed on /metrics."""

    class Kind(models.TextChoices):
        COUNTER = "counter", "Counter (one per event)"
        HISTOGRAM = "histogram", "Histogram (of a numeric field)"

    name = models.CharField(max_length=200, unique=True, validators=[metric_name_validator])
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.COUNTER)
    schema = models.ForeignKey(Schema, on_delete=models.CASCADE, related_name="metrics")
    help = models.CharField(max_length=300, blank=True)
    labels = models.JSONField(
        default=list,
        blank=True,
        help_text='[{"label": "event_type", "source": "oneof:event"}, '
        '{"label": "surface", "source": "field:surface"}]',
    )
    value_field = models.CharField(
        max_length=300, blank=True, help_text="Histogram: the numeric field observed."
    )
    only_when = models.CharField(
        max_length=300, blank=True, help_text="Count only events where this field is present."
    )
    buckets = models.JSONField(default=list, blank=True, help_text="Histogram bucket bounds.")
    max_series = models.PositiveIntegerField(
        default=1000, help_text="Label combinations beyond this fold into 'other' (counted)."
    )
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

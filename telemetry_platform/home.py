"""The governance home: what needs the viewer, coverage, ingest, purges and conformance.

Wiring (it reads every app). Each section is shown only to a viewer holding the
permission its workflow needs, so the page a role sees is what that role can act on.
Every figure comes from small tables, the hourly tallies or the planner's estimates:
nothing here counts the event table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q
from django.urls import NoReverseMatch, reverse
from django_celery_beat.models import PeriodicTask

from governance import roles
from governance.choices import OPEN_CHANGE_STATUSES, ChangeStatus, Classification, RevisionStatus
from governance.conformance_record import ConformanceCheck, conformance_checks_recent
from governance.models import ChangeRequest, FieldPolicy, LegalHold, SchemaRevision
from governance.reviews import policy_review_status
from governance.selectors import revision_leaf_paths
from governance.services.change_requests import stale_reason
from ingest.models import PurgeRun
from ingest.violations import IngestTotals, ingest_totals
from privacy.models import SubjectRequest

from .charts import Segment, human_count, stacked_bars_svg
from .db_router import ReadSource, read_connection, replica_reads

HOLD_EXPIRY_NOTICE = timedelta(days=14)
PURGE_TASK = "purge expired events"
CHART_ROWS = 15
STATUS_COLOURS = {"accepted": "#417690", "duplicate": "#a7b6c2"}
CODE_COLOURS = ("#ba2121", "#e07b39", "#c9a227", "#8e44ad", "#6d4c41")
ROLE_ORDER = (
    roles.GOVERNANCE_OWNER,
    roles.GOVERNANCE_APPROVER,
    roles.SECURITY_ANALYST,
    roles.READ_ONLY_AUDITOR,
    roles.PRIVACY_OFFICER,
    roles.PLATFORM_ADMIN,
)


@dataclass(frozen=True)
class Link:
    """One workflow the viewer may open, with why it is there."""

    label: str
    url: str
    hint: str = ""


@dataclass(frozen=True)
class Task:
    """One thing waiting for the viewer: how many and where to act."""

    key: str
    label: str
    count: int
    url: str
    items: tuple[tuple[str, str], ...] = ()  # (text, url) of the first few


@dataclass(frozen=True)
class CoverageRow:
    schema: str
    revision: str
    classified: int
    total: int
    sensitive: int  # classified personal or secret
    kept_raw: int  # of those, stored as is (action keep)
    url: str

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(self.classified * 100 / self.total)


@dataclass(frozen=True)
class PurgeRow:
    event_class: str
    status: str
    started_at: datetime
    rows_deleted: int
    partitions_dropped: int
    duration: str
    url: str


@dataclass
class Home:
    """Everything the home template shows; sections the viewer may not see stay None."""

    roles: list[str]
    tasks: list[Task] | None = None
    coverage: list[CoverageRow] | None = None
    ingest: list[IngestTotals] | None = None
    ingest_chart: str = ""
    ingest_legend: list[tuple[str, str]] = field(default_factory=list)
    ingest_rows: list[dict] = field(default_factory=list)
    events_estimate: int | None = None
    purges: list[PurgeRow] | None = None
    next_purge: datetime | None = None
    conformance: list[ConformanceCheck] | None = None
    links: list[Link] = field(default_factory=list)
    freshness: ReadSource | None = None  # where the figures were read, and how fresh

    @property
    def events_estimate_text(self) -> str:
        return human_count(self.events_estimate or 0)


def viewer_roles(user: AbstractBaseUser) -> list[str]:
    """The platform roles the viewer holds (superusers are platform admins)."""
    names = set(user.groups.values_list("name", flat=True))
    if user.is_superuser:
        names.add(roles.PLATFORM_ADMIN)
    return [role for role in ROLE_ORDER if role in names]


def _url(name: str, *args: object, query: str = "") -> str:
    try:
        url = reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return ""
    return f"{url}?{query}" if query else url


def _change_request_item(request: ChangeRequest) -> tuple[str, str]:
    return f"#{request.pk} {request.summary}", _url("governance_changerequest_detail", request.pk)


def tasks_for(user: AbstractBaseUser, *, now: datetime) -> list[Task]:
    """What waits for this viewer: others' requests to approve, own requests to rebase,
    policies due for review, holds expiring soon, subject requests to approve."""
    tasks: list[Task] = []
    if user.has_perm("governance.approve_changerequest"):
        waiting = ChangeRequest.objects.filter(status=ChangeStatus.SUBMITTED).exclude(
            author_id=user.pk
        )
        first = list(waiting.order_by("submitted_at", "id")[:5])
        tasks.append(
            Task(
                "approve",
                "Change requests awaiting my approval",
                waiting.count(),
                _url("governance_changerequest_changelist", query="status__exact=submitted"),
                tuple(_change_request_item(r) for r in first),
            )
        )
    if user.has_perm("governance.propose_changerequest"):
        mine = ChangeRequest.objects.filter(author_id=user.pk, status__in=OPEN_CHANGE_STATUSES)
        stale = [r for r in mine.order_by("created_at")[:50] if stale_reason(r)]
        tasks.append(
            Task(
                "rebase",
                "My change requests to rebase",
                len(stale),
                _url("governance_changerequest_changelist"),
                tuple(_change_request_item(r) for r in stale[:5]),
            )
        )
    if user.has_perm("governance.review_policy"):
        due = [status for status in policy_review_status(now=now) if status.due]
        tasks.append(
            Task(
                "review",
                "Policies due for review",
                len(due),
                _url("governance_changerequest_review"),
                tuple((s.label, _url("governance_changerequest_review")) for s in due[:5]),
            )
        )
    if user.has_perm("governance.view_legalhold"):
        expiring = LegalHold.objects.filter(
            released_at__isnull=True, expires_at__gte=now, expires_at__lt=now + HOLD_EXPIRY_NOTICE
        ).order_by("expires_at")
        first = list(expiring[:5])
        tasks.append(
            Task(
                "holds",
                f"Legal holds expiring within {HOLD_EXPIRY_NOTICE.days} days",
                expiring.count(),
                _url("governance_legalhold_changelist"),
                tuple(
                    (
                        f"#{hold.pk} {hold.reason} (expires {hold.expires_at:%Y-%m-%d})",
                        _url("governance_legalhold_change", hold.pk),
                    )
                    for hold in first
                ),
            )
        )
    if user.has_perm("privacy.approve_subjectrequest"):
        proposed = SubjectRequest.objects.filter(status=SubjectRequest.Status.PROPOSED).exclude(
            requested_by_id=user.pk
        )
        first = list(proposed.order_by("created_at")[:5])
        tasks.append(
            Task(
                "subjects",
                "Subject requests awaiting my approval",
                proposed.count(),
                _url("privacy_subjectrequest_changelist", query="status__exact=proposed"),
                tuple(
                    (
                        f"#{request.pk} {request.get_kind_display().split(' (')[0]}: "
                        f"{request.reason}",
                        _url("privacy_subjectrequest_change", request.pk),
                    )
                    for request in first
                ),
            )
        )
    return tasks


_leaf_counts: dict[int, int] = {}  # revision id -> leaf fields (descriptors never change)


def _leaf_count(revision: SchemaRevision) -> int:
    if revision.pk not in _leaf_counts:
        _leaf_counts[revision.pk] = len(revision_leaf_paths(revision))
    return _leaf_counts[revision.pk]


def coverage_list() -> list[CoverageRow]:
    """Per schema, its newest live revision: share of fields classified, how many are
    personal or secret and how many of those are stored as is."""
    newest: dict[int, SchemaRevision] = {}
    for revision in (
        SchemaRevision.objects.exclude(status=RevisionStatus.RETIRED)
        .select_related("schema")
        .defer("proto_files")
        .order_by("schema__name", "version")
    ):
        newest[revision.schema_id] = revision
    sensitive = (Classification.PERSONAL, Classification.SECRET)
    counts = {
        row["revision_id"]: row
        for row in FieldPolicy.objects.filter(revision__in=list(newest.values()))
        .values("revision_id")
        .annotate(
            classified=Count("id"),
            sensitive=Count("id", filter=Q(classification__in=sensitive)),
            kept_raw=Count("id", filter=Q(classification__in=sensitive, action="keep")),
        )
        .order_by()
    }
    rows = []
    for revision in newest.values():
        count = counts.get(revision.pk, {})
        rows.append(
            CoverageRow(
                schema=revision.schema.name,
                revision=f"v{revision.version} ({revision.status})",
                classified=count.get("classified", 0),
                total=_leaf_count(revision),
                sensitive=count.get("sensitive", 0),
                kept_raw=count.get("kept_raw", 0),
                url=_url("governance_fieldpolicy_edit", revision.pk),
            )
        )
    rows.sort(key=lambda row: (row.percent, row.schema))
    return rows


def ingest_chart(totals: list[IngestTotals]) -> tuple[str, list[tuple[str, str]]]:
    """The stacked bars (accepted, duplicate, rejected per code) and their legend."""
    codes: list[str] = []
    for total in totals:
        for code, _ in total.rejected_by_code:
            if code not in codes:
                codes.append(code)
    colours = {code: CODE_COLOURS[i % len(CODE_COLOURS)] for i, code in enumerate(codes)}
    rows = []
    for total in totals[:CHART_ROWS]:
        segments = [
            Segment("accepted", total.accepted, STATUS_COLOURS["accepted"]),
            Segment("duplicate", total.duplicate, STATUS_COLOURS["duplicate"]),
            *(
                Segment(f"rejected {code}", count, colours[code])
                for code, count in total.rejected_by_code
            ),
        ]
        rows.append((f"{total.source} · {total.schema_name}", segments))
    legend = [(name, colour) for name, colour in STATUS_COLOURS.items()]
    legend += [(f"rejected: {code}", colours[code]) for code in codes]
    return stacked_bars_svg(rows), legend


def ingest_rows(totals: list[IngestTotals]) -> list[dict]:
    """The chart's figures as a table (human units), each code linking to its violations."""
    violations = _url("violation_list")
    rows = []
    for total in totals:
        codes = [
            (
                code,
                human_count(count),
                f"{violations}?"
                + urlencode({"source": total.source, "schema": total.schema_name, "code": code}),
            )
            for code, count in total.rejected_by_code[:3]
        ]
        rows.append(
            {
                "source": total.source,
                "schema": total.schema_name,
                "accepted": human_count(total.accepted),
                "duplicate": human_count(total.duplicate),
                "rejected": human_count(total.rejected),
                "codes": codes,
            }
        )
    return rows


def events_estimate() -> int | None:
    """Stored events as the planner estimates them (pg_class.reltuples of the leaf
    partitions, kept by ANALYZE/autovacuum): no scan, whatever the table's size. None
    while no partition has been analysed (reltuples -1)."""
    with read_connection().cursor() as cursor:
        cursor.execute(
            "SELECT sum(c.reltuples) FILTER (WHERE c.reltuples >= 0)::bigint "
            "FROM pg_partition_tree('ingest_event'::regclass) AS t "
            "JOIN pg_class AS c ON c.oid = t.relid WHERE t.isleaf"
        )
        value = cursor.fetchone()[0]
    return None if value is None else int(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.0f} min"


def purges_last() -> list[PurgeRow]:
    """The newest purge run of each event class."""
    runs = PurgeRun.objects.order_by("event_class_id", "-started_at").distinct("event_class_id")
    return [
        PurgeRow(
            event_class=run.event_class_id,
            status=run.get_status_display(),
            started_at=run.started_at,
            rows_deleted=run.rows_deleted,
            partitions_dropped=len(run.partitions_dropped),
            duration=_duration(run.duration_seconds),
            url=_url("ingest_purgerun_change", run.pk),
        )
        for run in runs
    ]


def purge_next(*, now: datetime) -> datetime | None:
    """When beat runs the purge next (None when the task is missing or disabled)."""
    task = PeriodicTask.objects.filter(name=PURGE_TASK, enabled=True).select_related("crontab")
    task = task.first()
    if task is None or task.crontab is None:
        return None
    schedule = task.crontab.schedule
    return now + schedule.remaining_estimate(now)


def links_for(user: AbstractBaseUser) -> list[Link]:
    """Every workflow the viewer may open, one click from the home."""
    catalogue = [
        (
            "governance.view_changerequest",
            "Change requests",
            "governance_changerequest_changelist",
            "review, approve, apply",
        ),
        (
            "governance.view_changerequest",
            "Policies due for review",
            "governance_changerequest_review",
            "periodic reviews, review matrix per schema",
        ),
        (
            "governance.view_changerequest",
            "Policy history",
            "governance_changerequest_history_index",
            "every applied version, restore",
        ),
        (
            "governance.view_fieldpolicy",
            "Classification coverage",
            "governance_fieldpolicy_coverage",
            "unclassified fields per revision",
        ),
        (
            "governance.view_schema",
            "Schemas",
            "governance_schema_changelist",
            "revisions, roles, field catalogue",
        ),
        (
            "governance.view_scannerrule",
            "Redaction preview",
            "governance_scannerrule_preview",
            "a sample event before and after the policies",
        ),
        (
            "governance.view_metricdefinition",
            "Conformance check",
            "governance_metricdefinition_conformance",
            "rule files and dashboards against metrics",
        ),
        (
            "governance.view_legalhold",
            "Legal holds",
            "governance_legalhold_changelist",
            "what the purge keeps",
        ),
        (
            "ingest.view_purgerun",
            "Purge dry-run",
            "ingest_purgerun_dry_run",
            "what the next purge would remove",
        ),
        ("ingest.view_purgerun", "Purge runs", "ingest_purgerun_changelist", "proof of each purge"),
        (
            "ingest.view_ingesttally",
            "Violations",
            "violation_list",
            "why events are rejected, per source",
        ),
        (
            "ingest.view_performancetrend",
            "Performance trends",
            "ingest_performancetrend_changelist",
            "budgets per build",
        ),
        (
            "audit.search_auditevent",
            "Audit search",
            "audit_auditevent_changelist",
            "who did what, correlation, export",
        ),
        (
            "privacy.view_subjectrequest",
            "Subject requests",
            "privacy_subjectrequest_changelist",
            "access, erasure, suppression",
        ),
        ("ingest.view_apikey", "API keys", "ingest_apikey_changelist", "senders and their sources"),
    ]
    links = []
    for permission, label, name, hint in catalogue:
        url = _url(name)
        if url and user.has_perm(permission):
            links.append(Link(label, url, hint))
    return links


def home_build(user: AbstractBaseUser, *, now: datetime | None = None) -> Home:
    """Assemble the viewer's home: only the sections their permissions open."""
    now = now or datetime.now(UTC)
    home = Home(roles=viewer_roles(user), links=links_for(user))
    # What needs me reads its own writes (a request just approved must leave the list): on
    # the primary. The figures may be a moment old: on the replica when it is fresh enough.
    home.tasks = tasks_for(user, now=now)
    with replica_reads() as home.freshness:
        if user.has_perm("governance.view_fieldpolicy"):
            home.coverage = coverage_list()
        if user.has_perm("ingest.view_ingesttally"):
            home.ingest = ingest_totals(now=now)
            home.ingest_chart, home.ingest_legend = ingest_chart(home.ingest)
            home.ingest_rows = ingest_rows(home.ingest)
            home.events_estimate = events_estimate()
        if user.has_perm("ingest.view_purgerun"):
            home.purges = purges_last()
            home.next_purge = purge_next(now=now)
    if user.has_perm("governance.view_metricdefinition"):
        home.conformance = conformance_checks_recent(limit=3)
    return home

"""Admin for audit: search, export and the correlation timeline of audit events.

Security analysts (permission ``audit.search_auditevent``, the "security analyst" role) search
with the one filter definition shared with the API and exports (AuditEventFilterSet).
Audit events are append-only: nothing can be added, changed or deleted here.

The stock changelist is not used: it counts rows (COUNT(*)) for its paginator and its
result totals, which on the partitioned event table is a scan. Pages follow a keyset
cursor on (occurred_at, id) instead and the total is the planner's estimate.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import path, reverse

from audit.access import record_correlation, record_denied, record_search
from audit.exports import export_response
from audit.filtersets import DEFAULT_WINDOW, AuditEventFilterSet
from audit.models import AuditEvent
from audit.search_display import (
    EXACT_COUNT_LIMIT,
    SEARCH_RECORD_NAME,
    attributes_summary,
    match_count_text,
)
from audit.selectors import correlation_get, estimated_count
from ingest.models import Event
from telemetry_platform.db_router import annotate_response, replica_reads

PAGE_SIZE = 50
# Filters folded under "More filters": the bar keeps the ones most searches use.
MORE_FILTERS = ("occurred_before", "source", "request_id", "trace_id", "session", "org", "device")
SEARCH_PERMISSION = "audit.search_auditevent"
EXPORT_FORMATS = ("csv", "jsonl")
# Query parameters of the pages themselves, never filters.
CURSOR_PARAMS = ("older", "newer")


def encode_cursor(event: Event) -> str:
    """An opaque page token: the row's occurred_at (ISO 8601) and id."""
    raw = f"{event.occurred_at.isoformat()}|{event.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime, int] | None:
    """The (occurred_at, id) of a page token, or None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        moment, _, pk = raw.rpartition("|")
        occurred_at = datetime.fromisoformat(moment)
        if occurred_at.tzinfo is None:
            return None
        return occurred_at, int(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def rows_before(queryset: QuerySet, occurred_at: datetime, pk: int) -> QuerySet:
    """Rows older than (occurred_at, id) in the newest-first order."""
    return queryset.filter(occurred_at__lte=occurred_at).filter(
        Q(occurred_at__lt=occurred_at) | Q(id__lt=pk)
    )


def rows_after(queryset: QuerySet, occurred_at: datetime, pk: int) -> QuerySet:
    """Rows newer than (occurred_at, id) in the newest-first order."""
    return queryset.filter(occurred_at__gte=occurred_at).filter(
        Q(occurred_at__gt=occurred_at) | Q(id__gt=pk)
    )


@dataclass
class Page:
    rows: list[Event]
    older: str | None  # cursor of the next older page, if there is one
    newer: str | None  # cursor of the next newer page, if there is one


def keyset_page(queryset: QuerySet, *, older: str = "", newer: str = "") -> Page:
    """One page of ``queryset`` (newest first) around a cursor: LIMIT queries, never COUNT.

    ``older``: the rows after (older than) the cursor row. ``newer``: the rows before
    (newer than) it, read oldest first and reversed. No cursor: the newest page.
    """
    newest_first = queryset.order_by("-occurred_at", "-id")
    newer_cursor = decode_cursor(newer) if newer else None
    older_cursor = decode_cursor(older) if older and not newer_cursor else None
    if newer_cursor:
        found = list(
            rows_after(newest_first, *newer_cursor).order_by("occurred_at", "id")[: PAGE_SIZE + 1]
        )
        more_newer = len(found) > PAGE_SIZE
        rows = list(reversed(found[:PAGE_SIZE]))
        more_older = bool(rows) and (
            rows_before(newest_first, rows[-1].occurred_at, rows[-1].pk).exists()
        )
    else:
        window = rows_before(newest_first, *older_cursor) if older_cursor else newest_first
        found = list(window[: PAGE_SIZE + 1])
        more_older = len(found) > PAGE_SIZE
        rows = found[:PAGE_SIZE]
        more_newer = bool(rows and older_cursor) and (
            rows_after(newest_first, rows[0].occurred_at, rows[0].pk).exists()
        )
    return Page(
        rows=rows,
        older=encode_cursor(rows[-1]) if rows and more_older else None,
        newer=encode_cursor(rows[0]) if rows and more_newer else None,
    )


def shorten(value: str, length: int = 14) -> str:
    return value if len(value) <= length else f"{value[:length]}…"


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Audit search: filters, keyset pages, estimated totals, exports and correlation."""

    search_template = "admin/audit/auditevent/search.html"
    detail_template = "admin/audit/auditevent/detail.html"
    show_full_result_count = False
    list_per_page = PAGE_SIZE
    actions = None

    # Access: analysts only; the audit trail is append-only.

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.has_perm(SEARCH_PERMISSION)

    def has_view_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return request.user.is_active and request.user.has_perm(SEARCH_PERMISSION)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def _require_search_permission(self, request: HttpRequest, action: str) -> None:
        if not self.has_view_permission(request):
            record_denied(request, action=action)
            raise PermissionDenied

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "export.<str:export_format>",
                view(self.export_view),
                name="{}_{}_export".format(*info),
            ),
            path(
                "<int:object_id>/correlation/",
                view(self.correlation_view),
                name="{}_{}_correlation".format(*info),
            ),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, title: str) -> dict:
        request.current_app = self.admin_site.name
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "app_label": self.opts.app_label,
        }

    # Search.

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        """The search page: filter form, one keyset page, estimated total; recorded."""
        self._require_search_permission(request, "search")
        filterset = AuditEventFilterSet(request.GET, queryset=AuditEvent.objects.all())
        form = filterset.form
        for name in ("occurred_after", "occurred_before"):
            form.fields[name].widget.attrs.setdefault("placeholder", "e.g. 2026-01-31T09:00:00Z")
        context = {
            **self._context(request, "Audit search"),
            "form": form,
            "page_size": PAGE_SIZE,
            "primary_fields": [form[name] for name in form.fields if name not in MORE_FILTERS],
            "more_fields": [form[name] for name in form.fields if name in MORE_FILTERS],
            "more_filters_open": any(request.GET.get(name) for name in MORE_FILTERS),
            "default_window_hours": int(DEFAULT_WINDOW.total_seconds() // 3600),
            **(extra_context or {}),
        }
        if not filterset.is_valid():
            return TemplateResponse(request, self.search_template, context)

        queryset = filterset.qs
        data = form.cleaned_data
        show_searches = request.GET.get("show_searches") == "1"
        if not show_searches and data.get("event_name") != SEARCH_RECORD_NAME:
            queryset = queryset.alias(
                listed_event_name=KeyTextTransform("event_name", "payload")
            ).exclude(listed_event_name=SEARCH_RECORD_NAME)
        # The page's reads go to the replica within its lag bound; the page says how fresh.
        with replica_reads() as source:
            page = keyset_page(
                queryset,
                older=request.GET.get("older", ""),
                newer=request.GET.get("newer", ""),
            )
            rows = [self._row(event, data.get("q") or "") for event in page.rows]
            exact = self._exact_count(queryset, page)
            estimated = estimated_count(queryset) if exact is None else exact  # EXPLAIN
        filter_params = [
            (name, request.GET[name])
            for name in form.fields
            if data.get(name) not in (None, "") and request.GET.get(name)
        ]
        context.update(
            searched=True,
            rows=rows,
            estimated=estimated,
            match_count=match_count_text(exact=exact, estimated=estimated),
            show_searches=show_searches,
            searches_toggle_url=self._toggle_url(request, not show_searches),
            older_url=self._page_url(request, "older", page.older),
            newer_url=self._page_url(request, "newer", page.newer),
            first_url=self._page_url(request, None, None),
            paged=bool(request.GET.get("older") or request.GET.get("newer")),
            default_window=not (data.get("occurred_after") or data.get("occurred_before")),
            export_params=filter_params,
            export_urls=[
                (fmt.upper(), reverse("admin:audit_auditevent_export", args=[fmt]))
                for fmt in EXPORT_FORMATS
            ],
        )
        response = annotate_response(
            TemplateResponse(request, self.search_template, context), source
        )
        # Every search of audit data is itself audited (identifier filters as hashes only).
        record_search(request, filterset, "searched")
        return response

    @staticmethod
    def _exact_count(queryset: QuerySet, page: Page) -> int | None:
        """The exact number of matches when it is small (a LIMIT query, never COUNT)."""
        if not page.older and not page.newer:
            return len(page.rows)
        found = len(queryset.order_by().values_list("id", flat=True)[: EXACT_COUNT_LIMIT + 1])
        return found if found <= EXACT_COUNT_LIMIT else None

    def _toggle_url(self, request: HttpRequest, show: bool) -> str:
        query = request.GET.copy()
        for name in (*CURSOR_PARAMS, "show_searches"):
            query.pop(name, None)
        if show:
            query["show_searches"] = "1"
        encoded = query.urlencode()
        return f"{request.path}?{encoded}" if encoded else request.path

    def _row(self, event: Event, query: str = "") -> dict:
        payload = event.payload or {}
        return {
            "summary": attributes_summary(payload.get("attributes"), query),
            "pk": event.pk,
            "occurred_at": event.occurred_at,
            "event_name": payload.get("event_name", ""),
            "outcome": payload.get("outcome", ""),
            "source": event.source,
            "actor_hash": event.actor_hash,
            "actor_short": shorten(event.actor_hash),
            "request_id": event.request_id,
            "trace_id": event.trace_id,
            "url": reverse("admin:audit_auditevent_correlation", args=[event.pk]),
        }

    def _page_url(self, request: HttpRequest, direction: str | None, cursor: str | None) -> str:
        if direction and not cursor:
            return ""
        query = request.GET.copy()
        for name in CURSOR_PARAMS:
            query.pop(name, None)
        if direction:
            query[direction] = cursor
        encoded = query.urlencode()
        return f"{request.path}?{encoded}" if encoded else request.path

    # Exports.

    def export_view(self, request: HttpRequest, export_format: str) -> HttpResponse:
        """POST: the current filter streamed as CSV or JSONL; recorded.

        POST, so that the raw identifiers typed into the filters (actor, session, org,
        device) never travel in an export URL, into access logs or browser history.
        """
        self._require_search_permission(request, "export")
        if export_format not in EXPORT_FORMATS:
            raise Http404("export as csv or jsonl")
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        filterset = AuditEventFilterSet(request.POST, queryset=AuditEvent.objects.all())
        if not filterset.is_valid():
            return HttpResponse(
                json.dumps({"error": "invalid filter", "details": filterset.errors}),
                status=400,
                content_type="application/json",
            )
        record_search(request, filterset, "exported")
        with replica_reads() as source:
            response = export_response(filterset.qs, export_format)
        return annotate_response(response, source)

    # Detail and correlation.

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        """The stock change URL shows the read-only detail (no form: append-only)."""
        try:
            pk = int(object_id)
        except ValueError:
            raise Http404("no such audit event") from None
        return self.correlation_view(request, pk)

    def correlation_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """One audit event in full, and every event sharing its request or trace id."""
        self._require_search_permission(request, "correlate")
        found = correlation_get(object_id)
        if found is None:
            raise Http404("no such audit event")
        event = found.event
        timeline = [
            {
                "pk": item.pk,
                "current": item.pk == event.pk,
                "event_class": item.event_class_id,
                "schema": item.schema_revision.schema.name,
                "occurred_at": item.occurred_at,
                "source": item.source,
                "name": (item.payload or {}).get("event_name")
                or (item.payload or {}).get("name", ""),
                "request_id": item.request_id,
                "trace_id": item.trace_id,
                "payload": json.dumps(item.payload, indent=2, sort_keys=True),
                "url": (
                    reverse("admin:audit_auditevent_correlation", args=[item.pk])
                    if item.event_class_id == "audit_event" and item.pk != event.pk
                    else ""
                ),
            }
            for item in found.timeline
        ]
        record_correlation(request, event_pk=event.pk, found=len(timeline))
        revision = event.schema_revision
        context = {
            **self._context(request, f"Audit event {event.event_id}"),
            "event": event,
            "event_name": (event.payload or {}).get("event_name", ""),
            "schema": f"{revision.schema.name} v{revision.version}",
            "payload": json.dumps(event.payload, indent=2, sort_keys=True),
            "redactions": event.redactions or [],
            "timeline": timeline,
            "search_url": reverse("admin:audit_auditevent_changelist"),
        }
        return annotate_response(
            TemplateResponse(request, self.detail_template, context), found.source
        )

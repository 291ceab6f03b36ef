"""Admin for ingest: API keys (secret shown once) and the stored events (read-only)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from governance.models import EventClass
from telemetry_platform.conf import telemetry_settings
from telemetry_platform.db_router import annotate_response, replica_reads

from .artifacts.selectors import (
    performance_regression_list,
    performance_series_list,
    performance_source_list,
)
from .artifacts.trends import trend_chart_svg
from .humanize import human_duration
from .models import ApiKey, Event, PerformanceTrend, PurgeRun
from .retention import purge_preview, purge_runs_interrupted_mark
from .services import (
    ApiKeyScopeError,
    api_key_create,
    api_key_revoke,
    api_key_rotate,
    api_key_scope_check,
    api_key_scope_update,
)
from .tasks import purge_expired_events

RUN_PURGE_PERMISSION = "ingest.add_purgerun"
SCOPE_FIELDS = (
    "allowed_sources",
    "allowed_surfaces",
    "allowed_event_classes",
    "allowed_schemas",
    "allowed_origins",
    "allow_no_origin",
    "expires_at",
    "rate_limit_per_second",
    "rate_limit_per_ip_per_second",
)


class ApiKeyForm(forms.ModelForm):
    """Refuses a scope the key's kind may not have (a publishable key open to anything)."""

    class Meta:
        model = ApiKey
        fields = ("name", "kind", "source", *SCOPE_FIELDS)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if "kind" in self.fields:
            self.fields["kind"].required = False  # ingest when not chosen

    def clean(self) -> dict:
        cleaned = super().clean()
        if "kind" in self.fields and not cleaned.get("kind"):
            cleaned["kind"] = ApiKey.Kind.INGEST
            self.instance.kind = ApiKey.Kind.INGEST
        kind = cleaned.get("kind") or self.instance.kind
        values = {name: cleaned.get(name, getattr(self.instance, name)) for name in SCOPE_FIELDS}
        try:
            api_key_scope_check(kind, values)
        except ApiKeyScopeError as exc:
            raise forms.ValidationError(str(exc)) from None
        return cleaned


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = (
        "name",
        "kind",
        "source",
        "prefix",
        "expires_at",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("kind", "revoked_at")
    search_fields = ("name", "source", "prefix")
    readonly_fields = ("prefix", "created_at", "created_by", "last_used_at", "revoked_at")
    actions = ["revoke_keys", "rotate_key"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple:
        if obj is None:
            return ("name", "kind", "source", *SCOPE_FIELDS)
        return ("name", "kind", "source", *SCOPE_FIELDS, *self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple:
        return ("name", "kind", "source", *self.readonly_fields) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False  # revoke instead, so events keep a known origin

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        scope = {name: form.cleaned_data.get(name) for name in SCOPE_FIELDS}
        if change:
            api_key_scope_update(api_key=obj, actor=request.user, **scope)
            return
        created = api_key_create(
            name=obj.name, source=obj.source, actor=request.user, kind=obj.kind, **scope
        )
        obj.pk = created.api_key.pk
        request._created_api_key_secret = created.secret

    def response_add(
        self, request: HttpRequest, obj: ApiKey, post_url_continue=None
    ) -> HttpResponse:
        """Show the new key once, on a page of its own, never in a message or a log."""
        context = {
            **self.admin_site.each_context(request),
            "title": "API key created",
            "api_key": obj,
            "secret": request._created_api_key_secret,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/ingest/apikey/created.html", context)

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key, actor=request.user)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} API key(s).", messages.SUCCESS)

    @admin.action(
        description="Rotate the selected API key (new secret, shown once)", permissions=["change"]
    )
    def rotate_key(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> HttpResponse | None:
        """Give one key a new secret; the old one stops working at once."""
        keys = list(queryset[:2])
        if len(keys) != 1:
            self.message_user(request, "Select exactly one key to rotate.", messages.ERROR)
            return None
        try:
            rotated = api_key_rotate(api_key=keys[0], actor=request.user)
        except ApiKeyScopeError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "API key rotated",
            "api_key": rotated.api_key,
            "secret": rotated.secret,
            "rotated": True,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/ingest/apikey/created.html", context)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = (
        "occurred_at",
        "event_class",
        "schema_name",
        "source",
        "event_id",
        "received_at",
    )
    list_filter = ("event_class",)
    list_select_related = ("schema_revision__schema",)
    search_fields = ("=event_id", "=request_id", "=trace_id")
    show_full_result_count = False
    list_per_page = 50
    fields = (
        "event_class",
        "schema_revision",
        "source",
        "event_id",
        "occurred_at",
        "received_at",
        "request_id",
        "trace_id",
        "actor_hash",
        "ingest_request_id",
        "payload_pretty",
    )
    readonly_fields = fields

    @admin.display(description="schema")
    def schema_name(self, obj: Event) -> str:
        return f"{obj.schema_revision.schema.name} v{obj.schema_revision.version}"

    @admin.display(description="payload (redacted)")
    def payload_pretty(self, obj: Event) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False  # events leave only through retention


@admin.register(PurgeRun)
class PurgeRunAdmin(admin.ModelAdmin):
    list_display = (
        "started_at",
        "event_class",
        "status",
        "rows_deleted",
        "dropped",
        "rows_kept_by_holds",
        "duration",
        "triggered_by",
    )
    list_filter = ("event_class", "status", "triggered_by")
    readonly_fields = (
        "event_class",
        "cutoff",
        "status",
        "partitions_dropped",
        "rows_deleted",
        "rows_kept_by_holds",
        "started_at",
        "finished_at",
        "duration",
        "error",
        "triggered_by",
    )
    fields = readonly_fields
    change_list_template = "admin/ingest/purgerun/change_list.html"

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        """The runs, those whose worker died shown as interrupted (not left 'running')."""
        purge_runs_interrupted_mark()
        return super().changelist_view(request, extra_context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        """One run, shown as interrupted if its worker died."""
        purge_runs_interrupted_mark()
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="duration", ordering="duration_seconds")
    def duration(self, obj: PurgeRun) -> str:
        """ "7.8 ms", "2 min 3 s": not 0.007785126999920067."""
        return human_duration(obj.duration_seconds)

    @admin.display(description="partitions dropped")
    def dropped(self, obj: PurgeRun) -> int:
        return len(obj.partitions_dropped)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: PurgeRun | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: PurgeRun | None = None) -> bool:
        return False

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("run-now/", view(self.run_now_view), name="ingest_purgerun_run_now"),
            path("dry-run/", view(self.dry_run_view), name="ingest_purgerun_dry_run"),
            *super().get_urls(),
        ]

    def run_now_view(self, request: HttpRequest) -> HttpResponse:
        """Enqueue the purge on the Celery workers (POST only; platform admins).

        Viewing runs is not enough: deleting events now is a write, whoever may read.
        """
        if request.method != "POST" or not request.user.has_perm(RUN_PURGE_PERMISSION):
            raise PermissionDenied
        event_class = request.POST.get("event_class") or None
        result = purge_expired_events.delay(event_class, f"admin:{request.user.get_username()}")
        self.message_user(
            request,
            f"Purge of {event_class or 'every class'} enqueued (task {result.id}); "
            "its run appears here when it finishes.",
            messages.SUCCESS,
        )
        return redirect("admin:ingest_purgerun_changelist")

    def dry_run_view(self, request: HttpRequest) -> HttpResponse:
        """What a purge would remove now, per class (holds and overrides respected)."""
        if not request.user.has_perm("ingest.view_purgerun"):
            raise PermissionDenied
        # The counts are a full scan of each class's expired days: on the replica within
        # its lag bound (the holds they respect are read on the primary).
        classes = list(EventClass.objects.order_by("name"))
        with replica_reads() as read_from:
            previews = [(event_class, purge_preview(event_class)) for event_class in classes]
        context = {
            **self.admin_site.each_context(request),
            "title": "Purge dry run",
            "opts": self.model._meta,
            # Grouped: the classes a purge would delete from now, then the rest.
            "would_delete": [(c, p) for c, p in previews if p.eligible],
            "nothing_due": [(c, p) for c, p in previews if not p.eligible],
            "can_run": request.user.has_perm(RUN_PURGE_PERMISSION),
        }
        return annotate_response(
            TemplateResponse(request, "admin/ingest/purgerun/dry_run.html", context), read_from
        )


@admin.register(PerformanceTrend)
class PerformanceTrendAdmin(admin.ModelAdmin):
    """Per metric path: value over builds with its budget line and failures; regressions."""

    def has_view_permission(
        self, request: HttpRequest, obj: PerformanceTrend | None = None
    ) -> bool:
        """Return True for users who may view trends, or the stored events they come from."""
        return super().has_view_permission(request, obj) or request.user.has_perm(
            "ingest.view_event"
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: PerformanceTrend | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: PerformanceTrend | None = None
    ) -> bool:
        return False

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [path("", view(self.changelist_view), name="ingest_performancetrend_changelist")]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        """The trends page: the regression list, then one chart per (source, metric path)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        with replica_reads() as read_from:
            return annotate_response(self._trends(request, extra_context), read_from)

    def _trends(self, request: HttpRequest, extra_context: dict | None) -> TemplateResponse:
        source = request.GET.get("source", "")
        metric = request.GET.get("metric", "")
        series = performance_series_list(source=source or None, metric=metric)
        regressions = performance_regression_list(series=series)
        regressed = {(r.series.source, r.series.metric_path) for r in regressions}
        charts = [
            {
                "series": item,
                "svg": mark_safe(trend_chart_svg(item)),  # noqa: S308 (every value escaped)
                "regressed": (item.source, item.metric_path) in regressed,
            }
            for item in series
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Performance trends",
            "opts": self.model._meta,
            "sources": performance_source_list(),
            "source": source,
            "metric": metric,
            "charts": charts,
            "regressions": regressions,
            "baseline_builds": telemetry_settings.PERF_REGRESSION_BASELINE_BUILDS,
            "threshold_percent": telemetry_settings.PERF_REGRESSION_THRESHOLD_PERCENT,
            "max_builds": telemetry_settings.PERF_TREND_MAX_BUILDS,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/ingest/performancetrend/trends.html", context)

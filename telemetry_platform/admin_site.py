"""The platform's admin site: branded, its index is the governance home, plus violation reports.

Installed as the default site by ``telemetry_platform.admin_apps.PlatformAdminConfig``, so
every app's ``admin.site.register`` lands here unchanged.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from ingest.violations import DEFAULT_WINDOW, WINDOWS, ViolationRow, violation_list, window_buckets

from .charts import human_count, series_bars_svg, sparkline_svg
from .home import home_build

VIOLATIONS_PERMISSION = "ingest.view_ingesttally"
FILTERS = (("source", 200), ("schema", 200), ("code", 48), ("field", 200))


@dataclass(frozen=True)
class VersionShare:
    """One app version's part of a violation."""

    app_version: str
    count: int
    last_hour: int


class PlatformAdminSite(admin.AdminSite):
    """Telemetry Governance Platform admin: home, violations, then every app's pages."""

    site_header = "Telemetry Governance Platform"
    site_title = "Telemetry Governance Platform"
    index_title = "Governance home"
    # No public site lives at "/": the API documentation is the one page outside the admin.
    site_url = "/api/docs/"
    index_template = "admin/home.html"

    def get_urls(self) -> list:
        view = self.admin_view
        return [
            path("violations/", view(self.violation_list_view), name="violation_list"),
            path("violations/detail/", view(self.violation_detail_view), name="violation_detail"),
            *super().get_urls(),
        ]

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> TemplateResponse:
        """The governance home, with the usual app list below it."""
        context = {
            **self.each_context(request),
            "title": self.index_title,
            "subtitle": None,
            "app_list": self.get_app_list(request),
            "home": home_build(request.user),
            **(extra_context or {}),
        }
        request.current_app = self.name
        return TemplateResponse(request, self.index_template, context)

    # -- violations ----------------------------------------------------------------------

    def _require_violations(self, request: HttpRequest) -> None:
        if not request.user.has_perm(VIOLATIONS_PERMISSION):
            raise PermissionDenied(
                "Violation reports need the governance owner, approver or "
                "read-only auditor role (ingest.view_ingesttally)."
            )

    @staticmethod
    def _filters(request: HttpRequest) -> dict[str, str]:
        return {name: request.GET.get(name, "")[:limit].strip() for name, limit in FILTERS}

    @staticmethod
    def detail_url(row: ViolationRow) -> str:
        """The drill-down page of one (source, schema, code, field path)."""
        query = urlencode(
            {
                "source": row.source,
                "schema": row.schema_name,
                "code": row.code,
                "field": row.field_path,
            }
        )
        return f"{reverse('admin:violation_detail')}?{query}"

    def violation_list_view(self, request: HttpRequest) -> HttpResponse:
        """Rejections per source, schema, code, field path and app version in a window."""
        self._require_violations(request)
        window = request.GET.get("window", DEFAULT_WINDOW)
        if window not in WINDOWS:
            window = DEFAULT_WINDOW
        filters = self._filters(request)
        now = datetime.now(UTC)
        rows = violation_list(
            window=window,
            now=now,
            source=filters["source"],
            schema=filters["schema"],
            code=filters["code"],
            field_path=filters["field"],
        )
        _, unit, _ = window_buckets(window, now)
        table = [
            {
                "row": row,
                "count": human_count(row.count),
                "last_hour": human_count(row.last_hour),
                "spark": sparkline_svg(row.spark, label=f"per {unit}, peak {max(row.spark)}"),
                "url": self.detail_url(row),
                "field": _breakable(row.field_path),
                "schema": _breakable(row.schema_name),
            }
            for row in rows
        ]
        context = {
            **self.each_context(request),
            "title": "Violations",
            "window": window,
            "windows": list(WINDOWS),
            "unit": unit,
            "filters": filters,
            "table": table,
            "total": human_count(sum(row.count for row in rows)),
        }
        return TemplateResponse(request, "admin/violations/list.html", context)

    def violation_detail_view(self, request: HttpRequest) -> HttpResponse:
        """One (source, schema, code, field path): hourly (24 h) and daily (30 d) series and
        its app versions, with a one-line headline a client team can act on."""
        self._require_violations(request)
        filters = self._filters(request)
        now = datetime.now(UTC)
        exact = {
            "source": filters["source"],
            "schema": filters["schema"],
            "code": filters["code"],
            "field_path": filters["field"],
        }

        def matching(window: str) -> list[ViolationRow]:
            # Empty filters match anything in the selector: the page is about one
            # exact field path, so keep only rows equal on every part.
            return [
                row
                for row in violation_list(window=window, now=now, **exact)
                if (row.source, row.schema_name, row.code, row.field_path)
                == (exact["source"], exact["schema"], exact["code"], exact["field_path"])
            ]

        hourly_rows, daily_rows = matching("24h"), matching("30d")
        _, _, hours = window_buckets("24h", now)
        _, _, days = window_buckets("30d", now)
        hourly = _summed(hourly_rows, len(hours))
        daily = _summed(daily_rows, len(days))
        versions: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for row in daily_rows:
            versions[row.app_version][0] += row.count
        for row in hourly_rows:
            versions[row.app_version][1] += row.last_hour
        shares = sorted(
            (VersionShare(version, total, last) for version, (total, last) in versions.items()),
            key=lambda share: (-share.last_hour, -share.count, share.app_version),
        )
        last_hour = sum(row.last_hour for row in hourly_rows)
        context = {
            **self.each_context(request),
            "title": "Violation",
            "filters": filters,
            "headline": _headline(filters, last_hour, shares),
            "last_hour": f"{last_hour:,}",
            "last_day": f"{sum(hourly):,}",
            "last_30_days": f"{sum(daily):,}",
            "hourly_chart": series_bars_svg(hourly, hours, unit="hour"),
            "daily_chart": series_bars_svg(daily, days, unit="day"),
            "versions": shares,
            "list_url": reverse("admin:violation_list"),
        }
        return TemplateResponse(request, "admin/violations/detail.html", context)


def _breakable(name: str) -> str:
    """A dotted name that may wrap after its dots (never inside a word)."""
    return format_html_join(mark_safe(".<wbr>"), "{}", ((part,) for part in name.split(".")))


def _summed(rows: list[ViolationRow], length: int) -> list[int]:
    total = [0] * length
    for row in rows:
        for index, value in enumerate(row.spark):
            total[index] += value
    return total


def _headline(filters: dict[str, str], last_hour: int, shares: list[VersionShare]) -> str:
    """e.g. "reconnect.attempt: invalid_type, 1,204 in the last hour from web-shell 1.2.0"."""
    subject = filters["field"] or filters["schema"]
    sender = filters["source"]
    recent = [share for share in shares if share.last_hour] or shares
    if len(recent) == 1 and recent[0].app_version:
        sender = f"{sender} {recent[0].app_version}"
    elif len(recent) > 1:
        sender = f"{sender} ({len(recent)} app versions)"
    return f"{subject}: {filters['code']}, {last_hour:,} in the last hour from {sender}"

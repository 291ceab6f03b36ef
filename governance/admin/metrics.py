"""Admin of the metric catalogue, and the alert-rule / dashboard conformance report."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from ..conformance import check_files
from ..metric_plans import MetricDefinitionError
from ..models import MetricDefinition
from ..ports import metric_catalogue
from ..services import metric_definition_check, metric_definition_save
from .denied import denied


class MetricDefinitionForm(forms.ModelForm):
    class Meta:
        model = MetricDefinition
        fields = (
            "name",
            "kind",
            "schema",
            "help",
            "labels",
            "value_field",
            "only_when",
            "buckets",
            "max_series",
            "enabled",
        )

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        candidate = MetricDefinition(pk=self.instance.pk, **data)
        try:
            metric_definition_check(candidate)
        except MetricDefinitionError as exc:
            raise forms.ValidationError(exc.errors) from None
        return data


class ConformanceForm(forms.Form):
    file = forms.FileField(
        help_text="A Prometheus rules file (or PrometheusRule) or a Grafana dashboard JSON."
    )
    allow_missing = forms.CharField(
        required=False, help_text="Comma-separated metric names known to be pre-wired."
    )


@admin.register(MetricDefinition)
class MetricDefinitionAdmin(admin.ModelAdmin):
    form = MetricDefinitionForm
    list_display = ("name", "kind", "schema", "max_series", "enabled", "updated_at")
    list_filter = ("kind", "enabled", "schema")
    change_list_template = "admin/governance/metricdefinition/change_list.html"

    def save_model(self, request: HttpRequest, obj: MetricDefinition, form, change: bool) -> None:
        metric_definition_save(definition=obj, actor=request.user)

    def get_urls(self) -> list:
        return [
            path(
                "conformance/",
                self.admin_site.admin_view(self.conformance_view),
                name="governance_metricdefinition_conformance",
            ),
            *super().get_urls(),
        ]

    def conformance_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a rules or dashboard file and see which metrics nothing emits."""
        if not request.user.has_perm("governance.view_metricdefinition"):
            raise denied("governance.view_metricdefinition")
        form = ConformanceForm(request.POST or None, request.FILES or None)
        report = None
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            allowed = [
                n.strip() for n in form.cleaned_data["allow_missing"].split(",") if n.strip()
            ]
            suffix = (
                Path(upload.name).suffix
                if Path(upload.name).suffix in (".json", ".yaml", ".yml")
                else ".yaml"
            )
            with tempfile.TemporaryDirectory() as directory:
                target = Path(directory) / f"upload{suffix}"
                target.write_bytes(upload.read(5 * 1024 * 1024))
                report = check_files([target], metric_catalogue(), allow_missing=allowed)
                text = report.as_text().replace(str(target), upload.name)
            report = {"text": text, "exit_code": report.exit_code()}
        context = {
            **self.admin_site.each_context(request),
            "title": "Conformance check",
            "opts": self.model._meta,
            "form": form,
            "report": report,
        }
        return TemplateResponse(
            request, "admin/governance/metricdefinition/conformance.html", context
        )

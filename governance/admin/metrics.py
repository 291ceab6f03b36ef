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


class LabelLinesField(forms.CharField):
    """Labels as ``label = source`` lines (``surface = field:surface``), not raw JSON."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 60, "placeholder": "surface = field:surface"})

    def prepare_value(self, value: object) -> str:
        if isinstance(value, list):
            return "\n".join(
                f"{item.get('label', '')} = {item.get('source', '')}"
                for item in value
                if isinstance(item, dict)
            )
        return "" if value is None else str(value)

    def to_python(self, value: object) -> list[dict[str, str]]:
        text = super().to_python(value) or ""
        labels = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            label, sep, source = line.partition("=")
            if not sep or not label.strip() or not source.strip():
                raise forms.ValidationError(
                    f"line {number}: write it as label = source (e.g. surface = field:surface)"
                )
            labels.append({"label": label.strip(), "source": source.strip()})
        return labels


class BucketsField(forms.CharField):
    """Histogram bounds as comma-separated numbers (``0.005, 0.01, 0.1, 1``)."""

    widget = forms.TextInput(attrs={"size": 60, "placeholder": "0.005, 0.01, 0.1, 1, 10"})

    def prepare_value(self, value: object) -> str:
        if isinstance(value, list):
            return ", ".join(
                f"{bound:g}" if isinstance(bound, float) else str(bound) for bound in value
            )
        return "" if value is None else str(value)

    def to_python(self, value: object) -> list[float]:
        text = super().to_python(value) or ""
        bounds = []
        for part in (piece.strip() for piece in text.replace(";", ",").split(",")):
            if not part:
                continue
            try:
                bounds.append(float(part))
            except ValueError:
                raise forms.ValidationError(f"{part!r} is not a number") from None
        if bounds != sorted(set(bounds)):
            raise forms.ValidationError("bucket bounds must increase, without repeats")
        return bounds


class MetricDefinitionForm(forms.ModelForm):
    labels = LabelLinesField(
        required=False,
        help_text="One label a line: label = source (oneof:FIELD or field:PATH).",
    )
    buckets = BucketsField(required=False, help_text="Histogram: bucket upper bounds.")

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
                checked = check_files([target], metric_catalogue(), allow_missing=allowed)
                text = checked.as_text().replace(str(target), upload.name)
            report = {
                "text": text,
                "exit_code": checked.exit_code(),
                **conformance_rows(checked, upload.name, str(target)),
            }
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


def conformance_rows(report, display: str, path: str) -> dict:
    """The report as a per-rule table: failing rules with status, then a summary."""
    rows = [
        {
            "status": "missing",
            "kind": finding.kind,
            "name": finding.name,
            "detail": "not emitted: " + ", ".join(finding.metrics),
        }
        for finding in report.missing
    ]
    rows += [
        {
            "status": "error",
            "kind": error.kind or "file",
            "name": error.name or display,
            "detail": error.message.replace(path, display),
        }
        for error in report.errors
    ]
    rows += [
        {
            "status": "unresolved",
            "kind": item.kind,
            "name": item.name,
            "detail": "metric name not fixed: " + ", ".join(item.selectors),
        }
        for item in report.unresolvable
    ]
    failing = {(row["kind"], row["name"]) for row in rows if row["status"] != "unresolved"}
    return {
        "rows": rows,
        "checked": report.checked,
        "passing": max(report.checked - len(failing), 0),
        "failing": len(failing),
    }

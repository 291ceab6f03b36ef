"""Admin of field policies: per-revision editor, coverage report, policy-as-code, scanners."""

from __future__ import annotations

from dataclasses import asdict

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from ..choices import ChangeKind, Classification, RedactionAction, RevisionStatus, ScanAction
from ..forms import json_object_parse
from ..models import FieldPolicy, ScannerRule, SchemaRevision
from ..policies import PolicyDocumentError, policy_yaml_dump, policy_yaml_parse
from ..redaction import PolicySpec
from ..scanners import validate_custom_pattern
from ..selectors import field_policy_specs, policy_coverage, revision_leaf_paths
from ..services import ChangeRequestError, policy_document_propose
from .denied import denied
from .preview import redaction_preview
from .workflow import (
    PROPOSE,
    ChangeReasonField,
    ProposeThroughChangeRequest,
    change_request_url,
    propose,
)


class FieldPolicyRowForm(forms.Form):
    path = forms.CharField(widget=forms.HiddenInput)
    classification = forms.ChoiceField(
        choices=[("", "— unclassified —"), *Classification.choices], required=False
    )
    action = forms.ChoiceField(choices=[("", "—"), *RedactionAction.choices], required=False)
    keep_chars = forms.IntegerField(min_value=0, max_value=64, required=False)
    scan = forms.BooleanField(required=False)

    def clean(self) -> dict:
        data = super().clean()
        if bool(data.get("classification")) != bool(data.get("action")):
            raise forms.ValidationError("set both classification and action, or neither")
        return data


FieldPolicyFormSet = forms.formset_factory(FieldPolicyRowForm, extra=0)


class ReasonForm(forms.Form):
    change_reason = ChangeReasonField()


class PolicyYamlForm(forms.Form):
    document = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 16, "cols": 90, "style": "font-family:monospace"}),
        required=False,
        help_text="schema: NAME / fields: {path: {classification, action, keep_chars, scan}}",
    )
    file = forms.FileField(required=False, help_text="…or upload the YAML file.")
    change_reason = ChangeReasonField()

    def clean(self) -> dict:
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            try:
                data["document"] = upload.read(1024 * 1024).decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError("the file is not UTF-8 text") from None
        if not data.get("document"):
            raise forms.ValidationError("paste a policy document or upload one")
        return data


@admin.register(FieldPolicy)
class FieldPolicyAdmin(admin.ModelAdmin):
    change_list_template = "admin/tgp/change_list_fit.html"
    list_display = (
        "revision",
        "path",
        "classification",
        "action",
        "scan",
        "updated_at",
        "updated_by",
    )
    list_filter = ("classification", "action", "revision__schema")
    search_fields = ("path", "revision__schema__name")
    list_select_related = ("revision__schema", "updated_by")
    readonly_fields = (
        "revision",
        "path",
        "classification",
        "action",
        "keep_chars",
        "scan",
        "updated_at",
        "updated_by",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # policies are edited per revision, where every field is listed

    def has_change_permission(self, request: HttpRequest, obj: FieldPolicy | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: FieldPolicy | None = None) -> bool:
        return False

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path(
                "edit/<int:revision_id>/", view(self.edit_view), name="governance_fieldpolicy_edit"
            ),
            path(
                "export/<int:revision_id>/",
                view(self.export_view),
                name="governance_fieldpolicy_export",
            ),
            path("apply/", view(self.apply_view), name="governance_fieldpolicy_apply"),
            path("coverage/", view(self.coverage_view), name="governance_fieldpolicy_coverage"),
            *super().get_urls(),
        ]

    def _require(self, request: HttpRequest, permission: str) -> None:
        if not request.user.has_perm(f"governance.{permission}"):
            raise denied(f"governance.{permission}")

    def _context(self, request: HttpRequest, title: str, **extra: object) -> dict:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            **extra,
        }

    def edit_view(self, request: HttpRequest, revision_id: int) -> HttpResponse:
        """Every field of the revision with its classification and action, editable."""
        self._require(request, "view_fieldpolicy")
        revision = get_object_or_404(
            SchemaRevision.objects.select_related("schema"), pk=revision_id
        )
        current = field_policy_specs(revision)
        initial = [
            {
                "path": leaf,
                "classification": current[leaf].classification if leaf in current else "",
                "action": current[leaf].action if leaf in current else "",
                "keep_chars": current[leaf].keep_chars if leaf in current else None,
                "scan": current[leaf].scan if leaf in current else False,
            }
            for leaf in revision_leaf_paths(revision)
        ]
        formset = FieldPolicyFormSet(request.POST or None, initial=initial)
        reason_form = ReasonForm(request.POST or None)
        if request.method == "POST":
            if not request.user.has_perm(PROPOSE):
                raise PermissionDenied
            if formset.is_valid() and reason_form.is_valid():
                wanted = {
                    row["path"]: PolicySpec(
                        row["classification"], row["action"], row["keep_chars"], row["scan"]
                    )
                    for row in formset.cleaned_data
                }
                changed = {
                    path: (asdict(spec) if spec.classification else None)
                    for path, spec in wanted.items()
                    if current.get(path) != (spec if spec.classification else None)
                }
                if not changed:
                    messages.info(request, "Nothing changed.")
                    return redirect("admin:governance_fieldpolicy_edit", revision.pk)
                change_request = propose(
                    request,
                    kind=ChangeKind.FIELD_POLICIES,
                    target=f"schema:{revision.schema.name}",
                    payload={str(revision.version): changed},
                    reason=reason_form.cleaned_data["change_reason"],
                )
                if change_request is not None:
                    return redirect(change_request_url(change_request))
        context = self._context(
            request,
            f"Field policies of {revision}",
            revision=revision,
            formset=formset,
            # A list, not a zip: the template counts the rows before iterating them.
            rows=list(zip(initial, formset.forms, strict=True)),
            unclassified=sum(1 for row in initial if not row["classification"]),
            reason_form=reason_form,
            can_propose=request.user.has_perm(PROPOSE),
        )
        return TemplateResponse(request, "admin/governance/fieldpolicy/edit.html", context)

    def export_view(self, request: HttpRequest, revision_id: int) -> HttpResponse:
        """Download the revision's policies as policy-as-code YAML."""
        self._require(request, "view_fieldpolicy")
        revision = get_object_or_404(
            SchemaRevision.objects.select_related("schema"), pk=revision_id
        )
        text = policy_yaml_dump(revision.schema.name, field_policy_specs(revision))
        response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="{revision.schema.name}.v{revision.version}.policy.yaml"'
        )
        return response

    def apply_view(self, request: HttpRequest) -> HttpResponse:
        """Propose a policy-as-code document for review, as `manage.py apply_policy` does."""
        if not request.user.has_perm(PROPOSE):
            raise denied(PROPOSE)
        form = PolicyYamlForm(request.POST or None, request.FILES or None)
        errors: list[str] = []
        if request.method == "POST" and form.is_valid():
            try:
                document = policy_yaml_parse(form.cleaned_data["document"])
                change_request = policy_document_propose(
                    document=document,
                    reason=form.cleaned_data["change_reason"],
                    actor=request.user,
                )
            except PolicyDocumentError as exc:
                errors = exc.errors
            except ChangeRequestError as exc:
                errors = [exc.message]
            else:
                messages.success(
                    request,
                    f"Change request #{change_request.pk} submitted: {change_request.summary}. "
                    "It applies once someone else approves it.",
                )
                return redirect(change_request_url(change_request))
        context = self._context(
            request, "Propose a policy document", form=form, errors=errors, changes=None
        )
        return TemplateResponse(request, "admin/governance/fieldpolicy/apply.html", context)

    def coverage_view(self, request: HttpRequest) -> HttpResponse:
        """Unclassified fields of every live revision (they are dropped or rejected at ingest)."""
        self._require(request, "view_fieldpolicy")
        revisions = (
            SchemaRevision.objects.exclude(status=RevisionStatus.RETIRED)
            .select_related("schema")
            .order_by("schema__name", "version")
        )
        report = []
        for revision in revisions:
            missing = policy_coverage(revision)
            total = len(revision_leaf_paths(revision))
            report.append(
                {
                    "revision": revision,
                    "missing": missing,
                    "total": total,
                    "edit_url": reverse("admin:governance_fieldpolicy_edit", args=[revision.pk]),
                }
            )
        context = self._context(request, "Classification coverage", report=report)
        return TemplateResponse(request, "admin/governance/fieldpolicy/coverage.html", context)


class ScannerRuleForm(forms.ModelForm):
    change_reason = ChangeReasonField()

    class Meta:
        model = ScannerRule
        fields = ("name", "pattern", "action", "replacement", "keep_chars", "enabled")

    def clean_pattern(self) -> str:
        pattern = self.cleaned_data["pattern"]
        try:
            validate_custom_pattern(pattern)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return pattern


class PreviewForm(forms.Form):
    schema = forms.ModelChoiceField(
        queryset=SchemaRevision.objects.exclude(status=RevisionStatus.RETIRED).select_related(
            "schema"
        ),
        help_text="The revision whose policies apply.",
    )
    sample = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "cols": 90, "style": "font-family:monospace"}),
        help_text="A sample event (proto3 JSON). It is used for this preview only: never stored.",
    )
    pattern = forms.CharField(required=False, help_text="Optional: a candidate rule to try.")
    action = forms.ChoiceField(choices=ScanAction.choices, initial=ScanAction.REPLACE)

    def clean_sample(self) -> dict:
        return json_object_parse(self.cleaned_data["sample"])

    def clean_pattern(self) -> str:
        pattern = self.cleaned_data["pattern"]
        if pattern:
            try:
                validate_custom_pattern(pattern)
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from None
        return pattern


@admin.register(ScannerRule)
class ScannerRuleAdmin(ProposeThroughChangeRequest, admin.ModelAdmin):
    """Rules are proposed here and take effect when a second person approves them."""

    form = ScannerRuleForm
    list_display = ("name", "pattern", "action", "enabled", "updated_at")
    list_filter = ("enabled", "action")
    fields = ("name", "pattern", "action", "replacement", "keep_chars", "enabled", "change_reason")

    def get_readonly_fields(self, request: HttpRequest, obj: ScannerRule | None = None) -> tuple:
        return ("name",) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: ScannerRule | None = None) -> bool:
        return False  # disable it through a change request instead

    def change_request_for(
        self, request: HttpRequest, obj: ScannerRule, form, change: bool
    ) -> tuple[str, str, dict]:
        """The rule's proposed settings, keyed by its name."""
        payload = {
            key: getattr(obj, key)
            for key in ("pattern", "action", "replacement", "keep_chars", "enabled")
        }
        return ChangeKind.SCANNER_RULE, f"scanner_rule:{obj.name}", payload

    def get_urls(self) -> list:
        return [
            path(
                "preview/",
                self.admin_site.admin_view(self.preview_view),
                name="governance_scannerrule_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """Before/after of a sample event under the current policies (plus a candidate rule)."""
        if not request.user.has_perm("governance.view_scannerrule"):
            raise denied("governance.view_scannerrule")
        form = PreviewForm(request.POST or None)
        result = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            result = redaction_preview(
                revision=data["schema"],
                sample=data["sample"],
                candidate_pattern=data["pattern"],
                candidate_action=data["action"],
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Redaction preview",
            "opts": self.model._meta,
            "form": form,
            "result": result,
        }
        return TemplateResponse(request, "admin/governance/scannerrule/preview.html", context)

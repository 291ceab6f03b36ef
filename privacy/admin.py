"""Data-subject requests in the admin: create from raw identifiers, list, detail, approve,
certificate and export downloads. Raw identifiers are hashed in the form's memory only."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from .exports import EXPORT_FORMATS, export_lines
from .identifiers import IDENTIFIER_KINDS
from .models import SubjectRequest
from .selectors import subject_events_export, subject_summary
from .services import (
    APPROVE_PERMISSION,
    SUBMIT_PERMISSION,
    SubjectRequestError,
    subject_request_approve,
    subject_request_download_record,
    subject_request_reject,
    subject_request_submit,
)

VIEW_PERMISSION = "privacy.view_subjectrequest"
Kind = SubjectRequest.Kind
Status = SubjectRequest.Status


class SubjectRequestForm(forms.Form):
    """A new request: its kind, the subject's raw identifiers (one per line), why."""

    kind = forms.ChoiceField(
        choices=[(kind.value, kind.label) for kind in (Kind.ACCESS, Kind.ERASURE, Kind.SUPPRESSION)]
    )
    user_id = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    email = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    device_id = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    session_id = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    org_id = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    reason = forms.CharField(max_length=300)
    ticket = forms.CharField(max_length=100, required=False)

    def identifiers(self) -> dict[str, list[str]]:
        """The identifiers given, per kind, one per non-empty line."""
        given: dict[str, list[str]] = {}
        for kind in IDENTIFIER_KINDS:
            values = [line for line in self.cleaned_data.get(kind, "").splitlines() if line.strip()]
            if values:
                given[kind] = values
        return given

    def without_identifiers(self) -> SubjectRequestForm:
        """An unbound copy keeping kind, reason and ticket: the raw values are never sent
        back to the browser, even to correct a mistake."""
        data = self.data
        return SubjectRequestForm(
            initial={name: data.get(name, "") for name in ("kind", "reason", "ticket")}
        )


@admin.register(SubjectRequest)
class SubjectRequestAdmin(admin.ModelAdmin):
    """Privacy officers see and act on requests; other staff (analysts) only see that a
    request exists: its number, kind, state and date, never hashes or identifiers."""

    add_template = "admin/privacy/subjectrequest/add.html"
    detail_template = "admin/privacy/subjectrequest/detail.html"
    list_filter = ("kind", "status")
    actions = None
    ordering = ("-created_at",)

    # Access.

    def _is_officer(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.has_perm(VIEW_PERMISSION)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request: HttpRequest, obj: SubjectRequest | None = None) -> bool:
        """Return True for the list to any staff member, for one request to officers only."""
        if obj is None:
            return request.user.is_active and request.user.is_staff
        return self._is_officer(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.has_perm(SUBMIT_PERMISSION)

    def has_change_permission(
        self, request: HttpRequest, obj: SubjectRequest | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: SubjectRequest | None = None
    ) -> bool:
        return False

    def _officer_or_403(self, request: HttpRequest) -> None:
        if not self._is_officer(request):
            raise PermissionDenied

    # The list.

    def get_list_display(self, request: HttpRequest) -> tuple:
        if self._is_officer(request):
            return (
                "__str__",
                "kind",
                "status",
                "identifiers_given",
                "ticket",
                "requested_by",
                "approved_by",
                "progress",
                "created_at",
            )
        return ("number", "kind", "status", "created_at")

    def get_list_display_links(self, request: HttpRequest, list_display) -> tuple | None:
        return ("__str__",) if self._is_officer(request) else None

    def get_list_filter(self, request: HttpRequest) -> tuple:
        return self.list_filter

    def get_queryset(self, request: HttpRequest) -> QuerySet[SubjectRequest]:
        return super().get_queryset(request).select_related("requested_by", "approved_by")

    @admin.display(description="request")
    def number(self, obj: SubjectRequest) -> str:
        return f"#{obj.pk}"

    @admin.display(description="identifiers given")
    def identifiers_given(self, obj: SubjectRequest) -> str:
        return ", ".join(obj.identifier_kinds)

    @admin.display(description="erasure progress")
    def progress(self, obj: SubjectRequest) -> str:
        return erasure_progress(obj)["text"]

    # Pages.

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<int:object_id>/approve/",
                view(self.approve_view),
                name="{}_{}_approve".format(*info),
            ),
            path(
                "<int:object_id>/reject/", view(self.reject_view), name="{}_{}_reject".format(*info)
            ),
            path("<int:object_id>/lift/", view(self.lift_view), name="{}_{}_lift".format(*info)),
            path(
                "<int:object_id>/certificate/",
                view(self.certificate_view),
                name="{}_{}_certificate".format(*info),
            ),
            path(
                "<int:object_id>/export.<str:export_format>",
                view(self.export_view),
                name="{}_{}_export".format(*info),
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

    def _detail_url(self, obj: SubjectRequest) -> str:
        return reverse("admin:privacy_subjectrequest_change", args=[obj.pk])

    @method_decorator(sensitive_post_parameters(*IDENTIFIER_KINDS))
    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None):
        """The new-request form; the identifiers are hashed by the service and dropped."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = SubjectRequestForm(request.POST or None)
        error: dict[str, str] | None = None
        if request.method == "POST":
            if form.is_valid():
                try:
                    created = subject_request_submit(
                        kind=form.cleaned_data["kind"],
                        identifiers=form.identifiers(),
                        reason=form.cleaned_data["reason"],
                        ticket=form.cleaned_data["ticket"],
                        actor=request.user,
                    )
                except SubjectRequestError as exc:
                    error = {"field": exc.field, "message": exc.message}
                else:
                    self.message_user(request, f"{created} recorded.", messages.SUCCESS)
                    return HttpResponseRedirect(self._detail_url(created))
            else:
                field = next(iter(form.errors))
                error = {"field": field, "message": "invalid or missing"}
            form = form.without_identifiers()
        context = {
            **self._context(request, "New data-subject request"),
            "form": form,
            "error": error,
            "identifier_fields": [form[name] for name in IDENTIFIER_KINDS],
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.add_template, context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ):
        """The request: its state, erasure progress, what is stored of the subject now
        (counts per class and schema, oldest/newest, holds) and what can be done next."""
        self._officer_or_403(request)
        obj = get_object_or_404(
            SubjectRequest.objects.select_related("requested_by", "approved_by", "lifts"),
            pk=object_id,
        )
        user = request.user
        needs_review = obj.kind in (Kind.ERASURE, Kind.SUPPRESSION_LIFT)
        proposed = obj.status == Status.PROPOSED
        context = {
            **self._context(request, str(obj)),
            "original": obj,
            "summary": subject_summary(obj),
            "progress": erasure_progress(obj),
            "hash_count": len(obj.subject_hashes),
            "can_approve": needs_review
            and proposed
            and user.has_perm(APPROVE_PERMISSION)
            and obj.requested_by_id != user.pk,
            "waiting_for_another": needs_review and proposed and obj.requested_by_id == user.pk,
            "can_reject": proposed
            and (user.has_perm(APPROVE_PERMISSION) or obj.requested_by_id == user.pk),
            "can_lift": obj.suppressed_at is not None
            and obj.suppression_lifted_at is None
            and not obj.lifted_by.filter(status=Status.PROPOSED).exists()
            and user.has_perm(SUBMIT_PERMISSION),
            "export_formats": list(EXPORT_FORMATS) if obj.kind == Kind.ACCESS else [],
            "certificate_json": json.dumps(obj.certificate, indent=2, sort_keys=True)
            if obj.certificate
            else "",
        }
        return TemplateResponse(request, self.detail_template, context)

    def _act(self, request: HttpRequest, object_id: int, action) -> HttpResponse:
        self._officer_or_403(request)
        obj = get_object_or_404(SubjectRequest, pk=object_id)
        try:
            done = action(obj)
        except SubjectRequestError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(self._detail_url(obj))
        self.message_user(request, f"{done}.", messages.SUCCESS)
        return HttpResponseRedirect(self._detail_url(done))

    @method_decorator(require_POST)
    def approve_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Approve a proposed erasure or lift (four eyes: the service refuses the requester)."""
        return self._act(
            request,
            object_id,
            lambda obj: subject_request_approve(request=obj, actor=request.user),
        )

    @method_decorator(require_POST)
    def reject_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Refuse (or, for the requester, withdraw) a proposed request."""
        return self._act(
            request, object_id, lambda obj: subject_request_reject(request=obj, actor=request.user)
        )

    @method_decorator(require_POST)
    def lift_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Propose lifting a suppression in force; another officer approves it."""
        reason = request.POST.get("reason", "").strip() or "suppression lift"
        return self._act(
            request,
            object_id,
            lambda obj: subject_request_submit(
                kind=Kind.SUPPRESSION_LIFT,
                identifiers=None,
                reason=reason,
                actor=request.user,
                lifts=obj,
            ),
        )

    def certificate_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The erasure certificate with its keyed digest, as a JSON download; recorded."""
        self._officer_or_403(request)
        obj = get_object_or_404(SubjectRequest, pk=object_id, certificate__isnull=False)
        subject_request_download_record(request=obj, actor=request.user, what="certificate")
        body = json.dumps(
            {"certificate": obj.certificate, "digest": obj.certificate_digest},
            indent=2,
            sort_keys=True,
        )
        response = HttpResponse(body, content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="certificate-{obj.pk}.json"'
        return response

    def export_view(self, request: HttpRequest, object_id: int, export_format: str):
        """An access request's export: every stored event of the subject, streamed; recorded."""
        self._officer_or_403(request)
        if export_format not in EXPORT_FORMATS:
            return HttpResponse("export format: jsonl or csv", status=400)
        obj = get_object_or_404(SubjectRequest, pk=object_id, kind=Kind.ACCESS)
        subject_request_download_record(
            request=obj, actor=request.user, what=f"export.{export_format}"
        )
        rows = subject_events_export(list(obj.subject_hashes))
        response = StreamingHttpResponse(
            export_lines(rows, export_format), content_type=EXPORT_FORMATS[export_format]
        )
        response["Content-Disposition"] = f'attachment; filename="subject-{obj.pk}.{export_format}"'
        return response


def erasure_progress(obj: SubjectRequest) -> dict:
    """Rows erased of those found when the erasure started, for the list and the page."""
    if obj.kind != Kind.ERASURE:
        return {"text": "", "erased": 0, "found": 0, "percent": None}
    found = sum(sum(days.values()) for days in (obj.counts_before or {}).values())
    if obj.started_at is None:
        return {"text": "not started", "erased": 0, "found": 0, "percent": None}
    percent = 100 if found == 0 else min(100, round(100 * obj.rows_erased / found))
    return {
        "text": f"{obj.rows_erased} of {found} rows ({percent}%)",
        "erased": obj.rows_erased,
        "found": found,
        "percent": percent,
    }

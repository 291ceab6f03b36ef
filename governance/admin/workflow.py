"""Admin of the four-eyes workflow: change requests, policy history, the review pages.

Policy edits elsewhere in the admin (field policies, scanner rules, retention, legal
holds, lifecycle) become change requests through ``ProposeThroughChangeRequest``; they
take effect only when a second person approves and applies them here.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from telemetry_platform.conf import telemetry_settings

from ..choices import OPEN_CHANGE_STATUSES, ChangeKind, ChangeStatus
from ..forms import json_object_parse
from ..models import ChangeRequest, EventClass, PolicyVersion, Schema
from ..ports import purge_preview
from ..reviews import (
    change_request_preview,
    policy_history,
    policy_review_matrix,
    policy_review_status,
    proposed_specs,
    schema_target,
)
from ..services import (
    ChangeRequestError,
    change_diff,
    change_request_apply,
    change_request_approve,
    change_request_draft,
    change_request_rebase,
    change_request_reject,
    change_request_restore,
    change_request_submit,
    change_request_withdraw,
    policy_review_mark,
    stale_reason,
)
from .denied import denied
from .jsondiff import json_diff
from .preview import redaction_preview

PROPOSE = "governance.propose_changerequest"
APPROVE = "governance.approve_changerequest"
APPLY = "governance.apply_changerequest"
REVIEW = "governance.review_policy"


def change_request_url(change_request: ChangeRequest) -> str:
    return reverse("admin:governance_changerequest_detail", args=[change_request.pk])


def propose(
    request: HttpRequest, *, kind: str, target: str, payload: Any, reason: str
) -> ChangeRequest | None:
    """Create a submitted change request from an admin form; report the outcome as a message."""
    try:
        change_request = change_request_draft(
            kind=kind, target=target, payload=payload, reason=reason, actor=request.user
        )
    except ChangeRequestError as exc:
        messages.error(request, f"Not proposed: {exc.message}")
        return None
    messages.success(
        request,
        f"Change request #{change_request.pk} submitted: {change_request.summary}. "
        "It applies once someone else approves it.",
    )
    return change_request


class ChangeReasonField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", "Reason for this change")
        kwargs.setdefault("help_text", "Reviewers and the history see this.")
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 2, "cols": 80}))
        kwargs.setdefault("max_length", 2000)
        super().__init__(**kwargs)


class ProposeThroughChangeRequest:
    """A ModelAdmin whose saves become submitted change requests instead of writes.

    Subclasses implement ``change_request_for(request, obj, form, change)`` returning
    ``(kind, target, payload)``; their form declares ``change_reason``. With
    ``propose_additions = False``, adding an object stays a plain admin save (which the
    subclass's ``save_model`` handles) and only changes are proposed.
    """

    propose_additions = True

    def change_request_for(
        self, request: HttpRequest, obj: Any, form: forms.Form, change: bool
    ) -> tuple[str, str, Any]:
        """Return (kind, target, payload) of the change the saved form asks for."""
        raise NotImplementedError

    def _proposes(self, change: bool) -> bool:
        return change or self.propose_additions

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        if not self.propose_additions:
            return super().has_add_permission(request, *args)
        return request.user.has_perm(PROPOSE)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(PROPOSE)

    def save_model(self, request: HttpRequest, obj: Any, form: forms.Form, change: bool) -> None:
        kind, target, payload = self.change_request_for(request, obj, form, change)
        request._change_request = propose(
            request,
            kind=kind,
            target=target,
            payload=payload,
            reason=form.cleaned_data.get("change_reason", ""),
        )

    def save_related(self, request: HttpRequest, form: forms.Form, formsets, change: bool) -> None:
        if self._proposes(change):
            return  # nothing is written until the change request applies
        super().save_related(request, form, formsets, change)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> None:
        if not self._proposes(change=False):
            super().log_addition(request, obj, message)  # otherwise the request is the record

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> None:
        pass

    def _after_propose(self, request: HttpRequest, fallback: str) -> HttpResponse:
        change_request = getattr(request, "_change_request", None)
        if change_request is not None:
            return HttpResponseRedirect(change_request_url(change_request))
        return HttpResponseRedirect(fallback)

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue=None) -> HttpResponse:
        if not self._proposes(change=False):
            return super().response_add(request, obj, post_url_continue)
        return self._after_propose(request, request.path)

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        return self._after_propose(request, request.path)

    change_form_template = "admin/governance/propose_change_form.html"

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict,
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        """The form's button says what it does: it proposes, it does not save."""
        context["proposes"] = self._proposes(change=not add)
        if context["proposes"]:
            context.update(show_save_and_add_another=False, show_save_and_continue=False)
        return super().render_change_form(request, context, add, change, form_url, obj)


class ReviewForm(forms.Form):
    comment = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2, "cols": 80})
    )


class SampleForm(forms.Form):
    sample = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80, "style": "font-family:monospace"}),
        help_text="A sample event (proto3 JSON) to see under both policies. Used for this "
        "page only: never stored or logged.",
    )

    def clean_sample(self) -> dict | None:
        text = self.cleaned_data["sample"].strip()
        if not text:
            return None
        return json_object_parse(text)


STEPS = {
    "submit": change_request_submit,
    "withdraw": change_request_withdraw,
    "rebase": change_request_rebase,
    "apply": change_request_apply,
}


@admin.register(ChangeRequest)
class ChangeRequestAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "summary",
        "kind",
        "status",
        "author",
        "reviewer",
        "created_at",
        "applied_at",
    )
    list_display_links = ("id", "summary")
    list_filter = ("status", "kind")
    search_fields = ("summary", "target", "reason")
    list_select_related = ("author", "reviewer")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # proposed from the policy pages

    def has_change_permission(self, request: HttpRequest, obj: ChangeRequest | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ChangeRequest | None = None) -> bool:
        return False

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path(
                "history/",
                view(self.history_index_view),
                name="governance_changerequest_history_index",
            ),
            path(
                "history/<path:target>/",
                view(self.policy_history_view),
                name="governance_changerequest_history",
            ),
            path("review/", view(self.review_due_view), name="governance_changerequest_review"),
            path(
                "review/schema/<int:schema_id>/",
                view(self.review_matrix_view),
                name="governance_changerequest_matrix",
            ),
            path(
                "<int:object_id>/", view(self.detail_view), name="governance_changerequest_detail"
            ),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, title: str, **extra: object) -> dict:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            **extra,
        }

    def _require_view(self, request: HttpRequest) -> None:
        if not self.has_view_permission(request):
            raise denied("governance.view_changerequest")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ) -> HttpResponse:
        """The changelist links here: show the request's own page."""
        if not object_id.isdigit():
            raise Http404("no such change request")
        return redirect("admin:governance_changerequest_detail", int(object_id))

    def detail_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """One change request: diff, preview, history links and the steps the user may take."""
        self._require_view(request)
        change_request = get_object_or_404(
            ChangeRequest.objects.select_related("author", "reviewer", "applied_by"), pk=object_id
        )
        review_form = ReviewForm(request.POST or None)
        sample_form = SampleForm(request.POST if "preview" in request.POST else None)
        if request.method == "POST" and "step" in request.POST:
            return self._step(request, change_request, review_form)
        user = request.user
        is_author = change_request.author_id == user.pk
        status = change_request.status
        open_states = OPEN_CHANGE_STATUSES
        stale = stale_reason(change_request) if status in open_states else ""
        sample_results = None
        if sample_form.is_bound and sample_form.is_valid() and sample_form.cleaned_data["sample"]:
            sample_results = self._sample_preview(
                change_request, sample_form.cleaned_data["sample"]
            )
        context = self._context(
            request,
            f"Change request #{change_request.pk}",
            change_request=change_request,
            diff=labelled_diff(
                change_request.kind,
                change_diff(change_request.kind, change_request.base_state, change_request.payload),
            ),
            payload_json=json.dumps(change_request.payload, indent=2, sort_keys=True),
            stale=stale,
            previews=_preview_diffs(change_request) if status in open_states else [],
            is_field_policies=change_request.kind == ChangeKind.FIELD_POLICIES,
            sample_form=sample_form,
            sample_results=sample_results,
            retention_dry_run=self._retention_dry_run(change_request)
            if status in open_states
            else None,
            review_form=review_form,
            history_url=reverse(
                "admin:governance_changerequest_history", args=[change_request.target]
            ),
            can_submit=is_author and status == ChangeStatus.DRAFT,
            can_withdraw=is_author and status in open_states,
            can_rebase=is_author and bool(stale),
            can_review=not is_author
            and user.has_perm(APPROVE)
            and status == ChangeStatus.SUBMITTED,
            can_reject=not is_author
            and user.has_perm(APPROVE)
            and status in (ChangeStatus.SUBMITTED, ChangeStatus.APPROVED),
            can_apply=user.has_perm(APPLY) and status == ChangeStatus.APPROVED,
            own_pending=is_author and status == ChangeStatus.SUBMITTED,
        )
        context["has_steps"] = self._has_steps(context)
        return TemplateResponse(request, "admin/governance/changerequest/detail.html", context)

    @staticmethod
    def _has_steps(context: dict) -> bool:
        return any(
            context[name]
            for name in (
                "can_submit",
                "can_withdraw",
                "can_rebase",
                "can_review",
                "can_reject",
                "can_apply",
                "own_pending",
            )
        )

    def _retention_dry_run(self, change_request: ChangeRequest) -> tuple | None:
        """For a class retention change: what a purge would remove now and once applied."""
        if change_request.kind != ChangeKind.CLASS_RETENTION:
            return None
        event_class = EventClass.objects.filter(
            name=change_request.target.partition(":")[2]
        ).first()
        if event_class is None:
            return None
        new_days = change_request.payload["retention_days"]
        return (
            event_class.retention_days,
            purge_preview(event_class),
            new_days,
            purge_preview(event_class, retention_days=new_days),
        )

    def _sample_preview(self, change_request: ChangeRequest, sample: dict) -> list:
        schema = Schema.objects.filter(name=change_request.target.partition(":")[2]).first()
        results = []
        for version, fields in change_request.payload.items():
            revision = schema.revisions.filter(version=int(version)).first() if schema else None
            if revision is None:
                continue
            results.append(
                (
                    revision,
                    redaction_preview(revision=revision, sample=sample),
                    redaction_preview(
                        revision=revision, sample=sample, policies=proposed_specs(revision, fields)
                    ),
                )
            )
        return results

    def _step(
        self, request: HttpRequest, change_request: ChangeRequest, review_form: ReviewForm
    ) -> HttpResponse:
        step = request.POST["step"]
        comment = review_form.data.get("comment", "")
        try:
            if step in ("approve", "approve_apply"):
                change_request = change_request_approve(
                    change_request=change_request,
                    actor=request.user,
                    comment=comment,
                    apply=step == "approve_apply",
                )
            elif step == "reject":
                change_request = change_request_reject(
                    change_request=change_request, actor=request.user, comment=comment
                )
            elif step in STEPS:
                change_request = STEPS[step](change_request=change_request, actor=request.user)
            else:
                raise ChangeRequestError("unknown_step", f"no step {step!r}")
        except ChangeRequestError as exc:
            messages.error(request, f"Refused ({exc.code}): {exc.message}")
        else:
            messages.success(
                request,
                f"Change request #{change_request.pk} is now "
                f"{change_request.get_status_display().lower()}.",
            )
        return redirect(change_request_url(change_request))

    def history_index_view(self, request: HttpRequest) -> HttpResponse:
        """Every policy target with recorded versions."""
        self._require_view(request)
        targets = (
            PolicyVersion.objects.order_by("target", "-version")
            .distinct("target")
            .values("target", "kind", "version", "created_at")
        )
        context = self._context(request, "Policy history", targets=list(targets))
        return TemplateResponse(
            request, "admin/governance/changerequest/history_index.html", context
        )

    def policy_history_view(self, request: HttpRequest, target: str) -> HttpResponse:
        """Every applied version of one policy, who proposed and approved it, and roll back."""
        self._require_view(request)
        if request.method == "POST":
            try:
                change_request = change_request_restore(
                    target=target,
                    version=int(request.POST.get("version", "-1")),
                    reason=request.POST.get("reason", ""),
                    actor=request.user,
                )
            except (ChangeRequestError, ValueError) as exc:
                messages.error(request, f"Not proposed: {getattr(exc, 'message', exc)}")
            else:
                messages.success(
                    request,
                    f"Change request #{change_request.pk} submitted: "
                    "it restores the chosen version once approved.",
                )
                return redirect(change_request_url(change_request))
        versions = policy_history(target)
        rows = [
            (
                version,
                json.dumps(version.state, indent=2, sort_keys=True),
                change_diff(version.kind, older.state if older else None, version.state)
                if version.kind != ChangeKind.FIELD_POLICIES
                else _field_versions_diff(older.state if older else None, version.state),
            )
            for version, older in zip(versions, [*versions[1:], None], strict=True)
        ]
        pending = ChangeRequest.objects.filter(
            target=target,
            status__in=OPEN_CHANGE_STATUSES,
        )
        context = self._context(
            request,
            f"History of {target}",
            target=target,
            rows=rows,
            pending=pending,
            can_propose=request.user.has_perm(PROPOSE),
        )
        return TemplateResponse(request, "admin/governance/changerequest/history.html", context)

    def review_due_view(self, request: HttpRequest) -> HttpResponse:
        """Policies with their last review; those not reviewed for N days are due."""
        self._require_view(request)
        if request.method == "POST":
            if not request.user.has_perm(REVIEW):
                raise denied(REVIEW)
            target = request.POST.get("target", "")
            known = {status.target for status in policy_review_status()}
            if target not in known:
                messages.error(request, "Unknown policy.")
            else:
                policy_review_mark(
                    target=target, actor=request.user, comment=request.POST.get("comment", "")
                )
                messages.success(request, f"{target} marked as reviewed.")
            return redirect(request.POST.get("next") or "admin:governance_changerequest_review")
        statuses = policy_review_status()
        schemas = {schema_target(s): s.pk for s in Schema.objects.all()}
        context = self._context(
            request,
            "Policy review",
            due=[(s, schemas.get(s.target)) for s in statuses if s.due],
            not_due=[(s, schemas.get(s.target)) for s in statuses if not s.due],
            review_days=telemetry_settings.POLICY_REVIEW_DAYS,
            can_review=request.user.has_perm(REVIEW),
        )
        return TemplateResponse(request, "admin/governance/changerequest/review.html", context)

    def review_matrix_view(self, request: HttpRequest, schema_id: int) -> HttpResponse:
        """Every field of a schema's live revisions: classification, action, last change and
        approver; unclassified and personal/secret fields that are kept stand out."""
        self._require_view(request)
        schema = get_object_or_404(Schema, pk=schema_id)
        target = schema_target(schema)
        status = next((s for s in policy_review_status() if s.target == target), None)
        context = self._context(
            request,
            f"Policy review: {schema.name}",
            schema=schema,
            target=target,
            matrices=policy_review_matrix(schema),
            status=status,
            can_review=request.user.has_perm(REVIEW),
            history_url=reverse("admin:governance_changerequest_history", args=[target]),
            next_url=request.path,
        )
        return TemplateResponse(request, "admin/governance/changerequest/matrix.html", context)


def _field_versions_diff(old: Any, new: Any) -> list:
    rows = []
    old = old or {}
    for version, fields in (new or {}).items():
        previous = old.get(version) or {}
        changed = {
            path: fields.get(path)
            for path in set(fields) | set(previous)
            if fields.get(path) != previous.get(path)
        }
        if changed:
            rows.extend(
                change_diff(ChangeKind.FIELD_POLICIES, {version: previous}, {version: changed})
            )
    return rows


# Human labels of the items a change request's diff names (legal holds showed raw keys).
DIFF_LABELS: dict[str, dict[str, str]] = {
    ChangeKind.LEGAL_HOLD_PLACE: {
        "reason": "Reason",
        "event_class": "Event class",
        "schema": "Schema",
        "actor_hashes": "Actor (keyed hashes of the identifier)",
        "occurred_from": "Events from",
        "occurred_to": "Events until",
        "expires_at": "Hold expires",
    },
    ChangeKind.LEGAL_HOLD_RELEASE: {"released": "Released"},
    ChangeKind.RETENTION_OVERRIDE: {"retention_days": "Retention (days)", "reason": "Reason"},
    ChangeKind.CLASS_RETENTION: {"retention_days": "Retention (days)"},
}


def labelled_diff(kind: str, rows: list) -> list[dict[str, str]]:
    """The diff rows with a human label for each item (the raw key kept as a tooltip)."""
    labels = DIFF_LABELS.get(kind, {})
    return [
        {"item": row.item, "label": labels.get(row.item, row.item), "old": row.old, "new": row.new}
        for row in rows
    ]


def _preview_diffs(change_request: ChangeRequest) -> list[tuple[Any, list[tuple[Any, Any]]]]:
    """Each stored event of the preview with a JSON diff of it as stored vs proposed."""
    return [
        (
            preview,
            [(event, json_diff(event.current, event.proposed)) for event in preview.events],
        )
        for preview in change_request_preview(change_request)
    ]

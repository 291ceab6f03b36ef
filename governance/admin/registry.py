"""Admin of the registry: event classes with retention, schemas and their revisions."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from ..choices import ChangeKind, RevisionStatus
from ..descriptors import field_catalogue
from ..forms import SchemaRegisterForm
from ..models import EventClass, Schema, SchemaRevision
from ..ports import purge_preview
from ..schemas import load_schema
from ..selectors import field_policy_specs, policy_coverage
from ..services import (
    SchemaRegistrationError,
    event_class_ensure,
    retention_limits_for,
    schema_register,
)
from .workflow import (
    PROPOSE,
    ChangeReasonField,
    ProposeThroughChangeRequest,
    change_request_url,
    propose,
)


class EventClassForm(forms.ModelForm):
    change_reason = ChangeReasonField(
        required=False, help_text="Required to change the retention: reviewers see it."
    )

    class Meta:
        model = EventClass
        fields = ("name", "retention_days", "description")

    def clean(self) -> dict:
        data = super().clean()
        name = data.get("name") or (self.instance.name if self.instance.pk else "")
        days = data.get("retention_days")
        if name and days is not None:
            low, high = retention_limits_for(name)
            if not low <= days <= high:
                self.add_error(
                    "retention_days", f"must be between {low} and {high} days for {name}"
                )
        if (
            self.instance.pk
            and days is not None
            and days != EventClass.objects.get(pk=self.instance.pk).retention_days
            and not data.get("change_reason", "").strip()
        ):
            self.add_error("change_reason", "say why the retention should change")
        return data


@admin.register(EventClass)
class EventClassAdmin(ProposeThroughChangeRequest, admin.ModelAdmin):
    """A retention change is shown with its dry run, then proposed for review."""

    form = EventClassForm
    list_display = ("name", "retention_days", "description", "updated_at")
    fields = ("name", "retention_days", "description", "change_reason")
    search_fields = ("name",)
    propose_additions = False  # a new class is the platform admin's (add permission)

    def get_readonly_fields(self, request: HttpRequest, obj: EventClass | None = None) -> tuple:
        """The name is the partition key of stored events: fixed once created."""
        return ("name",) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: EventClass | None = None) -> bool:
        return False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ) -> HttpResponse:
        """A retention change is shown with its dry run (events made eligible) before saving."""
        if request.method == "POST" and not self.has_change_permission(request):
            raise PermissionDenied  # the dry run below runs before the stock view's check
        if request.method == "POST" and "_confirm_retention" not in request.POST:
            event_class = self.get_object(request, object_id)
            # The form's validation writes the posted values onto its instance: the current
            # figures are computed from the stored row, never from the instance it changed.
            stored = EventClass.objects.get(pk=object_id)
            stored_days = stored.retention_days
            form = self.get_form(request, event_class)(request.POST, instance=event_class)
            if (
                event_class is not None
                and form.is_valid()
                and form.cleaned_data["retention_days"] != stored_days
            ):
                new_days = form.cleaned_data["retention_days"]
                context = {
                    **self.admin_site.each_context(request),
                    "title": f"Change {event_class.name} retention?",
                    "opts": self.model._meta,
                    "event_class": event_class,
                    "old_days": stored_days,
                    "new_days": new_days,
                    "current": purge_preview(stored, retention_days=stored_days),
                    "proposed": purge_preview(event_class, retention_days=new_days),
                    "posted": [
                        (k, v) for k, v in request.POST.items() if k != "csrfmiddlewaretoken"
                    ],
                }
                return TemplateResponse(
                    request, "admin/governance/eventclass/confirm_retention.html", context
                )
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: EventClass, form, change: bool) -> None:
        if not change:
            event_class_ensure(
                name=obj.name, retention_days=obj.retention_days, description=obj.description
            )
            return
        stored = EventClass.objects.get(pk=obj.pk)
        if stored.description != obj.description:
            stored.description = obj.description  # documentation, not policy: no review
            stored.save(update_fields=["description", "updated_at"])
        if stored.retention_days != obj.retention_days:
            super().save_model(request, obj, form, change)

    def change_request_for(
        self, request: HttpRequest, obj: EventClass, form, change: bool
    ) -> tuple[str, str, dict]:
        """The class's proposed retention."""
        return (
            ChangeKind.CLASS_RETENTION,
            f"event_class:{obj.name}",
            {"retention_days": obj.retention_days},
        )


def roles_list(revision: SchemaRevision) -> str:
    """The revision's envelope roles as a readable list ("actor: user.id"), not a JSON dict."""
    if not revision.roles:
        return "—"
    return format_html(
        '<ul class="roles-list">{}</ul>',
        format_html_join(
            "",
            "<li>{}: <code>{}</code></li>",
            sorted(revision.roles.items()),
        ),
    )


class SchemaRevisionInline(admin.TabularInline):
    model = SchemaRevision
    fields = ("version", "status", "message_name", "role_list", "created_at", "created_by")
    readonly_fields = fields

    @admin.display(description="roles")
    def role_list(self, obj: SchemaRevision) -> str:
        return roles_list(obj)

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Schema | None = None) -> bool:
        return False


@admin.register(Schema)
class SchemaAdmin(admin.ModelAdmin):
    list_display = ("name", "event_class", "latest_revision", "created_at")
    list_filter = ("event_class",)
    search_fields = ("name",)
    readonly_fields = ("name", "event_class", "created_at", "related_pages")
    fields = ("name", "event_class", "description", "created_at", "related_pages")
    inlines = [SchemaRevisionInline]

    @admin.display(description="policies")
    def related_pages(self, obj: Schema) -> str:
        """Where the schema's policies are edited, reviewed and traced."""
        latest = obj.revisions.order_by("-version").first()
        links = []
        if latest is not None:
            links.append(
                (reverse("admin:governance_fieldpolicy_edit", args=[latest.pk]), "Field policies")
            )
        links += [
            (reverse("admin:governance_changerequest_matrix", args=[obj.pk]), "Review matrix"),
            (
                reverse("admin:governance_changerequest_history", args=[f"schema:{obj.name}"]),
                "Policy history",
            ),
        ]
        return format_html(
            '<span id="schema-links">{}</span>',
            format_html_join(" · ", '<a href="{}">{}</a>', links),
        )

    @admin.display(description="latest revision")
    def latest_revision(self, obj: Schema) -> str:
        revision = obj.revisions.order_by("-version").first()
        return f"v{revision.version} ({revision.status})" if revision else "-"

    def has_delete_permission(self, request: HttpRequest, obj: Schema | None = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("governance.add_schemarevision")

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None):
        """Register a schema (or a new revision) from uploaded .proto files."""
        # This replaces the stock add view, so it makes the stock view's check itself.
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = SchemaRegisterForm(request.POST or None, request.FILES or None)
        registration_error = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                registered = schema_register(
                    name=data["name"],
                    proto_files=data["files"],
                    message_name=data["message"],
                    event_class=data["event_class"].name if data["event_class"] else None,
                    roles=data["roles"],
                    status=data["status"],
                    actor=request.user,
                )
            except SchemaRegistrationError as exc:
                registration_error = exc
            else:
                revision = registered.revision
                verb = "Registered" if registered.created else "Already registered:"
                self.message_user(request, f"{verb} {revision}.", messages.SUCCESS)
                self._report_annotations(request, registered)
                return redirect("admin:governance_schemarevision_change", revision.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Register a schema",
            "form": form,
            "registration_error": registration_error,
            "opts": self.model._meta,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/governance/schema/register.html", context)

    def _report_annotations(self, request: HttpRequest, registered) -> None:
        """Say which annotations applied at once (stricter) and which wait for review."""
        if registered.tightened:
            self.message_user(
                request,
                "Stricter annotations applied at once: " + ", ".join(registered.tightened) + ".",
                messages.INFO,
            )
        if not registered.withheld:
            return
        withheld = "; ".join(
            f"{w.path} {w.annotated.classification}/{w.annotated.action} "
            f"(in force: {w.in_force.classification}/{w.in_force.action})"
            for w in registered.withheld
        )
        change_request = registered.change_request
        if change_request is None:
            follow_up = "Propose them as a field policy change if they are meant."
            self.message_user(
                request,
                f"Not applied, weaker than the reviewed policy: {withheld}. {follow_up}",
                messages.WARNING,
            )
            return
        self.message_user(
            request,
            format_html(
                "Not applied, weaker than the reviewed policy: {}. Proposed for review as "
                '<a href="{}">change request #{}</a>; the reviewed policy stays in force '
                "until someone else approves it.",
                withheld,
                change_request_url(change_request),
                change_request.pk,
            ),
            messages.WARNING,
        )


@admin.register(SchemaRevision)
class SchemaRevisionAdmin(admin.ModelAdmin):
    list_display = ("schema", "version", "status", "message_name", "created_at")
    list_filter = ("status", "schema__event_class")
    search_fields = ("schema__name", "message_name")
    readonly_fields = (
        "schema",
        "version",
        "status",
        "message_name",
        "role_list",
        "created_at",
        "created_by",
        "proto_sources",
    )
    fields = readonly_fields
    actions = ["make_active", "make_deprecated", "make_retired"]
    change_form_template = "admin/governance/schemarevision/change_form.html"

    @admin.display(description="roles")
    def role_list(self, obj: SchemaRevision) -> str:
        return roles_list(obj)

    @admin.display(description=".proto sources")
    def proto_sources(self, obj: SchemaRevision) -> str:
        return format_html_join(
            "",
            "<p><strong>{}</strong></p><pre class='tgp-wrap' style='max-height:24em;"
            "overflow:auto;white-space:pre-wrap'>{}</pre>",
            sorted(obj.proto_files.items()),
        )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ):
        revision = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if revision is not None:
            compiled = load_schema(bytes(revision.descriptor_set), revision.message_name)
            roles_by_path = {path: role for role, path in revision.roles.items()}
            policies = field_policy_specs(revision)
            extra_context["catalogue"] = [
                (info, roles_by_path.get(info.path, ""), policies.get(info.path))
                for info in field_catalogue(compiled.descriptor)
            ]
            extra_context["unclassified"] = policy_coverage(revision)
        return super().change_view(request, object_id, form_url, extra_context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: SchemaRevision | None = None
    ) -> bool:
        # Revisions are immutable; the lifecycle actions below need the permission.
        return obj is None and request.user.has_perm("governance.change_schemarevision")

    def has_delete_permission(
        self, request: HttpRequest, obj: SchemaRevision | None = None
    ) -> bool:
        return False

    def _change_status(self, request: HttpRequest, queryset: QuerySet, status: str) -> None:
        """Propose the lifecycle move of each selected revision for review."""
        if not request.user.has_perm(PROPOSE):
            self.message_user(request, "You may not propose policy changes.", messages.ERROR)
            return
        for revision in queryset.select_related("schema"):
            propose(
                request,
                kind=ChangeKind.SCHEMA_STATUS,
                target=f"schema_revision:{revision.schema.name}@{revision.version}",
                payload={"status": status},
                reason=f"Move {revision} from {revision.status} to {status}",
            )

    @admin.action(description="Propose activating the selected revisions", permissions=["change"])
    def make_active(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._change_status(request, queryset, RevisionStatus.ACTIVE)

    @admin.action(description="Propose deprecating the selected revisions", permissions=["change"])
    def make_deprecated(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._change_status(request, queryset, RevisionStatus.DEPRECATED)

    @admin.action(description="Propose retiring the selected revisions", permissions=["change"])
    def make_retired(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._change_status(request, queryset, RevisionStatus.RETIRED)

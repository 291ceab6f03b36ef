"""Admin of the OTLP log mapping: routes are proposed here and apply once reviewed."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from ..choices import ChangeKind
from ..models import OtlpLogRoute, Schema
from ..services.otlp_routes import ROUTE_DEFAULTS
from .workflow import PROPOSE, ChangeReasonField, ProposeThroughChangeRequest, propose


class OtlpLogRouteForm(forms.ModelForm):
    change_reason = ChangeReasonField()

    class Meta:
        model = OtlpLogRoute
        fields = ("name", *ROUTE_DEFAULTS)

    def clean_schema_name(self) -> str:
        name = self.cleaned_data["schema_name"]
        if name and not Schema.objects.filter(name=name).exists():
            raise forms.ValidationError("No schema is registered under this name.")
        return name


@admin.register(OtlpLogRoute)
class OtlpLogRouteAdmin(ProposeThroughChangeRequest, admin.ModelAdmin):
    """Which schema an OpenTelemetry log record becomes. Adding, changing and removing a
    route are change requests: the mapping decides what is stored, like a field policy."""

    form = OtlpLogRouteForm
    list_display = (
        "name",
        "priority",
        "match_event_name",
        "match_scope",
        "match_service",
        "schema_name",
    )
    search_fields = ("name", "match_event_name", "match_scope", "schema_name")
    fields = ("name", *ROUTE_DEFAULTS, "change_reason")
    actions = ("propose_removal",)

    def get_readonly_fields(self, request: HttpRequest, obj: OtlpLogRoute | None = None) -> tuple:
        return ("name",) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: OtlpLogRoute | None = None) -> bool:
        return False  # removal is proposed (the action below), never a direct delete

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if not request.user.has_perm(PROPOSE):
            actions.pop("propose_removal", None)
        return actions

    def change_request_for(
        self, request: HttpRequest, obj: OtlpLogRoute, form: forms.Form, change: bool
    ) -> tuple[str, str, dict]:
        """The route's proposed settings, keyed by its name."""
        payload = {key: getattr(obj, key) for key in ROUTE_DEFAULTS}
        return ChangeKind.OTLP_LOG_ROUTE, f"otlp_log_route:{obj.name}", payload

    @admin.action(description="Propose removing the selected routes")
    def propose_removal(self, request: HttpRequest, queryset: QuerySet[OtlpLogRoute]) -> None:
        """One change request per route; its reason names the admin action."""
        if not request.user.has_perm(PROPOSE):
            messages.error(request, "You may not propose policy changes.")
            return
        for route in queryset:
            propose(
                request,
                kind=ChangeKind.OTLP_LOG_ROUTE,
                target=f"otlp_log_route:{route.name}",
                payload=None,
                reason=f"Removal of route {route.name} proposed from the admin list",
            )

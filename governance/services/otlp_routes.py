"""Writes of the OTLP log mapping: routes saved, deleted and seeded, each audited."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import OtlpLogRoute, Schema
from ..ports import audit_event_record
from .configuration import policy_epoch_bump

# The built-in mapping: the control service's audit logger, then everything else.
DEFAULT_ROUTES = (
    {
        "name": "control-service-audit",
        "priority": 10,
        "match_scope": "audit",
        "schema_name": "telemetry.audit_event.v1",
        "description": "Records of an 'audit' logger (scope) are audit events.",
    },
    {
        "name": "otel-log-fallback",
        "priority": 1000,
        "schema_name": "telemetry.otel_log.v1",
        "description": "Records no other route takes: the built-in OpenTelemetry log schema.",
    },
)
ROUTE_FIELDS = ("priority", "match_event_name", "match_scope", "match_service", "schema_name")
# A route's settings as a change request or a plan file carries them, with their defaults.
ROUTE_DEFAULTS: dict[str, object] = {
    "priority": 100,
    "match_event_name": "",
    "match_scope": "",
    "match_service": "",
    "schema_name": "",
    "description": "",
}


@transaction.atomic
def otlp_log_route_save(
    *,
    name: str,
    actor: AbstractBaseUser | None,
    priority: int = 100,
    match_event_name: str = "",
    match_scope: str = "",
    match_service: str = "",
    schema_name: str = "",
    description: str = "",
) -> OtlpLogRoute:
    """Create or change the route ``name``; records route by it from the next epoch read."""
    if schema_name and not Schema.objects.filter(name=schema_name).exists():
        raise ValidationError({"schema_name": "no schema is registered under this name"})
    route, created = OtlpLogRoute.objects.update_or_create(
        name=name,
        defaults={
            "priority": priority,
            "match_event_name": match_event_name,
            "match_scope": match_scope,
            "match_service": match_service,
            "schema_name": schema_name,
            "description": description,
        },
    )
    route.full_clean()
    policy_epoch_bump()
    audit_event_record(
        event_name="platform.otlp_log_route.saved",
        actor=actor,
        attributes={
            "route": name,
            "created": str(created).lower(),
            **{field: str(getattr(route, field)) for field in ROUTE_FIELDS},
        },
    )
    return route


@transaction.atomic
def otlp_log_route_delete(*, name: str, actor: AbstractBaseUser | None) -> bool:
    """Delete the route ``name``; return whether it existed."""
    deleted, _ = OtlpLogRoute.objects.filter(name=name).delete()
    if deleted:
        policy_epoch_bump()
        audit_event_record(
            event_name="platform.otlp_log_route.deleted", actor=actor, attributes={"route": name}
        )
    return bool(deleted)


def otlp_log_routes_seed(*, actor: AbstractBaseUser | None = None) -> list[str]:
    """Create the default routes that do not exist yet (never changes an existing one)."""
    changes = []
    for default in DEFAULT_ROUTES:
        if not OtlpLogRoute.objects.filter(name=default["name"]).exists():
            otlp_log_route_save(actor=actor, **default)
            changes.append(f"otlp log route {default['name']} -> {default['schema_name']}")
    return changes

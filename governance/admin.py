"""Admin for governance: event classes with retention, schemas and their revisions."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import EventClass, Schema, SchemaRevision
from .services import event_class_retention_update


@admin.register(EventClass)
class EventClassAdmin(admin.ModelAdmin):
    list_display = ("name", "retention_days", "description", "updated_at")
    fields = ("name", "retention_days", "description")
    search_fields = ("name",)

    def get_readonly_fields(self, request: HttpRequest, obj: EventClass | None = None) -> tuple:
        """The name is the partition key of stored events: fixed once created."""
        return ("name",) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: EventClass | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: EventClass, form, change: bool) -> None:
        if change:
            stored = EventClass.objects.get(pk=obj.pk)
            stored.description = obj.description
            stored.save(update_fields=["description", "updated_at"])
            event_class_retention_update(
                event_class=stored, retention_days=obj.retention_days, actor=request.user
            )
            return
        from .services import event_class_ensure

        event_class_ensure(
            name=obj.name, retention_days=obj.retention_days, description=obj.description
        )


class SchemaRevisionInline(admin.TabularInline):
    model = SchemaRevision
    fields = ("version", "status", "message_name", "roles", "created_at", "created_by")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Schema | None = None) -> bool:
        return False


@admin.register(Schema)
class SchemaAdmin(admin.ModelAdmin):
    list_display = ("name", "event_class", "created_at")
    list_filter = ("event_class",)
    search_fields = ("name",)
    readonly_fields = ("name", "event_class", "created_at")
    fields = ("name", "event_class", "description", "created_at")
    inlines = [SchemaRevisionInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Schema | None = None) -> bool:
        return False


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
        "roles",
        "proto_files",
        "created_at",
        "created_by",
    )
    exclude = ("descriptor_set",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: SchemaRevision | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: SchemaRevision | None = None
    ) -> bool:
        return False

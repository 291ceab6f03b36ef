"""Serializers of the schema registry API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from governance.choices import RevisionStatus
from governance.compatibility import Violation
from governance.descriptors import field_catalogue
from governance.models import Schema, SchemaRevision
from governance.schemas import load_schema

MAX_PROTO_BYTES = 1024 * 1024


class SchemaRegisterSerializer(serializers.Serializer):
    """Input of POST /api/v1/schemas: JSON with ``proto_files``, or multipart with ``file``."""

    name = serializers.CharField(max_length=200)
    message = serializers.CharField(max_length=300)
    event_class = serializers.CharField(max_length=48, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=RevisionStatus.choices, default=RevisionStatus.ACTIVE)
    roles = serializers.DictField(child=serializers.CharField(), required=False, default=dict)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    proto_files = serializers.DictField(
        child=serializers.CharField(allow_blank=False, trim_whitespace=False), required=False
    )
    file = serializers.ListField(child=serializers.FileField(), required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        sources = dict(attrs.pop("proto_files", None) or {})
        for upload in attrs.pop("file", None) or []:
            if upload.size > MAX_PROTO_BYTES:
                raise serializers.ValidationError({"file": f"{upload.name} is over 1 MiB"})
            try:
                sources[upload.name] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise serializers.ValidationError({"file": f"{upload.name} is not UTF-8"}) from None
        if not sources:
            raise serializers.ValidationError(
                {"file": "upload at least one .proto (multipart 'file' or JSON 'proto_files')"}
            )
        attrs["sources"] = sources
        return attrs


def violation_data(violation: Violation) -> dict[str, Any]:
    return {
        "rule": violation.rule,
        "path": violation.path,
        "old": violation.old,
        "new": violation.new,
        "against_version": violation.against_version,
        "message": violation.message,
    }


def catalogue_data(revision: SchemaRevision) -> list[dict[str, Any]]:
    compiled = load_schema(bytes(revision.descriptor_set), revision.message_name)
    return [
        {
            "path": info.path,
            "type": info.type,
            "type_name": info.type_name,
            "number": info.number,
            "label": info.label,
            "oneof": info.oneof,
            "enum_values": [name for name, _ in info.enum_values],
            "json_name": info.json_name,
        }
        for info in field_catalogue(compiled.descriptor)
    ]


class SchemaRevisionSerializer(serializers.ModelSerializer):
    schema = serializers.CharField(source="schema.name")
    event_class = serializers.CharField(source="schema.event_class_id")
    proto_files = serializers.SerializerMethodField()
    catalogue = serializers.SerializerMethodField()

    class Meta:
        model = SchemaRevision
        fields = (
            "schema",
            "event_class",
            "version",
            "status",
            "message_name",
            "roles",
            "created_at",
            "proto_files",
            "catalogue",
        )

    def get_proto_files(self, revision: SchemaRevision) -> list[str]:
        return sorted(revision.proto_files)

    def get_catalogue(self, revision: SchemaRevision) -> list[dict[str, Any]]:
        return catalogue_data(revision)


class SchemaSerializer(serializers.ModelSerializer):
    revisions = serializers.SerializerMethodField()

    class Meta:
        model = Schema
        fields = ("name", "event_class", "description", "created_at", "revisions")

    def get_revisions(self, schema: Schema) -> list[dict[str, Any]]:
        return [
            {"version": r.version, "status": r.status, "message_name": r.message_name}
            for r in schema.revisions.all()
        ]


class StatusChangeSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=RevisionStatus.choices)
    reason = serializers.CharField(max_length=2000, help_text="Why: reviewers see it.")

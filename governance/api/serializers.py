"""Serializers of the schema registry API."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.utils import extend_schema_field
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


class WithheldAnnotationSerializer(serializers.Serializer):
    path = serializers.CharField()
    annotated = serializers.DictField(help_text="The upload's annotation (not applied).")
    in_force = serializers.DictField(help_text="The reviewed policy, still in force.")
    loosening = serializers.ListField(child=serializers.CharField())


class PolicyAnnotationsSerializer(serializers.Serializer):
    """What the upload's policy annotations changed, and what waits for review."""

    applied_stricter = serializers.ListField(
        child=serializers.CharField(), help_text="Paths whose stricter annotation applied."
    )
    not_applied = WithheldAnnotationSerializer(
        many=True, help_text="Annotations weaker than the reviewed policy: not applied."
    )
    change_request = serializers.DictField(
        allow_null=True, help_text="The change request proposing them: id and state."
    )


def policy_annotations_data(registered: Any) -> dict[str, Any]:
    """The ``policy_annotations`` of a registration answer (a ``RegisteredRevision``)."""
    change_request = registered.change_request
    return {
        "applied_stricter": list(registered.tightened),
        "not_applied": [
            {
                "path": withheld.path,
                "annotated": asdict(withheld.annotated),
                "in_force": asdict(withheld.in_force),
                "loosening": list(withheld.loosening),
            }
            for withheld in registered.withheld
        ],
        "change_request": None
        if change_request is None
        else {"id": change_request.pk, "state": change_request.status},
    }


class SchemaRegisteredSerializer(SchemaRevisionSerializer):
    """The registration answer: the revision, and what its annotations could not change."""

    policy_annotations = serializers.SerializerMethodField()

    class Meta(SchemaRevisionSerializer.Meta):
        fields = (*SchemaRevisionSerializer.Meta.fields, "policy_annotations")

    @extend_schema_field(PolicyAnnotationsSerializer)
    def get_policy_annotations(self, revision: SchemaRevision) -> dict[str, Any]:
        return policy_annotations_data(self.context["registered"])


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

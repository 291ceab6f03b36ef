"""OpenAPI description of the ingest API (drf-spectacular): the wire format and every answer."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "ingest.api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "tgp_<prefix>_<secret>"}


class BrowserKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """A Bearer API key, or a publishable key in ``?api_key=`` (or a text/plain body)."""

    target_class = "ingest.api.browser.BrowserKeyAuthentication"
    name = "PublishableKey"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {"type": "apiKey", "in": "query", "name": "api_key"}

    def get_security_requirement(self, auto_schema: object) -> list[dict]:
        return [{"ApiKey": []}, {"PublishableKey": []}]


class EventItemSerializer(serializers.Serializer):
    schema = serializers.CharField(help_text="Registered schema name, or NAME@VERSION.")
    event = serializers.DictField(help_text="The event in the proto3 JSON form of the schema.")


class EventBatchRequestSerializer(serializers.Serializer):
    events = EventItemSerializer(
        many=True,
        help_text="Self-describing items; with ?schema=NAME (or top-level 'schema'), bare bodies.",
    )
    schema = serializers.CharField(required=False, help_text="Schema of bare event bodies.")


class EventResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"])
    event_id = serializers.CharField(required=False)
    code = serializers.CharField(required=False, help_text="Why it was rejected.")
    field = serializers.CharField(required=False, help_text="Path of the offending field.")
    message = serializers.CharField(required=False, help_text="Never repeats the value.")
    warnings = serializers.ListField(child=serializers.CharField(), required=False)


class BatchResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    accepted = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = EventResultSerializer(many=True)


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(required=False)


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


event_batch_schema = extend_schema(
    summary="Ingest a batch of events",
    request={
        "application/json": EventBatchRequestSerializer,
        "application/x-protobuf": OpenApiTypes.BINARY,
    },
    parameters=[
        OpenApiParameter("schema", str, description="Schema of bare event bodies / items."),
        OpenApiParameter(
            "Content-Encoding", str, OpenApiParameter.HEADER, enum=["gzip", "identity"]
        ),
        OpenApiParameter("traceparent", str, OpenApiParameter.HEADER),
        OpenApiParameter("tracestate", str, OpenApiParameter.HEADER),
        OpenApiParameter("X-Request-Id", str, OpenApiParameter.HEADER),
    ],
    responses={
        200: BatchResultSerializer,
        400: error("The request cannot be parsed at all (nothing stored)."),
        401: error("Missing, unknown, revoked or expired API key."),
        413: error("Body or batch over the limits."),
        429: error("Rate limit exceeded; see Retry-After."),
        503: error("The store is unavailable; retry after Retry-After."),
    },
)

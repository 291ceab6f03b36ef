"""The naive baseline: ``ModelSerializer(many=True)`` over already-final rows, saved one by one.

This is what a first DRF implementation looks like: the default ModelSerializer
(``PrimaryKeyRelatedField`` for the two foreign keys, each validated with a query),
``serializer.save()`` calling ``Event.objects.create`` per row in autocommit mode.
It does no schema validation, redaction or deduplication: the rows it is given are
the rows the real pipeline stored, so it only pays for getting them into the table.
"""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingest.models import Event


class NaiveEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = "__all__"  # every column of the table, as a first version would


class NaiveEventIngest(APIView):
    """POST /naive/events: ``{"events": [row, ...]}``; answers the number of rows created."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        serializer = NaiveEventSerializer(data=request.data["events"], many=True)
        serializer.is_valid(raise_exception=True)
        created = serializer.save()
        return Response({"accepted": len(created)}, status=status.HTTP_201_CREATED)

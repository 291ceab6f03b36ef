"""Routes of the ingest API."""

from django.urls import path

from .views import EventBatchIngestApi

urlpatterns = [
    path("events", EventBatchIngestApi.as_view(), name="event-batch-ingest"),
]

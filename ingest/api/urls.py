"""Routes of the ingest API."""

from django.urls import path

from .artifacts import DiagnosticsSnapshotIngestApi, PerfSignoffIngestApi
from .schema_check import SchemaCheckApi
from .views import EventBatchIngestApi
from .violations import ViolationListApi

urlpatterns = [
    path("events", EventBatchIngestApi.as_view(), name="event-batch-ingest"),
    path("artifacts/perf-signoff", PerfSignoffIngestApi.as_view(), name="perf-signoff-ingest"),
    path(
        "artifacts/diagnostics",
        DiagnosticsSnapshotIngestApi.as_view(),
        name="diagnostics-snapshot-ingest",
    ),
    path("schemas/<str:name>/check", SchemaCheckApi.as_view(), name="schema-check"),
    path("violations", ViolationListApi.as_view(), name="violation-list"),
]

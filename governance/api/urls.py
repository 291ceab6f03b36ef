"""Routes of the schema registry API."""

from django.urls import path

from .views import (
    SchemaDetailApi,
    SchemaListRegisterApi,
    SchemaRevisionDetailApi,
    SchemaRevisionStatusApi,
)

urlpatterns = [
    path("schemas", SchemaListRegisterApi.as_view(), name="schema-list-register"),
    path("schemas/<str:name>", SchemaDetailApi.as_view(), name="schema-detail"),
    path(
        "schemas/<str:name>/revisions/<int:version>",
        SchemaRevisionDetailApi.as_view(),
        name="schema-revision-detail",
    ),
    path(
        "schemas/<str:name>/revisions/<int:version>/status",
        SchemaRevisionStatusApi.as_view(),
        name="schema-revision-status",
    ),
]

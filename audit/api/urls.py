"""Routes of the audit search API."""

from django.urls import path

from .views import AuditEventCorrelationApi, AuditEventExportApi, AuditEventListApi

urlpatterns = [
    path("audit-events", AuditEventListApi.as_view(), name="audit-event-list"),
    path(
        "audit-events/export.<str:export_format>",
        AuditEventExportApi.as_view(),
        name="audit-event-export",
    ),
    path(
        "audit-events/<int:pk>/correlated",
        AuditEventCorrelationApi.as_view(),
        name="audit-event-correlated",
    ),
]

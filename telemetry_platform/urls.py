"""URL routes: admin, the versioned API and the health check."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from .health import healthz
from .metrics import metrics, metrics_aggregates

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("ingest.api.urls")),
    path("api/v1/", include("governance.api.urls")),
    path("api/v1/", include("audit.api.urls")),
    path("api/v1/", include("privacy.api.urls")),
    # PostHog's capture API, for posthog-js pointed here (api_host = <platform>/posthog).
    path("posthog/", include("ingest.api.posthog")),
    # OTLP/HTTP, for OTEL_EXPORTER_OTLP_ENDPOINT=<platform> (/v1/logs, /v1/metrics).
    path("v1/", include("ingest.api.otlp")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file, so the CSP needs no inline script.
    path(
        "api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"
    ),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("metrics/aggregates", metrics_aggregates, name="metrics-aggregates"),
]

handler400 = "telemetry_platform.api_errors.bad_request"
handler404 = "telemetry_platform.api_errors.page_not_found"
handler500 = "telemetry_platform.api_errors.server_error"

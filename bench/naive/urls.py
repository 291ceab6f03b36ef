"""The platform's routes plus POST /naive/events."""

from django.urls import path

from telemetry_platform.urls import urlpatterns as platform_urlpatterns

from .views import NaiveEventIngest

urlpatterns = [
    *platform_urlpatterns,
    path("naive/events", NaiveEventIngest.as_view(), name="naive-event-ingest"),
]

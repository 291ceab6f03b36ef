"""The Celery application: Redis broker, tasks discovered from the Django apps."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telemetry_platform.settings")

app = Celery("telemetry_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

"""The Celery application: Redis broker, tasks discovered from the Django apps."""

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telemetry_platform.settings")

app = Celery("telemetry_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def _logging_from_django_settings(**kwargs: Any) -> None:
    """Log as the web processes do (JSON lines with request and trace ids), not Celery's format."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@signals.worker_process_init.connect
def _tracing_in_pool_process(**kwargs: Any) -> None:
    """Set tracing up in each prefork child, after the fork (see telemetry_platform.tracing)."""
    from .tracing import tracing_configure

    tracing_configure()


@signals.worker_init.connect
def _tracing_in_worker(sender: Any = None, **kwargs: Any) -> None:
    """Set tracing up in a worker whose pool does not fork (solo, threads): it runs the tasks."""
    from celery.concurrency import get_implementation
    from celery.concurrency.prefork import TaskPool as PreforkPool

    pool = getattr(sender, "pool_cls", None) or app.conf.worker_pool
    if issubclass(get_implementation(pool), PreforkPool):
        return
    from .tracing import tracing_configure

    tracing_configure()


@signals.worker_process_shutdown.connect
def _tracing_flush(**kwargs: Any) -> None:
    """Export the spans still buffered: pool processes leave without running atexit."""
    from .tracing import tracing_shutdown

    tracing_shutdown()

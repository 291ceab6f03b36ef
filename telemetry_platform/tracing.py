"""Optional OpenTelemetry tracing of Django, Celery and psycopg, switched on by ``OTEL_*``."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from . import logging as platform_logging

logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "telemetry-governance-platform"
# Query strings can carry raw identifiers an analyst searched for (?actor=...): spans keep
# the path and say only that a query was there, as the access log does.
REDACTED_QUERY = "REDACTED"
_URL_ATTRIBUTES = ("http.target", "http.url", "url.full")
_QUERY_ATTRIBUTES = ("url.query",)

# The process that configured tracing, so a forked child can tell it inherited the set-up.
_configured_pid: int | None = None
_provider: Any = None


def tracing_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Return True when the environment asks for OTLP trace export.

    On when ``OTEL_TRACES_EXPORTER`` lists ``otlp``, or when it is unset and an OTLP
    endpoint (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``) is
    set; always off when ``OTEL_SDK_DISABLED`` is true. Off when nothing is set.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {
        name.strip().lower()
        for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",")
        if name.strip()
    }
    if exporters:
        return "otlp" in exporters
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    )


def tracing_configure() -> bool:
    """Set up tracing for this process if the environment asks for it; return whether it is on.

    Call it after fork (gunicorn ``post_fork``, Celery ``worker_process_init``) or at start-up
    of a process that does not fork (``runserver``, a solo Celery worker): the span
    processor's export thread must belong to the process that records the spans. Calling it
    again in the same process does nothing. When tracing is off nothing of OpenTelemetry is
    imported.
    """
    global _configured_pid
    if _configured_pid is not None:
        # A child forked from a configured parent keeps the parent's set-up; the SDK restarts
        # the batch processor's thread in the child (os.register_at_fork).
        return True
    if not tracing_enabled():
        exporters = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
        if exporters and exporters != "none":
            logger.warning(
                "OTEL_TRACES_EXPORTER=%s: only otlp is supported; tracing stays off", exporters
            )
        return False
    _install()
    _configured_pid = os.getpid()
    return True


def tracing_shutdown() -> None:
    """Export the spans still buffered and stop the exporter (process exit)."""
    if _provider is not None and _configured_pid == os.getpid():
        _provider.shutdown()


def _install() -> None:
    global _provider
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import get_current_span

    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    ).strip()
    if protocol and protocol != "http/protobuf":
        logger.warning("OTLP protocol %s is not supported; exporting http/protobuf", protocol)

    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the sampler
    # comes from OTEL_TRACES_SAMPLER(_ARG); the exporter and batch processor read their own
    # OTEL_EXPORTER_OTLP_* and OTEL_BSP_* variables.
    resource = Resource.create()
    if resource.attributes.get(SERVICE_NAME, "").startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telemetry_platform.settings")
    DjangoInstrumentor().instrument(
        request_hook=_django_request_hook, response_hook=_django_response_hook
    )
    CeleryInstrumentor().instrument()
    # Statements are recorded with their placeholders; parameter values never are.
    PsycopgInstrumentor().instrument(capture_parameters=False, enable_commenter=False)
    platform_logging.set_span_trace_id_source(_active_trace_id_reader(get_current_span))
    logger.info("OpenTelemetry tracing on")


def _active_trace_id_reader(get_current_span: Callable[[], Any]) -> Callable[[], str]:
    def active_trace_id() -> str:
        context = get_current_span().get_span_context()
        return f"{context.trace_id:032x}" if context.is_valid else ""

    return active_trace_id


def _django_request_hook(span: Any, request: Any) -> None:
    """Replace the query string in the span's URL attributes: it may hold personal data."""
    if not span.is_recording() or not request.META.get("QUERY_STRING"):
        return
    attributes = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, f"{value.split('?', 1)[0]}?{REDACTED_QUERY}")
    for key in _QUERY_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, REDACTED_QUERY)


def _django_response_hook(span: Any, request: Any, response: Any) -> None:
    """Record the request id, which joins a trace to its log lines and access-log line."""
    request_id = getattr(request, "request_id", "")
    if request_id and span.is_recording():
        span.set_attribute("request_id", request_id)

"""Gunicorn settings: access log without query strings, tracing set up after fork, metric files."""

import os

from prometheus_client import multiprocess

# Query strings can carry raw identifiers an analyst searched for (?actor=...): the
# access log records the path only, with the request id to find the request.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms %({x-request-id}o)s'


def post_fork(server, worker):
    """Set tracing up (when OTEL_* asks for it) in the new worker, before it loads the app.

    After the fork, so the span exporter's thread belongs to the worker; before the app, so
    the Django middleware is in place when the handler reads MIDDLEWARE.
    """
    from telemetry_platform.tracing import tracing_configure

    tracing_configure()


def worker_exit(server, worker):
    """Export the worker's buffered spans before it exits."""
    from telemetry_platform.tracing import tracing_shutdown

    tracing_shutdown()


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)

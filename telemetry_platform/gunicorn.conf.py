"""Gunicorn settings: an access log without query strings; dead workers' metric files dropped."""

from prometheus_client import multiprocess

# Query strings can carry raw identifiers an analyst searched for (?actor=...): the
# access log records the path only, with the request id to find the request.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms %({x-request-id}o)s'


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)

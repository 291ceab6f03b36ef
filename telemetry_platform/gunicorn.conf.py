"""Gunicorn settings: drop a dead worker's metric files so scrapes stay correct."""

from prometheus_client import multiprocess


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)

"""OTLP/HTTP in: export requests decoded and mapped onto raw items of registered schemas."""

from .answer import OtlpOutcome, outcome_of
from .decode import OtlpEncoding, otlp_decode, otlp_encode
from .logs import LogTarget, log_items
from .metrics import metric_items, prometheus_name

__all__ = [
    "LogTarget",
    "OtlpEncoding",
    "OtlpOutcome",
    "log_items",
    "metric_items",
    "otlp_decode",
    "otlp_encode",
    "outcome_of",
    "prometheus_name",
]

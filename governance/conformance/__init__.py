"""Metric conformance: re-exports the catalogue, PromQL, readers, report and check modules."""

from .catalogue import PROMETHEUS_SYNTHETIC_SERIES, CatalogueEntry, exposed_series
from .check import check_files
from .promql import PromQLError, PromQLReferences, promql_metric_names, promql_references
from .readers import GRAFANA_INTERVAL_VALUE, GRAFANA_MACROS, RULE_FILE_SUFFIXES
from .report import ConformanceReport, Finding, InputError, Unresolvable

__all__ = [
    "GRAFANA_INTERVAL_VALUE",
    "GRAFANA_MACROS",
    "PROMETHEUS_SYNTHETIC_SERIES",
    "RULE_FILE_SUFFIXES",
    "CatalogueEntry",
    "ConformanceReport",
    "Finding",
    "InputError",
    "PromQLError",
    "PromQLReferences",
    "Unresolvable",
    "check_files",
    "exposed_series",
    "promql_metric_names",
    "promql_references",
]

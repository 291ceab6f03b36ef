"""The metric catalogue: the families the platform emits and the series names each one exposes.

Name matching (a reference is a *series* name; a catalogue entry is a *family* name):

* counter ``foo`` (or ``foo_total``): ``foo_total``, ``foo_created`` and ``foo`` itself.
* histogram ``foo``: ``foo_bucket``, ``foo_count``, ``foo_sum``, ``foo_created``.
* gauge histogram ``foo``: ``foo_bucket``, ``foo_gcount``, ``foo_gsum``.
* summary ``foo``: ``foo`` (the quantile series), ``foo_count``, ``foo_sum``, ``foo_created``.
* info ``foo`` (or ``foo_info``): ``foo_info`` and ``foo``.
* gauge, stateset, untyped/unknown ``foo``: ``foo``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Series that Prometheus itself writes for every scrape target or alert, never a client library.
PROMETHEUS_SYNTHETIC_SERIES = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
        "scrape_timeout_seconds",
        "scrape_sample_limit",
        "scrape_body_size_bytes",
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)

#: Grafana's built-in macros, replaced by a representative value before a query is parsed.

_SERIES_SUFFIXES = {
    "counter": ("", "_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("", "_info"),
}
_FAMILY_SUFFIX = {"counter": "_total", "info": "_info"}


@dataclass(frozen=True)
class CatalogueEntry:
    """One metric family the platform emits: its name and type.

    ``type`` is counter, gauge, histogram, summary or untyped (prometheus_client's ``unknown``,
    ``info``, ``stateset`` and ``gaugehistogram`` are understood too).
    """

    name: str
    type: str
    help: str = ""


def exposed_series(entry: CatalogueEntry) -> frozenset[str]:
    """The series names under which ``entry`` appears in an exposition (see the module doc)."""
    kind = (entry.type or "untyped").lower()
    suffixes = _SERIES_SUFFIXES.get(kind, ("",))
    base = entry.name.removesuffix(_FAMILY_SUFFIX.get(kind, "")) or entry.name
    return frozenset(base + suffix for suffix in suffixes)

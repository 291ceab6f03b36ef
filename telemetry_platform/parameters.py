"""Every setting the platform reads from the environment, declared once.

Each ``Parameter`` names its environment variable, its type, its default, a one-line
description and how it is checked. ``settings.py`` and ``conf.py`` read from here, and
the README's configuration table is generated from here (a test compares them):
``python -m telemetry_platform.parameters`` prints the table.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
FALSE_VALUES = frozenset({"0", "false", "no", "off", ""})

# Who reads a variable: Django's settings, or a process around Django.
DJANGO = "django"
PROCESS = "process"  # the Procfile, the Makefile, gunicorn or a management command
TESTS = "tests"  # telemetry_platform/test_settings.py
SDK = "sdk"  # a library reads it itself (OpenTelemetry, prometheus_client)


class ParameterError(ValueError):
    """An environment variable holds a value its declaration refuses."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise ParameterError(f"{name} must be one of true/false/1/0/yes/no/on/off")


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ParameterError(f"{name} must be an integer") from None


def _float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ParameterError(f"{name} must be a number") from None


def _list(name: str, raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _keys(name: str, raw: str) -> dict[str, str]:
    keys = {}
    for item in _list(name, raw):
        key_id, colon, secret = item.partition(":")
        if not colon or not key_id or not secret:
            raise ParameterError(f"{name} must be id:secret,id:secret")
        keys[key_id] = secret
    if not keys:
        raise ParameterError(f"{name} must name at least one key")
    return keys


def _json(name: str, raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ParameterError(f"{name} must be JSON") from None


PARSERS: dict[str, Callable[[str, str], Any]] = {
    "str": lambda name, raw: raw,
    "int": _int,
    "float": _float,
    "bool": _bool,
    "list": _list,
    "keys": _keys,
    "json": _json,
}


@dataclass(frozen=True)
class Parameter:
    """One environment variable: its type, default, meaning and checks."""

    name: str
    kind: str
    default: Any
    description: str
    # The Django setting it fills ("" for the variable's own name); None when read elsewhere.
    setting: str | None = ""
    read_by: str = DJANGO
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    # How the README shows the default, when the value itself would not read well.
    shown_default: str = ""
    # Checks the parsed value; raises ParameterError.
    validate: Callable[[str, Any], None] | None = None

    @property
    def django_setting(self) -> str | None:
        """The name of the Django setting this variable sets, if Django reads it."""
        if self.read_by != DJANGO or self.setting is None:
            return None
        return self.setting or self.name

    def read(self, environ: Mapping[str, str]) -> Any:
        """The variable's value in ``environ`` (the default when unset or empty), checked."""
        raw = environ.get(self.name)
        if raw is None or (raw == "" and self.kind != "bool"):
            value = self.default
        else:
            value = PARSERS[self.kind](self.name, raw)
        if self.choices and value not in self.choices:
            allowed = ", ".join(repr(choice) for choice in self.choices)
            raise ParameterError(f"{self.name} must be one of {allowed}")
        if self.minimum is not None and value < self.minimum:
            raise ParameterError(f"{self.name} must be at least {self.minimum:g}")
        if self.validate is not None:
            self.validate(self.name, value)
        return value

    def default_text(self) -> str:
        """The default as the README's table shows it."""
        if self.shown_default:
            return self.shown_default
        value = self.default
        if value in ("", None, [], {}):
            return "empty"
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list):
            text = ",".join(value)
        elif isinstance(value, dict) and self.kind == "keys":
            text = ",".join(f"{key}:{secret}" for key, secret in value.items())
        elif isinstance(value, dict):
            text = json.dumps(value)
        elif isinstance(value, float) and value.is_integer():
            text = str(int(value))
        else:
            text = str(value)
        return f"`{text}`"


def _retention_limits(name: str, value: Any) -> None:
    if not isinstance(value, dict) or "*" not in value:
        raise ParameterError(f'{name} must be a JSON object with a "*" entry')
    for limits in value.values():
        if (
            not isinstance(limits, list | tuple)
            or len(limits) != 2
            or not all(isinstance(days, int) for days in limits)
            or not 1 <= limits[0] <= limits[1]
        ):
            raise ParameterError(f"{name} entries must be [minimum days, maximum days]")


def _string_map(name: str, value: Any) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    ):
        raise ParameterError(f"{name} must be a JSON object of strings")


def _log_level(name: str, value: str) -> None:
    if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ParameterError(f"{name} must be DEBUG, INFO, WARNING, ERROR or CRITICAL")


def _url_with_database(name: str, value: str) -> None:
    if "://" not in value:
        raise ParameterError(f"{name} must be a URL")


SENSITIVE_KEY_PATTERN = (
    r"(?i)(pass(word|wd)?|secret|token|authorization|api[_-]?key|private[_-]?key"
    r"|credential|cookie|session[_-]?key)"
)
DEV_HASH_KEYS = {"k1": "dev-insecure-hash-key-change-me"}
DEV_AUDIT_DIGEST_KEYS = {"d1": "dev-insecure-audit-digest-key-change-me"}

P = Parameter
PARAMETERS: tuple[Parameter, ...] = (
    # -- stores
    P("DATABASE_URL", "str", "postgres://root@127.0.0.1:5432/telemetry_platform",
      "PostgreSQL database (created by `make run` if missing)", setting=None,
      validate=_url_with_database),
    P("DATABASE_CONN_MAX_AGE", "int", 60, "seconds a database connection is reused",
      setting=None, minimum=0),
    P("DATABASE_CONNECT_TIMEOUT", "int", 5,
      "seconds before an unreachable database fails a request (answered 503)", setting=None,
      minimum=1),
    P("DATABASE_POOL_MODE", "str", "session",
      "how `DATABASE_URL`'s server sessions are shared: `transaction` behind PgBouncer's "
      "transaction pooling (no session state: staging table per transaction, no server-side "
      "cursors or prepared statements, session locks on `DATABASE_SESSION_URL`)",
      choices=("session", "transaction")),
    P("DATABASE_SESSION_URL", "str", "",
      "a connection that keeps its server session (PostgreSQL itself or a PgBouncer "
      "session pool) for the purge's and erasure's session locks; needed with "
      "`DATABASE_POOL_MODE=transaction`", setting=None, shown_default="`DATABASE_URL`"),
    P("DATABASE_REPLICA_URL", "str", "",
      "a streaming replica for read-only work (audit search, exports and correlation pages, "
      "trends, the purge dry run's counts, subject-request exports, the home page's "
      "figures); empty: all reads on the primary",
      setting=None),
    P("DATABASE_REPLICA_MAX_LAG_SECONDS", "float", 5.0,
      "replication lag beyond which reads go to the primary instead", minimum=0),
    P("DATABASE_REPLICA_CHECK_SECONDS", "float", 1.0,
      "how long one measurement of the replica's lag (or its failure) is trusted",
      minimum=0),
    P("CELERY_BROKER_URL", "str", "redis://127.0.0.1:6379/0", "Celery broker"),
    P("CELERY_RESULT_BACKEND", "str", "",
      "where on-demand task results are kept (1 hour)", shown_default="same as broker"),
    P("REDIS_URL", "str", "redis://127.0.0.1:6379/0",
      "Redis the platform itself uses (health check, rate-limit buckets)"),
    # -- Django
    P("SECRET_KEY", "str", "dev-insecure-change-me-telemetry-governance-platform-0000",
      "Django secret key: **set it in production**", shown_default="a development value"),
    P("DEBUG", "bool", False, "Django debug mode"),
    P("ALLOWED_HOSTS", "list", ["127.0.0.1", "localhost", "[::1]"],
      "comma-separated host names served"),
    P("CSRF_TRUSTED_ORIGINS", "list", [],
      "comma-separated origins for the admin behind a proxy (`https://gov.example.com`)"),
    P("SECURE_SSL_REDIRECT", "bool", False, "redirect plain http to https (production: `true`)"),
    P("SESSION_COOKIE_SECURE", "bool", False,
      "send the admin's session cookie over https only (production: `true`)"),
    P("CSRF_COOKIE_SECURE", "bool", False,
      "send the CSRF cookie over https only (production: `true`)"),
    P("SECURE_HSTS_SECONDS", "int", 0,
      "`Strict-Transport-Security` max-age (production: `31536000`)", minimum=0),
    P("SECURE_HSTS_INCLUDE_SUBDOMAINS", "bool", False, "the HSTS header's `includeSubDomains`"),
    P("SECURE_HSTS_PRELOAD", "bool", False, "the HSTS header's `preload`"),
    P("TRUST_X_FORWARDED_PROTO", "bool", False,
      "behind a TLS-terminating proxy that sets `X-Forwarded-Proto` (and drops the client's)",
      setting=None),
    P("USE_X_FORWARDED_HOST", "bool", False, "take the host from the proxy's `X-Forwarded-Host`"),
    P("LOG_LEVEL", "str", "INFO", "root log level (`DEBUG`, `INFO`, `WARNING`, `ERROR`)",
      setting=None, validate=_log_level),
    P("LOG_FORMAT", "str", "json",
      "`json` (one object per line, with request and trace ids) or `plain`",
      choices=("json", "plain")),
    P("METRICS_BEARER_TOKEN", "str", "", "token `/metrics` requires when set",
      shown_default="empty (open)"),
    P("METRICS_NODE_AGGREGATES", "bool", True,
      "`/metrics` also serves the cluster-wide aggregates kept in Redis (client telemetry, "
      "service metrics); set false on every node when Prometheus scrapes several nodes, and "
      "scrape `/metrics/aggregates` once"),
    # -- processes
    P("HOST", "str", "127.0.0.1", "where `make run` serves (and the login URL it prints)",
      read_by=PROCESS),
    P("PORT", "int", 8000, "port `make run` serves on", read_by=PROCESS),
    P("WEB_CONCURRENCY", "int", 2, "gunicorn worker processes", read_by=PROCESS, minimum=1),
    P("WEB_TIMEOUT", "int", 30, "gunicorn worker timeout, seconds", read_by=PROCESS, minimum=1),
    P("WEB_THREADS", "int", 8, "threads per gunicorn worker (each serves one request)",
      read_by=PROCESS, minimum=1),
    P("WEB_READ_TIMEOUT", "float", 10.0,
      "seconds one read of a request (head or body) may wait for data; then 408 or closed",
      read_by=PROCESS, minimum=0.1),
    P("CELERY_CONCURRENCY", "int", 2, "Celery worker processes under `make run`",
      read_by=PROCESS, minimum=1),
    P("ADMIN_USERNAME", "str", "admin",
      "user name of the admin account created when none exists", read_by=PROCESS),
    P("ADMIN_PASSWORD", "str", "",
      "its password; when unset a password is generated and printed once", read_by=PROCESS,
      shown_default="generated"),
    P("ADMIN_EMAIL", "str", "", "its e-mail", read_by=PROCESS),
    P("PROMETHEUS_MULTIPROC_DIR", "str", "",
      "directory where worker processes share metric samples", read_by=SDK,
      shown_default="set by `make run`"),
    # -- tracing (read by telemetry_platform/tracing.py and the OpenTelemetry SDK)
    P("OTEL_TRACES_EXPORTER", "str", "",
      "`otlp` switches tracing on, `none` keeps it off (see *Tracing*)", read_by=SDK,
      shown_default="unset"),
    P("OTEL_EXPORTER_OTLP_ENDPOINT", "str", "",
      "OTLP/HTTP collector base URL (`http://collector:4318`); set alone, it switches "
      "tracing on", read_by=SDK, shown_default="unset"),
    P("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "str", "",
      "full traces URL (`http://collector:4318/v1/traces`), instead of the above",
      read_by=SDK, shown_default="unset"),
    P("OTEL_EXPORTER_OTLP_PROTOCOL", "str", "http/protobuf",
      "`http/protobuf`, the only protocol exported (another value is logged and ignored)",
      read_by=SDK),
    P("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "str", "",
      "the same, for traces only", read_by=SDK, shown_default="unset"),
    P("OTEL_SERVICE_NAME", "str", "telemetry-governance-platform", "service name of the spans",
      read_by=SDK),
    P("OTEL_RESOURCE_ATTRIBUTES", "str", "",
      "more resource attributes, `key=value,...` (`deployment.environment=prod`)",
      read_by=SDK),
    P("OTEL_TRACES_SAMPLER", "str", "parentbased_always_on",
      "sampler (`parentbased_traceidratio`: a share of new traces)", read_by=SDK),
    P("OTEL_TRACES_SAMPLER_ARG", "str", "",
      "the sampler's argument (`0.1`: a tenth of new traces)", read_by=SDK),
    P("OTEL_SDK_DISABLED", "bool", False, "`true` keeps tracing off whatever else is set",
      read_by=SDK),
    # -- ingest
    P("TELEMETRY_MAX_BODY_BYTES", "int", 5 * 1024 * 1024,
      "largest request body on the ingest endpoints (413 beyond)", minimum=1),
    P("TELEMETRY_MAX_EVENTS_PER_BATCH", "int", 1000, "most events in one request (413 beyond)",
      minimum=1),
    P("TELEMETRY_MAX_DECOMPRESSED_BYTES", "int", 20 * 1024 * 1024,
      "largest body after gzip inflation (413 beyond)", minimum=1),
    P("TELEMETRY_MAX_EVENT_BYTES", "int", 64 * 1024,
      "largest single event (rejected per event beyond)", minimum=1),
    P("TELEMETRY_MAX_FUTURE_SKEW_SECONDS", "int", 300,
      "how far in the future an event may claim to be", minimum=0),
    P("TELEMETRY_RATE_LIMIT_EVENTS_PER_SECOND", "float", 2000.0,
      "default events/s per API key (0: no limit)", minimum=0),
    P("TELEMETRY_RATE_LIMIT_BURST_SECONDS", "float", 5.0,
      "bucket size, in seconds of the key's rate", minimum=0),
    P("TELEMETRY_RATE_LIMIT_BYTES_PER_SECOND", "float", float(2 * 1024 * 1024),
      "request-body bytes/s per API key (after gzip inflation; 0: no limit), same burst",
      minimum=0),
    P("TELEMETRY_DB_STATEMENT_TIMEOUT_MS", "int", 5000, "ingest statement timeout; beyond it 503",
      minimum=1),
    P("TELEMETRY_PLAN_REFRESH_SECONDS", "float", 1.0,
      "how often a process checks for schema/policy changes", minimum=0),
    P("TELEMETRY_API_KEY_CACHE_SECONDS", "float", 1.0,
      "how long a process reuses a verified API key (revocation and scope changes made "
      "elsewhere apply within it; 0: no cache)", minimum=0),
    P("TELEMETRY_PUBLISHABLE_IP_EVENTS_PER_SECOND", "float", 50.0,
      "default events/s per client IP for a publishable (browser) key (0: no limit); the IP "
      "is hashed for the bucket name and never stored", minimum=0),
    P("TELEMETRY_CORS_MAX_AGE_SECONDS", "int", 7200,
      "how long browsers may cache a preflight answer (Access-Control-Max-Age)", minimum=0),
    # -- retention
    P("TELEMETRY_PURGE_BATCH_SIZE", "int", 1_000,
      "rows deleted per statement/transaction by the purge (each commit flushes its WAL, "
      "which ingest's commits wait behind: keep it small)", minimum=1),
    P("TELEMETRY_PURGE_BATCH_PAUSE_SECONDS", "float", 0.0, "pause between purge batches",
      minimum=0),
    P("TELEMETRY_PURGE_PACING", "float", 3.0,
      "after each purge batch or partition drop, sleep this many times as long as it took "
      "(at most 5 s), so a purge uses a bounded share of the database (0: no pacing)",
      minimum=0),
    P("TELEMETRY_PURGE_LOCK_TIMEOUT_MS", "int", 20,
      "lock_timeout of the purge's DETACH/DROP: a lock not granted by then is asked again "
      "later, so DDL never queues long in front of inserts", minimum=1),
    P("TELEMETRY_PURGE_DDL_ATTEMPTS", "int", 200,
      "attempts at a partition's DETACH before the purge deletes its rows in batches "
      "instead", minimum=1),
    P("TELEMETRY_PARTITION_DAYS_AHEAD", "int", 7, "day partitions created ahead of today",
      minimum=1),
    P("TELEMETRY_RETENTION_LIMITS", "json", {"audit_event": [90, 3650], "*": [1, 3650]},
      "JSON: minimum and maximum retention days per class", validate=_retention_limits),
    # -- redaction and keys
    P("TELEMETRY_HASH_KEYS", "keys", DEV_HASH_KEYS,
      "keyed-hash keys, `id:secret,id:secret`: **set in production**"),
    P("TELEMETRY_HASH_KEY_ID", "str", "",
      "the key id that hashes new data (rotation: add a key, switch the id)",
      shown_default="first key"),
    P("TELEMETRY_AUDIT_DIGEST_KEYS", "keys", DEV_AUDIT_DIGEST_KEYS,
      "keys of the audit chain heads' digests and the daily digest files, `id:secret,...`, "
      "kept apart from the hash keys: **set in production**"),
    P("TELEMETRY_AUDIT_DIGEST_KEY_ID", "str", "",
      "the digest key id that signs new digests (keep old ids listed after a rotation)",
      shown_default="first key"),
    P("TELEMETRY_AUDIT_DIGEST_DIR", "str", "",
      "directory beat writes one signed digest file per closed UTC day to (empty: off); "
      "use write-once storage", shown_default="empty (off)"),
    P("TELEMETRY_UNCLASSIFIED_FIELDS", "str", "drop",
      "`drop` unclassified fields, or `reject` the event", choices=("drop", "reject")),
    P("TELEMETRY_UNHASHED_PSEUDONYM", "str", "reject",
      "a kept `pseudonymous_id` that is not a hash: `reject` the event or `hash` it",
      choices=("reject", "hash")),
    P("TELEMETRY_SENSITIVE_KEY_PATTERN", "str", SENSITIVE_KEY_PATTERN,
      "regex of map keys whose values are always redacted", shown_default="see below"),
    # -- policy review
    P("TELEMETRY_POLICY_REVIEW_DAYS", "int", 90,
      "a policy with no review and no approved change for this many days is due for review",
      minimum=1),
    P("TELEMETRY_CHANGE_PREVIEW_EVENTS", "int", 5,
      "stored events a field-policy change request re-renders in its preview", minimum=0),
    # -- artifacts and service counters
    P("TELEMETRY_PERF_REGRESSION_BASELINE_BUILDS", "int", 5,
      "regression list: the latest build against the median of this many earlier builds",
      minimum=1),
    P("TELEMETRY_PERF_REGRESSION_THRESHOLD_PERCENT", "float", 10.0,
      "... flagged when worse than that median by more than this percentage", minimum=0),
    P("TELEMETRY_PERF_TREND_MAX_BUILDS", "int", 50,
      "most recent builds drawn per metric path on the trends page", minimum=1),
    P("TELEMETRY_PERF_BUDGET_ALIASES", "json",
      {
          "wasm_p95_ms": "boot.wasm_asset.p95_ms",
          "rss_growth_kb": "soak.rss_kb.growth",
          "js_asset_bytes": "boot.asset_sizes.js_bytes",
          "wasm_asset_bytes": "boot.asset_sizes.wasm_bytes",
      },
      "JSON: sign-off budget name → metric path, for names that do not follow the path",
      shown_default="the web shell's four", validate=_string_map),
    P("TELEMETRY_SERVICE_METRIC_MAX_SERIES", "int", 1000,
      "label sets per service metric name on `/metrics` before folding", minimum=1),
    P("TELEMETRY_SERVICE_METRIC_MAX_NAMES", "int", 500,
      "service metric names exposed on `/metrics` at most", minimum=1),
    P("TELEMETRY_DIAGNOSTICS_METRIC_PREFIX", "str", "khala.delivery",
      "name prefix of the counters made from diagnostics snapshots"),
    # -- the test suite
    P("TEST_CELERY_BROKER_URL", "str", "",
      "broker of the test suite (kept apart from a running `make run`)", read_by=TESTS,
      shown_default="`CELERY_BROKER_URL` if set, else `redis://127.0.0.1:6379/14`"),
    P("TEST_REDIS_URL", "str", "", "Redis of the test suite", read_by=TESTS,
      shown_default="`REDIS_URL` if set, else `redis://127.0.0.1:6379/15`"),
    P("TEST_DATABASE_NAME", "str", "",
      "the test database (two test sessions on one server: give each its own `DATABASE_URL`)",
      read_by=TESTS, shown_default="`test_` + the `DATABASE_URL` database"),
)
del P

BY_NAME: dict[str, Parameter] = {parameter.name: parameter for parameter in PARAMETERS}


def _key_id_check(values: dict[str, Any], keys: str, key_id: str) -> None:
    if not values[key_id]:
        values[key_id] = next(iter(values[keys]))
    elif values[key_id] not in values[keys]:
        raise ParameterError(f"{key_id} must name a key listed in {keys}")


def read_all(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every parameter read from ``environ`` (the process environment), checked together."""
    environ = os.environ if environ is None else environ
    values = {parameter.name: parameter.read(environ) for parameter in PARAMETERS}
    _key_id_check(values, "TELEMETRY_HASH_KEYS", "TELEMETRY_HASH_KEY_ID")
    _key_id_check(values, "TELEMETRY_AUDIT_DIGEST_KEYS", "TELEMETRY_AUDIT_DIGEST_KEY_ID")
    if values["DATABASE_POOL_MODE"] == "transaction" and not values["DATABASE_SESSION_URL"]:
        raise ParameterError(
            "DATABASE_POOL_MODE=transaction needs DATABASE_SESSION_URL (session-level locks)"
        )
    values["CELERY_RESULT_BACKEND"] = (
        values["CELERY_RESULT_BACKEND"] or values["CELERY_BROKER_URL"]
    )
    values["TELEMETRY_RETENTION_LIMITS"] = {
        event_class: tuple(limits)
        for event_class, limits in values["TELEMETRY_RETENTION_LIMITS"].items()
    }
    return values


def telemetry_defaults() -> dict[str, Any]:
    """The platform settings (``TELEMETRY_<NAME>``) by NAME, with their declared defaults."""
    values = read_all({})
    return {
        name.removeprefix("TELEMETRY_"): values[name]
        for name in BY_NAME
        if name.startswith("TELEMETRY_")
    }


def markdown_table() -> str:
    """The README's configuration table, one row per parameter."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    rows += [
        f"| `{parameter.name}` | {parameter.default_text()} | {parameter.description} |"
        for parameter in PARAMETERS
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    sys.stdout.write(markdown_table() + "\n")

"""Writes of ingest: API keys and the retention purge."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from governance.models import EventClass
from governance.redaction import generalize_ip
from telemetry_platform.conf import telemetry_settings

from . import metrics
from .models import ApiKey
from .platform_audit import audit_event_record
from .ratelimit import once_per
from .retention import partitions_maintain, purge_class
from .selectors import publishable_origins_forget

logger = logging.getLogger(__name__)

KEY_PREFIX = "tgp"
LAST_USED_GRANULARITY = timedelta(minutes=1)
AUTH_FAILURE_WINDOW_SECONDS = 60


def _secret_hash(presented: str) -> str:
    return hashlib.sha256(presented.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    secret: str  # the full key, shown once and never stored


SCOPE_DEFAULTS: dict[str, object] = {
    "kind": "ingest",
    "allowed_sources": [],
    "allowed_surfaces": [],
    "allowed_event_classes": [],
    "allowed_schemas": [],
    "allowed_origins": [],
    "allow_no_origin": False,
    "rate_limit_per_ip_per_second": None,
    "expires_at": None,
    "rate_limit_per_second": None,
}


class ApiKeyScopeError(ValueError):
    """A scope a key of its kind may not have (a publishable key naming no schema, ...)."""


def api_key_scope_check(kind: str, values: Mapping[str, object]) -> None:
    """Refuse a publishable key that could send anything, or from anywhere.

    Anything in a page is public, so the key must name what it may send (schemas) and
    from where (origins, unless it is meant for origin-less clients).
    """
    if kind != ApiKey.Kind.PUBLISHABLE:
        return
    if not values.get("allowed_schemas"):
        raise ApiKeyScopeError("a publishable key must name the schemas it may send")
    if not values.get("allowed_origins") and not values.get("allow_no_origin"):
        raise ApiKeyScopeError(
            "a publishable key must name its allowed origins (or allow requests without one)"
        )
    for origin in values.get("allowed_origins") or ():
        if origin_normalise(str(origin)) != origin:
            raise ApiKeyScopeError(
                f"allowed origins are scheme://host[:port], lower case, no path: {origin!r}"
            )


def origin_normalise(origin: str) -> str:
    """``scheme://host[:port]`` of an origin or URL, lower case; "" when it has none."""
    scheme, sep, rest = origin.strip().partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest:
        return ""
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if not host or "@" in host:
        return ""
    return f"{scheme.lower()}://{host.lower()}"


def _new_secret() -> tuple[str, str]:
    prefix = secrets.token_hex(6)
    return prefix, f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"


@transaction.atomic
def api_key_create(
    *, name: str, source: str = "", actor: AbstractBaseUser | None, **scope: object
) -> CreatedApiKey:
    """Create an API key and return it with its secret, which is not stored anywhere.

    ``scope`` takes the ApiKey scope fields (allowed_sources, allowed_surfaces,
    allowed_event_classes, allowed_schemas, expires_at, rate_limit_per_second).
    """
    unknown = set(scope) - set(SCOPE_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown scope fields: {', '.join(sorted(unknown))}")
    prefix, secret = _new_secret()
    values = {**SCOPE_DEFAULTS, **{k: v for k, v in scope.items() if v is not None}}
    api_key_scope_check(str(values["kind"]), values)
    api_key = ApiKey.objects.create(
        name=name,
        source=source or name,
        prefix=prefix,
        secret_hash=_secret_hash(secret),
        created_by=actor if actor is not None and actor.is_authenticated else None,
        **values,
    )
    publishable_origins_forget()
    transaction.on_commit(publishable_origins_forget)
    audit_event_record(
        event_name="platform.api_key.created",
        actor=actor,
        attributes={
            "key_name": name,
            "key_prefix": prefix,
            "source": api_key.source,
            "kind": api_key.kind,
        },
    )
    return CreatedApiKey(api_key=api_key, secret=secret)


@transaction.atomic
def api_key_rotate(*, api_key: ApiKey, actor: AbstractBaseUser | None) -> CreatedApiKey:
    """Give a key a new secret (and prefix); the old one is refused from now on.

    The row, its scope and the events it sent stay; only the credential changes.
    """
    stored = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if stored.revoked_at is not None:
        raise ApiKeyScopeError("a revoked key cannot be rotated")
    old_prefix = stored.prefix
    stored.prefix, secret = _new_secret()
    stored.secret_hash = _secret_hash(secret)
    stored.save(update_fields=["prefix", "secret_hash"])
    _api_key_forget_on_commit(old_prefix)
    audit_event_record(
        event_name="platform.api_key.rotated",
        actor=actor,
        attributes={"key_name": stored.name, "key_prefix": stored.prefix, "old_prefix": old_prefix},
    )
    return CreatedApiKey(api_key=stored, secret=secret)


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: AbstractBaseUser | None) -> ApiKey:
    """Revoke a key; requests using it are refused from now on."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        _api_key_forget_on_commit(api_key.prefix)
        audit_event_record(
            event_name="platform.api_key.revoked",
            actor=actor,
            attributes={"key_name": api_key.name, "key_prefix": api_key.prefix},
        )
    return api_key


@transaction.atomic
def api_key_scope_update(
    *, api_key: ApiKey, actor: AbstractBaseUser | None, **scope: object
) -> ApiKey:
    """Change what a key may send (sources, surfaces, classes, schemas), its expiry and rate."""
    unknown = set(scope) - set(SCOPE_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown scope fields: {', '.join(sorted(unknown))}")
    stored = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    changed = []
    for name, value in scope.items():
        value = SCOPE_DEFAULTS[name] if value is None else value
        if getattr(stored, name) != value:
            setattr(stored, name, value)
            changed.append(name)
    if changed:
        api_key_scope_check(stored.kind, {name: getattr(stored, name) for name in SCOPE_DEFAULTS})
        stored.save(update_fields=changed)
        _api_key_forget_on_commit(stored.prefix)
        audit_event_record(
            event_name="platform.api_key.scope_changed",
            actor=actor,
            attributes={"key_name": stored.name, "fields": ",".join(changed)},
        )
    return stored


@dataclass(frozen=True)
class AuthOutcome:
    api_key: ApiKey | None
    code: str = ""
    message: str = ""


def auth_failure_record(*, code: str, presented: str, client_address: str) -> bool:
    """Record a failed authentication as a platform audit event, at most once a minute per
    (reason, key prefix, client network), so a flood of bad keys cannot flood the store.

    Only the key's public prefix is recorded, never the presented secret.
    """
    parts = presented.split("_", 2)
    prefix = parts[1] if len(parts) == 3 and parts[0] == KEY_PREFIX else ""
    network = generalize_ip(client_address) or "unknown"
    if not once_per(f"authfail:{code}:{prefix}:{network}", AUTH_FAILURE_WINDOW_SECONDS):
        return False
    with transaction.atomic():
        audit_event_record(
            event_name="platform.auth.failed",
            actor=None,
            outcome="denied",
            attributes={"reason": code, "key_prefix": prefix or "-", "client_network": network},
        )
    return True


# Verified keys per process, by prefix: (secret hash, key, when it was read). A cached
# key is read again once it is API_KEY_CACHE_SECONDS old, so a revocation, expiry or scope
# change made elsewhere takes effect within that bound in every worker (immediately in the
# process that made it). Failed lookups are never cached.
_verified: dict[str, tuple[str, ApiKey, float]] = {}
_VERIFIED_MAX = 1024


def api_key_cache_forget(prefix: str | None = None) -> None:
    """Forget a cached key (all keys when ``prefix`` is None); the next use reads it again."""
    if prefix is None:
        _verified.clear()
    else:
        _verified.pop(prefix, None)


def _api_key_forget_on_commit(prefix: str) -> None:
    # Now (this transaction's own reads) and after commit (reads in between saw the old row).
    api_key_cache_forget(prefix)
    publishable_origins_forget()
    transaction.on_commit(lambda: (api_key_cache_forget(prefix), publishable_origins_forget()))


def _api_key_lookup(prefix: str) -> tuple[str, ApiKey] | None:
    ttl = telemetry_settings.API_KEY_CACHE_SECONDS
    now = time.monotonic()
    cached = _verified.get(prefix)
    if cached is not None and now - cached[2] < ttl:
        return cached[0], cached[1]
    api_key = ApiKey.objects.filter(prefix=prefix).first()
    if api_key is None:
        _verified.pop(prefix, None)
        return None
    if ttl > 0:
        if len(_verified) >= _VERIFIED_MAX:
            _verified.clear()
        _verified[prefix] = (api_key.secret_hash, api_key, now)
    return api_key.secret_hash, api_key


def api_key_authenticate(*, presented: str) -> AuthOutcome:
    """Check a presented key; record when it was last used (at most once a minute).

    The key's row is cached per process for at most API_KEY_CACHE_SECONDS (see
    ``_verified``); the secret is checked on every request.
    """
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return AuthOutcome(None, "invalid_api_key", "unknown API key")
    found = _api_key_lookup(parts[1])
    if found is None or not hmac.compare_digest(found[0], _secret_hash(presented)):
        return AuthOutcome(None, "invalid_api_key", "unknown API key")
    api_key = found[1]
    if api_key.revoked_at is not None:
        return AuthOutcome(None, "revoked_api_key", "this API key has been revoked")
    now = timezone.now()
    if api_key.expires_at is not None and api_key.expires_at <= now:
        return AuthOutcome(None, "expired_api_key", "this API key has expired")
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_GRANULARITY:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        # The cached row remembers the write, so the next one is a minute away.
        api_key.last_used_at = now
    return AuthOutcome(api_key)


# -- retention ------------------------------------------------------------------------


@dataclass
class PurgeResult:
    now: datetime
    deleted: dict[str, int] = field(default_factory=dict)
    cutoffs: dict[str, datetime] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)

    @property
    def total_deleted(self) -> int:
        return sum(self.deleted.values())


def events_purge_expired(
    *,
    event_class: str | None = None,
    now: datetime | None = None,
    actor: AbstractBaseUser | None = None,
    triggered_by: str = "beat",
) -> PurgeResult:
    """Purge every class (or one): drop wholly expired day partitions, delete the rest in
    bounded batches, never touch held events. Each run is recorded as a PurgeRun and a
    platform audit event.
    """
    now = now or timezone.now()
    result = PurgeResult(now=now)
    classes = EventClass.objects.order_by("name")
    if event_class:
        classes = classes.filter(name=event_class)
    for klass in classes:
        progress, rules, status = purge_class(klass, now=now, triggered_by=triggered_by)
        result.statuses[klass.name] = status
        metrics.PURGE_RUNS.labels(klass.name, status).inc()
        if progress is None or rules is None:
            logger.info("purge of %s skipped: another purge of the class is running", klass.name)
            continue
        result.cutoffs[klass.name] = rules.class_cutoff
        result.deleted[klass.name] = progress.rows_deleted
        metrics.PURGE_ROWS.labels(klass.name).inc(progress.rows_deleted)
        metrics.PURGE_PARTITIONS.labels(klass.name).inc(len(progress.partitions_dropped))
        logger.info(
            "purged %s: %d rows (%d partitions dropped), %d kept by holds",
            klass.name,
            progress.rows_deleted,
            len(progress.partitions_dropped),
            progress.rows_kept_by_holds,
        )
        with transaction.atomic():
            audit_event_record(
                event_name="platform.retention.purged",
                actor=actor,
                attributes={
                    "event_class": klass.name,
                    "cutoff": rules.class_cutoff.isoformat(),
                    "rows_deleted": str(progress.rows_deleted),
                    "partitions_dropped": str(len(progress.partitions_dropped)),
                    "rows_kept_by_holds": str(progress.rows_kept_by_holds),
                    "retention_days": str(klass.retention_days),
                    "triggered_by": triggered_by,
                },
            )
    return result


def partitions_maintain_all(*, now: datetime | None = None) -> list[str]:
    """Create upcoming day partitions and split default partitions, for every class."""
    created = []
    for klass in EventClass.objects.order_by("name"):
        created.extend(partitions_maintain(event_class=klass.name, now=now))
    return created

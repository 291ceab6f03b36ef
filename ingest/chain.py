"""Tamper evidence: each audit event is linked to the previous one of its chain by a keyed hash.

A chain is (source, UTC day of occurred-at), so dropping a day partition removes whole
chains, never links in the middle of one. Each link is HMAC-SHA256 under a server key
of (previous link, canonical content): without the key an edited row cannot be given a
matching link. The link names the content version and the key id (``v2.k1:<hex>``; a
bare ``k1:<hex>`` is version 1), so keys can rotate and rows linked under the first
content keep verifying.

Version 1 covered identity, time and payload. Version 2 covers every stored column but
the row id and the links themselves: the chain position, and the columns audit search
filters on (actor hash, request id, trace id) among them.

Chain heads carry a keyed digest of their own state under a separate key (the digest
key), so a head edited in SQL (stepped back, marked purged, re-pointed) no longer
matches it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

GENESIS = "genesis"
LINK_VERSION = "v2"
# The columns a version 2 link covers, in this order.
LINKED_COLUMNS = (
    "chain_seq",
    "event_class",
    "schema_revision_id",
    "source",
    "event_id",
    "occurred_at",
    "received_at",
    "request_id",
    "trace_id",
    "actor_hash",
    "ingest_request_id",
    "payload",
    "redactions",
)


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_canonical(item) for item in value]
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


def _dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def canonical_content(*, event_id: str, source: str, occurred_at: datetime, payload: Any) -> bytes:
    """The bytes a version 1 link covers: identity, time and the stored (redacted) payload."""
    return _dumps([event_id, source, occurred_at.astimezone(UTC).isoformat(), payload])


def row_content(row: Mapping[str, Any]) -> bytes:
    """The bytes a version 2 link covers: every column of ``row`` named in LINKED_COLUMNS."""
    return _dumps([LINK_VERSION, *(_canonical(row[column]) for column in LINKED_COLUMNS)])


def link_version(link: str) -> str:
    """The content version a stored link was made over (``v1`` for the unprefixed form)."""
    version, dot, _ = link.partition(":")[0].partition(".")
    return version if dot else "v1"


def chain_link(previous: str, content: bytes, *, key_id: str, key: str, version: str = "v1") -> str:
    """The link of a row whose predecessor's link is ``previous``."""
    mac = hmac.new(key.encode("utf-8"), previous.encode("utf-8") + b"\n" + content, hashlib.sha256)
    prefix = key_id if version == "v1" else f"{version}.{key_id}"
    return f"{prefix}:{mac.hexdigest()}"


def link_valid(link: str, previous: str, content: bytes, *, keys: Mapping[str, str]) -> bool:
    """Whether ``link`` is the right link for ``content`` after ``previous`` (any known key)."""
    version = link_version(link)
    key_id = link.partition(":")[0].removeprefix(f"{version}.")
    key = keys.get(key_id)
    if key is None:
        return False
    expected = chain_link(previous, content, key_id=key_id, key=key, version=version)
    return hmac.compare_digest(link, expected)


def keyed_digest(content: bytes, *, key_id: str, key: str) -> str:
    """HMAC-SHA256 of ``content``, prefixed with the key id (``d1:<hex>``)."""
    return f"{key_id}:{hmac.new(key.encode('utf-8'), content, hashlib.sha256).hexdigest()}"


def keyed_digest_valid(digest: str, content: bytes, *, keys: Mapping[str, str]) -> bool:
    """Whether ``digest`` is the keyed digest of ``content`` under one of ``keys``."""
    key_id = digest.partition(":")[0]
    key = keys.get(key_id)
    if key is None:
        return False
    return hmac.compare_digest(digest, keyed_digest(content, key_id=key_id, key=key))


def head_content(
    *,
    source: str,
    day: date,
    last_seq: int,
    last_link: str,
    purged_at: datetime | None,
    rows_purged: int,
) -> bytes:
    """The bytes a chain head's digest covers: everything verification trusts the head for."""
    return _dumps(
        [
            "head.v1",
            source,
            day.isoformat(),
            last_seq,
            last_link,
            purged_at.astimezone(UTC).isoformat() if purged_at else None,
            rows_purged,
        ]
    )


def tombstone_content(
    *,
    source: str,
    day: date,
    chain_seq: int,
    chain_prev: str,
    chain_link: str,
    erased_by: str,
    erased_at: datetime,
) -> bytes:
    """The bytes an erased row's tombstone digest covers: its place, links and erasure."""
    return _dumps(
        [
            "tombstone.v1",
            source,
            day.isoformat(),
            chain_seq,
            chain_prev,
            chain_link,
            erased_by,
            erased_at.astimezone(UTC).isoformat(),
        ]
    )

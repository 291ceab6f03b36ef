"""Tamper evidence: each audit event is linked to the previous one of its chain by a keyed hash.

A chain is (source, UTC day of occurred-at), so dropping a day partition removes whole
chains, never links in the middle of one. Each link is HMAC-SHA256 under a server key
of (previous link, canonical content): without the key an edited row cannot be given a
matching link. The key id prefixes the link (``k1:<hex>``), so keys can rotate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

GENESIS = "genesis"


def canonical_content(*, event_id: str, source: str, occurred_at: datetime, payload: Any) -> bytes:
    """The bytes a link covers: identity, time and the stored (redacted) payload."""
    return json.dumps(
        [event_id, source, occurred_at.astimezone(UTC).isoformat(), payload],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


def chain_link(previous: str, content: bytes, *, key_id: str, key: str) -> str:
    """The link of a row whose predecessor's link is ``previous``."""
    mac = hmac.new(key.encode("utf-8"), previous.encode("utf-8") + b"\n" + content, hashlib.sha256)
    return f"{key_id}:{mac.hexdigest()}"


def link_valid(link: str, previous: str, content: bytes, *, keys: Mapping[str, str]) -> bool:
    """Whether ``link`` is the right link for ``content`` after ``previous`` (any known key)."""
    key_id, _, _ = link.partition(":")
    key = keys.get(key_id)
    if key is None:
        return False
    return hmac.compare_digest(link, chain_link(previous, content, key_id=key_id, key=key))

"""Keyed hashes (HMAC-SHA256 with a key id prefix): used by redaction and by search."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping


def keyed_hash(value: str, *, key_id: str, key: str) -> str:
    """HMAC-SHA256 of ``value`` under ``key``, prefixed with the key id (``k1:<hex>``).

    The prefix lets keys rotate: old rows keep their key id and stay joinable.
    """
    digest = hmac.new(key.encode("utf-8"), value.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{key_id}:{digest}"


def keyed_hash_candidates(value: str, *, keys: Mapping[str, str]) -> list[str]:
    """Every stored form ``value`` may have, one per configured key (what search looks for)."""
    return [keyed_hash(value, key_id=key_id, key=key) for key_id, key in keys.items()]

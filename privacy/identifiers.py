"""Raw identifiers of a data subject into the one-way hashes events store them as."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from governance.hashing import keyed_hash_candidates
from telemetry_platform.conf import telemetry_settings

IDENTIFIER_KINDS = ("user_id", "email", "device_id", "session_id", "org_id")
MAX_IDENTIFIERS = 50
MAX_IDENTIFIER_LENGTH = 200


class IdentifierError(ValueError):
    """The identifiers given cannot be used; ``field`` names which (never its value)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def subject_hashes_from(identifiers: Mapping[str, Sequence[str]]) -> list[str]:
    """Every stored form of every identifier: its keyed hash under each configured key id,
    and the plain ``sha256:`` form clients send already-hashed ids in. Sorted, distinct."""
    if not isinstance(identifiers, Mapping) or not identifiers:
        raise IdentifierError("give at least one identifier", field="identifiers")
    keys = telemetry_settings.HASH_KEYS
    hashes: set[str] = set()
    count = 0
    for kind, values in identifiers.items():
        if kind not in IDENTIFIER_KINDS:
            raise IdentifierError(
                f"unknown identifier kind (one of {', '.join(IDENTIFIER_KINDS)})",
                field=f"identifiers.{kind}"[:80],
            )
        if isinstance(values, str) or not isinstance(values, Sequence):
            raise IdentifierError("a list of strings", field=f"identifiers.{kind}")
        for index, value in enumerate(values):
            path = f"identifiers.{kind}[{index}]"
            if not isinstance(value, str) or not value.strip():
                raise IdentifierError("a non-empty string", field=path)
            if len(value) > MAX_IDENTIFIER_LENGTH:
                raise IdentifierError(f"longer than {MAX_IDENTIFIER_LENGTH} characters", field=path)
            count += 1
            forms = {value, value.strip()}
            if kind == "email":
                forms.add(value.strip().lower())
            for form in forms:
                hashes.update(keyed_hash_candidates(form, keys=keys))
                hashes.add("sha256:" + hashlib.sha256(form.encode("utf-8")).hexdigest())
    if count == 0:
        raise IdentifierError("give at least one identifier", field="identifiers")
    if count > MAX_IDENTIFIERS:
        raise IdentifierError(f"at most {MAX_IDENTIFIERS} identifiers", field="identifiers")
    return sorted(hashes)

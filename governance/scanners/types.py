"""The scanner's vocabulary: what a rule says (pattern, action, validator) and what it finds."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

# re._parser/_constants are private but stable across 3.11-3.12; they are only used to
# inspect custom patterns for backtracking hazards, never to match.


class ScanAction(enum.StrEnum):
    """What replaces a finding: a token, the keyed hash, or the value with most of it starred."""

    REPLACE = "replace"
    HASH = "hash"
    MASK = "mask"


ACTIONS = frozenset(action.value for action in ScanAction)

# The group a rule may name to redact only part of its match (e.g. the credential after
# "Bearer ", the password inside a URL); without it the whole match is redacted.
SECRET_GROUP = "secret"  # noqa: S105 - a regex group name, not a credential


@dataclass(frozen=True)
class ScannerRule:
    """One thing to look for in free text and what to put in its place.

    ``validator`` receives the whole match; a match it rejects is left alone. When the
    pattern has a group named ``secret``, only that group is replaced (and reported).

    Two optional speed hints let values skip the rule without running ``pattern``; both
    must be necessary conditions for a match, or the rule will miss things:
    ``prefilter`` is a regex (compiled without ``flags``) that must match somewhere in the
    value; a plain alternation of up to three literals, optionally inside ``(?i:...)``, is
    run as substring tests. ``min_digits`` is the fewest ASCII digits a match contains.
    """

    name: str
    pattern: str
    action: str = ScanAction.REPLACE.value
    replacement: str = ""
    keep_chars: int = 4
    validator: Callable[[str], bool] | None = None
    flags: int = 0
    prefilter: str | None = None
    min_digits: int = 0

    @property
    def token(self) -> str:
        return self.replacement or f"[{self.name}]"


@dataclass(frozen=True)
class Finding:
    """One redacted span: ``text[start:end]`` of the original text, found by ``rule``."""

    rule: str
    start: int
    end: int

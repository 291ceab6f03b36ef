"""A compiled scanner: rules, stages and prefilters ready to run on text."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

# re._parser/_constants are private but stable across 3.11-3.12; they are only used to
# inspect custom patterns for backtracking hazards, never to match.

# --- compiling and scanning ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    name: str
    search: Callable[..., re.Match[str] | None]
    match: Callable[..., re.Match[str] | None]
    prefilter: Callable[[str], object] | None
    prefilter_source: str | None
    min_digits: int
    has_secret: bool
    action: str
    token: str
    keep_chars: int
    validator: Callable[[str], bool] | None


# (index, rule, rule.prefilter, rule.search): one rule to run, in priority order.
_Step = tuple[int, _CompiledRule, Callable[[str], object] | None, Callable[..., object]]
# Distinct candidate sets whose steps a stage keeps; beyond that they are built each time.
_MAX_CANDIDATE_SETS = 1024


@dataclass(frozen=True, slots=True, eq=False)
class _Stage:
    """The rules a text with a given number of digits can meet, and how to gate them."""

    steps: tuple[_Step, ...]  # every such rule (what runs when there is no gate)
    # Gated (ASCII text) only. anchors: the anchor characters where a fragment matched;
    # anchor_masks: per anchor, the rules anchored on it and those of them whose
    # prefilter it proves; solo: (search, rules, rules whose prefilter it is) for the
    # prefilters searched alone. Bit i of a mask is rule i.
    anchors: Callable[[str], list[str]] | None = None
    anchor_masks: dict[str, tuple[int, int]] = field(default_factory=dict)
    solo: tuple[tuple[Callable[[str], object], int, int], ...] = ()
    width: int = 0  # bits in a mask (the last rule index + 1)
    gated: bool = False
    # Steps per (candidates | proven << width) seen: candidates only, proven prefilters
    # dropped.
    by_mask: dict[int, tuple[_Step, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CompiledScanner:
    """Rules compiled once, in priority order, plus the hashing key; opaque to callers."""

    rules: tuple[_CompiledRule, ...]
    key_id: str
    key: str
    # stages[min(digits, len - 1)]: the work for a text with that many ASCII digits.
    stages: tuple[_Stage, ...] = field(default=(), compare=False)
    # For short ASCII text, before counting digits: a search that finds nothing proves no
    # rule can match (see _pregate); None when no such search exists.
    pregate: Callable[[str], object] | None = field(default=None, compare=False)
    # The key's hasher, built once (the hash action).
    hasher: Callable[[str], str] | None = field(default=None, compare=False)
    # Recent texts in which no rule fired (see scan_text).
    cleared: set[int] = field(default_factory=set, compare=False)


# Literal alternations, optionally case-insensitive: "eyJ", "@", "(?i:bearer|basic)".
_LITERALS = re.compile(r"(\(\?i:)?([-\w@:/#=,;<>'\"!%&~ ]+(?:\|[-\w@:/#=,;<>'\"!%&~ ]+)*)(\))?")
_DIGITS = b"0123456789"


def _prefilter_compile(prefilter: str) -> Callable[[str], object]:
    """The cheapest test equivalent to ``re.search(prefilter, value)``.

    ``in`` on str runs at memchr speed and a lower() is one pass, while sre tries every
    alternative at every position (an (?i:) alternation of three words costs ~1 us).
    """
    literal = _LITERALS.fullmatch(prefilter)
    if (
        literal is not None
        and prefilter.isascii()  # str.lower() and re.IGNORECASE agree on ASCII
        and bool(literal.group(1)) == bool(literal.group(3))
    ):
        words = literal.group(2).split("|")
        if len(words) <= 3:
            # Padding with the first word keeps one closure shape without a generator.
            first, second, third = (*words, words[0], words[0])[:3]
            if literal.group(1):
                first, second, third = first.lower(), second.lower(), third.lower()
                return lambda value: (
                    first in (lowered := value.lower()) or second in lowered or third in lowered
                )
            if len(words) == 1:
                return lambda value: first in value
            return lambda value: first in value or second in value or third in value
    return re.compile(prefilter).search


def _count_digits(text: str) -> int:
    # bytes.translate with a delete table is a C loop; counting via str or regex is 5x slower.
    # Only ASCII digits count, matching the [0-9] classes of the rules that use it.
    data = text.encode("utf-8", "surrogatepass")
    return len(data) - len(data.translate(None, _DIGITS))

"""The gate: deciding cheaply, from characters a rule requires, which rules can match a text."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Sequence

# re._parser/_constants are private but stable across 3.11-3.12; they are only used to
# inspect custom patterns for backtracking hazards, never to match.
from re import _constants as _sre
from re import _parser as _sre_parse

from .compiled import _LITERALS, _CompiledRule, _Stage, _Step
from .safety import _ASCII, _REPEATS, _char_test
from .types import ScannerRule

# --- the gate: deciding cheaply which rules can match a text ----------------------------
#
# Most values carry nothing, and a Python loop over every rule's prefilter costs more
# than the regexes. So, at compile time, each rule gets (1) a set of ASCII characters of
# which every text it can match holds one ("@" for e-mail, "J" for "eyJ"), and (2) gate
# fragments: its prefilter rewritten as regexes that each consume one "anchor"
# character. At scan time a short text holding none of the characters of (1) is cleared
# by one character-class search (the pregate); otherwise the digits are counted (for
# min_digits) and one findall over the fragments of the eligible rules returns the
# anchors where a fragment matched, which name the candidate rules; only those run.
# Gates are only applied to ASCII text, where case-insensitive matching cannot reach a
# character outside the sets (sre folds a few non-ASCII letters onto ASCII ones).

# Rough frequency of ASCII characters in log text, to pick the rarest set that must be
# present. Only speed depends on it; unknown characters count as common.
_LOWER_FREQUENCY = dict(
    zip(
        "etaoinshrdlcumwfgypbvkjxqz",
        (12, 9, 8, 7.5, 7, 6.7, 6.3, 6, 6, 4.2, 4, 2.8, 2.8, 2.4, 2.4, 2.2, 2, 2, 1.9, 1.5, 1,
         0.8, 0.15, 0.15, 0.1, 0.07),
        strict=True,
    )
)  # fmt: skip
_CHAR_FREQUENCY: dict[str, float] = {
    **_LOWER_FREQUENCY,
    **{char.upper(): weight / 5 for char, weight in _LOWER_FREQUENCY.items()},
    **dict.fromkeys("0123456789", 2.0),
    " ": 15, ".": 3, "/": 2, "-": 1.5, ",": 1, ":": 1, "_": 0.8, "=": 0.5, "(": 0.4,
    ")": 0.4, "\n": 0.4, "?": 0.3, "&": 0.3, "'": 0.3, '"': 0.3, "+": 0.2, ";": 0.2,
    "%": 0.2, "#": 0.1, "@": 0.1,
}  # fmt: skip
_MAX_SET = 40  # larger sets gate almost nothing; not worth carrying


def _set_cost(chars: frozenset[str]) -> float:
    return sum(_CHAR_FREQUENCY.get(char, 1.0) for char in chars)


def _ascii_matches(op: object, av: object, ignorecase: bool) -> frozenset[str] | None:
    """The ASCII characters a single-character node matches (a superset), or None."""
    if ignorecase:
        # sre folds case with Unicode tables (KELVIN SIGN matches "k"); only nodes made of
        # ASCII characters are safe to fold with str.lower/upper.
        items = av if op is _sre.IN else [(op, av)]
        for item_op, item_av in items:  # type: ignore[union-attr]
            if item_op in (_sre.LITERAL, _sre.NOT_LITERAL) and item_av > 127:  # type: ignore[operator]
                return None
            if item_op is _sre.RANGE and item_av[1] > 127:  # type: ignore[index]
                return None
    test = _char_test(op, av)
    if test is None:
        return None
    if ignorecase:
        return frozenset(
            char for char in _ASCII if test(char) or test(char.lower()) or test(char.upper())
        )
    return frozenset(char for char in _ASCII if test(char))


def _required_chars(sub: _sre_parse.SubPattern, ignorecase: bool) -> frozenset[str] | None:
    """ASCII characters of which any ASCII text ``sub`` matches in holds one, or None."""
    best: frozenset[str] | None = None
    for op, av in sub:
        found: frozenset[str] | None = None
        if op in (_sre.LITERAL, _sre.IN):
            found = _ascii_matches(op, av, ignorecase)
        elif op in (*_REPEATS, _sre.POSSESSIVE_REPEAT):
            low, _, body = av  # type: ignore[misc]
            if low >= 1:
                found = _required_chars(body, ignorecase)
        elif op is _sre.SUBPATTERN:
            _, add_flags, del_flags, body = av  # type: ignore[misc]
            scoped = (ignorecase or bool(add_flags & re.IGNORECASE)) and not (
                del_flags & re.IGNORECASE
            )
            found = _required_chars(body, scoped)
        elif op is _sre.ATOMIC_GROUP:
            found = _required_chars(av, ignorecase)  # type: ignore[arg-type]
        elif op is _sre.ASSERT:
            # A positive lookaround also needs its characters in the text.
            found = _required_chars(av[1], ignorecase)  # type: ignore[index]
        elif op is _sre.BRANCH:
            union: set[str] = set()
            for branch in av[1]:  # type: ignore[index]
                required = _required_chars(branch, ignorecase)
                if required is None:
                    union = set()
                    break
                union |= required
            found = frozenset(union) or None
        if (
            found
            and len(found) <= _MAX_SET
            and (best is None or _set_cost(found) < _set_cost(best))
        ):
            best = found
    return best


@functools.lru_cache(maxsize=1024)
def _pattern_required_chars(pattern: str, flags: int) -> frozenset[str] | None:
    # A pure function of the pattern: plans are compiled again on every policy change, in
    # every process, and this walk cost ~5 ms per pattern (a third of a plan's compile).
    try:
        parsed = _sre_parse.parse(pattern, flags)
    except (re.error, RecursionError, OverflowError):
        return None
    return _required_chars(parsed, bool(parsed.state.flags & re.IGNORECASE))


def _rule_required_chars(rule: ScannerRule) -> frozenset[str] | None:
    """The cheapest set a match of ``rule`` needs: from its pattern or its prefilter."""
    candidates = [_pattern_required_chars(rule.pattern, rule.flags)]
    if rule.prefilter:
        # The prefilter is a necessary condition too (compiled without flags).
        candidates.append(_pattern_required_chars(rule.prefilter, 0))
    found = [chars for chars in candidates if chars]
    return min(found, key=_set_cost) if found else None


def _anchored_literal(word: str, ignorecase: bool) -> list[tuple[str, str]]:
    """``word`` as (anchor, regex): led by its rarest character, consuming only that."""
    at = min(range(len(word)), key=lambda index: _CHAR_FREQUENCY.get(word[index], 1.0))
    around = (f"(?<={re.escape(word[: at + 1])})" if at else "") + (
        f"(?={re.escape(word[at + 1 :])})" if at + 1 < len(word) else ""
    )
    anchor = word[at]
    if not ignorecase:
        return [(anchor, re.escape(anchor) + around)]
    if around:
        around = f"(?i:{around})"
    return [(case, re.escape(case) + around) for case in dict.fromkeys(anchor.swapcase() + anchor)]


def _first_literals(pattern: str) -> set[str] | None:
    """The first characters of ``pattern``'s alternatives if each starts with a literal.

    None also when ``pattern`` sets a global flag (e.g. a leading ``(?i)``): its literals
    would not match as written, and it could not be nested in another pattern.
    """
    parsed = _sre_parse.parse(pattern)
    if parsed.state.flags & ~(re.UNICODE | re.ASCII):
        return None
    branches = parsed[0][1][1] if len(parsed) == 1 and parsed[0][0] is _sre.BRANCH else [parsed]
    firsts = set()
    for branch in branches:
        if not branch or branch[0][0] is not _sre.LITERAL:
            return None
        firsts.add(chr(branch[0][1]))
    return firsts


def _gate_fragments(rule: ScannerRule) -> list[tuple[str | None, str]] | None:
    """Regexes of which one must match in any ASCII text ``rule`` can match, or None.

    Each is (anchor, regex), the regex consuming just the anchor character, or (None,
    regex) for a prefilter that does not start with literals (then its own search).
    From the prefilter when there is one, else from the characters the pattern cannot
    match without.
    """
    if rule.prefilter:
        literal = _LITERALS.fullmatch(rule.prefilter)
        if (
            literal is not None
            and rule.prefilter.isascii()
            and bool(literal.group(1)) == bool(literal.group(3))
        ):
            return [
                fragment
                for word in literal.group(2).split("|")
                for fragment in _anchored_literal(word, bool(literal.group(1)))
            ]
        firsts = _first_literals(rule.prefilter)
        if firsts is None or re.compile(rule.prefilter).groups:
            return [(None, rule.prefilter)]
        # At a position holding ``first``, the prefilter matches there.
        return [
            (first, f"{re.escape(first)}(?<=(?={rule.prefilter}){re.escape(first)})")
            for first in sorted(firsts)
        ]
    chars = _pattern_required_chars(rule.pattern, rule.flags)
    if chars is None:
        return None
    return [(char, re.escape(char)) for char in sorted(chars)]


# Longer texts nearly always hold a digit or a trigger character; there the pregate
# would be one more pass over the text for nothing.
_PREGATE_MAX_LENGTH = 48
# Longer texts skip the gate too: its findall returns every anchor character in the
# text, a list as long as the text for a value made of them (64 KiB of ":" cost 9 ms),
# while each rule's own prefilter stops at its first hit.
_GATE_MAX_LENGTH = 4096


def _pregate(rules: Sequence[ScannerRule]) -> Callable[[str], object] | None:
    """One character class: the trigger characters of the rules without min_digits and,
    if any rule has min_digits, the digits (such a rule needs one). An ASCII text holding
    none of them can match no rule, and is cleared without counting its digits.
    """
    members: set[str] = set()
    for rule in rules:
        if rule.min_digits:
            members.update("0123456789")
            continue
        chars = _rule_required_chars(rule)
        if chars is None:
            return None
        members |= chars
    if not members:
        return None
    return re.compile("[" + "".join(re.escape(char) for char in sorted(members)) + "]").search


def _stages(rules: Sequence[ScannerRule], compiled: Sequence[_CompiledRule]) -> tuple[_Stage, ...]:
    """One stage per digit count, 0 up to the largest min_digits (which covers the rest).

    A stage holds the rules a text with that many ASCII digits can meet and, if it can
    be gated, one findall over every anchored fragment of those rules (it returns the
    anchor characters where one matched) plus a search per other prefilter. For an
    ASCII text the candidates are then the rules anchored on a returned character or
    whose own search found something; no candidate, no rule can match.
    """
    try:
        fragments = [_gate_fragments(rule) for rule in rules]
    except (re.error, RecursionError, OverflowError):
        fragments = [None] * len(rules)
    top = max((rule.min_digits for rule in rules), default=0)
    stages: list[_Stage] = []
    cache: dict[tuple[int, ...], _Stage] = {}
    for digits in range(top + 1):
        eligible = tuple(index for index, rule in enumerate(rules) if rule.min_digits <= digits)
        if eligible not in cache:
            steps = tuple(
                (index, compiled[index], compiled[index].prefilter, compiled[index].search)
                for index in eligible
            )
            cache[eligible] = _Stage(steps=steps)
            # A prefilter that cannot join others leaves the stage ungated.
            with contextlib.suppress(re.error, RecursionError, OverflowError):
                if all(fragments[index] is not None for index in eligible):
                    cache[eligible] = _gated_stage(
                        steps, {index: fragments[index] or [] for index in eligible}
                    )
        stages.append(cache[eligible])
    return tuple(stages)


def _gated_stage(
    steps: tuple[_Step, ...], fragments: dict[int, list[tuple[str | None, str]]]
) -> _Stage:
    anchored: dict[str, None] = {}
    anchor_rules: dict[str, int] = {}
    solo: dict[str, tuple[int, int]] = {}
    for index, rule, _, _ in steps:
        bit = 1 << index
        for anchor, regex in fragments[index]:
            if anchor is None:
                rules, satisfied = solo.get(regex, (0, 0))
                if fragments[index] == [(None, rule.prefilter_source)]:
                    satisfied |= bit  # the search is the prefilter itself
                solo[regex] = (rules | bit, satisfied)
            else:
                anchored[regex] = None
                anchor_rules[anchor] = anchor_rules.get(anchor, 0) | bit
    # An anchor only one rule's fragments use proves that rule's prefilter matched (its
    # fragments come from the prefilter whenever it has one).
    anchor_masks = {
        anchor: (rules, rules if rules & (rules - 1) == 0 else 0)
        for anchor, rules in anchor_rules.items()
    }
    return _Stage(
        steps=steps,
        anchors=re.compile("|".join(anchored)).findall if anchored else None,
        anchor_masks=anchor_masks,
        solo=tuple(
            (re.compile(regex).search, rules, satisfied)
            for regex, (rules, satisfied) in solo.items()
        ),
        width=len(steps) and steps[-1][0] + 1,
        gated=True,
    )

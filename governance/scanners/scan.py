"""Compile rules into a scanner and scan text with a per-value cost bound; redact what it finds."""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Sequence

# re._parser/_constants are private but stable across 3.11-3.12; they are only used to
# inspect custom patterns for backtracking hazards, never to match.
from ..hashing import keyed_hash, keyed_hasher
from .builtin import DEFAULT_SENSITIVE_KEY_PATTERN
from .compiled import (
    _DIGITS,
    _MAX_CANDIDATE_SETS,
    CompiledScanner,
    _CompiledRule,
    _count_digits,
    _prefilter_compile,
    _Stage,
)
from .gate import _GATE_MAX_LENGTH, _PREGATE_MAX_LENGTH, _pregate, _stages
from .types import ACTIONS, SECRET_GROUP, Finding, ScanAction, ScannerRule

# How many cleared texts a scanner remembers (see scan_text); 0 remembers none. Small
# on purpose: it is for values that recur within a few hundred others (user agents,
# URLs, attribute values), and a one-off value is forgotten soon after. Only each
# text's hash() is kept (SipHash, keyed per process), never the text: a raw value
# must not outlive its request, even in memory.
_MAX_CLEARED = 256
# Longer texts are not remembered (memory; they seldom recur).
_MAX_CLEARED_LENGTH = 512

# How many shorter matches to try when a validator rejects one (see _shrink).
_MAX_SHRINK = 8

# The per-value cost bound: how many candidate matches (each one a regex match handed to
# Python, validated or not, shrink attempts included) one text may cost, over all rules.
# A candidate costs at most a few microseconds, so a text costs at most ~1 ms of Python
# work on top of the rules' linear regex passes. When a text runs out, the rest of it,
# from the candidate that found the budget empty, is treated as one finding of that
# candidate's rule (fail safe: never let through unscanned); see _collect. Ordinary
# values hold a handful of candidates; running out takes hundreds of card-like numbers,
# addresses or e-mails in one value.
MAX_CANDIDATES_PER_TEXT = 256


def scanner_compile(rules: Sequence[ScannerRule], *, key_id: str, key: str) -> CompiledScanner:
    """Compile ``rules`` (earlier rules win overlaps) with the key used by the hash action."""
    compiled = []
    for rule in rules:
        if rule.action not in ACTIONS:
            raise ValueError(f"scanner rule {rule.name!r}: unknown action {rule.action!r}")
        if rule.keep_chars < 0:
            raise ValueError(f"scanner rule {rule.name!r}: keep_chars must be >= 0")
        regex = re.compile(rule.pattern, rule.flags)
        compiled.append(
            _CompiledRule(
                name=rule.name,
                search=regex.search,
                match=regex.match,
                prefilter=_prefilter_compile(rule.prefilter) if rule.prefilter else None,
                prefilter_source=rule.prefilter or None,
                min_digits=rule.min_digits,
                has_secret=SECRET_GROUP in regex.groupindex,
                action=rule.action,
                token=rule.token,
                keep_chars=rule.keep_chars,
                validator=rule.validator,
            )
        )
    return CompiledScanner(
        rules=tuple(compiled),
        key_id=key_id,
        key=key,
        stages=_stages(rules, compiled),
        pregate=_pregate(rules),
        hasher=keyed_hasher(key_id=key_id, key=key),
    )


def _shrink(
    rule: _CompiledRule, text: str, match: re.Match[str], limit: int
) -> tuple[re.Match[str] | None, int]:
    """A shorter match at the same start that the validator accepts, if any, and the
    number of matches tried for it (at most ``limit``, at most _MAX_SHRINK).

    Only cuts just before a non-alphanumeric character are tried, so a lookahead at the
    cut sees what it would see in the full text: "4111 1111 1111 1111 123" (card then
    CVV) yields the card, while a 17-digit id never yields a 16-digit "card".
    """
    start, end = match.span()
    limit = min(limit, _MAX_SHRINK)
    tries = 0
    cut = end - 1
    while cut > start and tries < limit:
        if text[cut - 1].isalnum() and not (text[cut].isalnum() or text[cut] == "_"):
            tries += 1
            shorter = rule.match(text, start, cut)
            if shorter is not None and shorter.end() > start:
                if rule.validator is None or rule.validator(shorter.group()):
                    return shorter, tries
                cut = min(cut, shorter.end())
        cut -= 1
    return None, tries


def _overlap(hits: list[tuple[int, int, int]], start: int, end: int) -> tuple[int, int] | None:
    """An accepted span overlapping [start, end), or None.

    ``hits`` is sorted and its spans do not overlap, so only the spans either side of
    ``start`` can (a bisection: a text with thousands of findings stays linear).
    """
    at = bisect.bisect_left(hits, (start,))
    if at and hits[at - 1][1] > start:
        return hits[at - 1][0], hits[at - 1][1]
    if at < len(hits) and hits[at][0] < end:
        return hits[at][0], hits[at][1]
    return None


def _cut_tail(accepted: list[tuple[int, int, int]], start: int, length: int, index: int) -> int:
    """Make ``text[start:]`` (from the start of any span it cuts through) one finding of
    rule ``index``, dropping the spans it covers; return where the tail starts."""
    at = bisect.bisect_left(accepted, (start,))
    if at and accepted[at - 1][1] > start:
        at -= 1
        start = accepted[at][0]
    del accepted[at:]
    accepted.append((start, length, index))
    return start


def _find(scanner: CompiledScanner, text: str) -> list[tuple[int, int, int]] | None:
    """Accepted (start, end, rule index) spans, sorted, non-overlapping.

    At most MAX_CANDIDATES_PER_TEXT candidate matches are handled in Python; past that,
    the rest of the text is one finding (see _collect).
    """
    pregate = scanner.pregate
    if (
        pregate is not None
        and len(text) <= _PREGATE_MAX_LENGTH
        and text.isascii()
        and pregate(text) is None
    ):
        return None
    return _find_gated(scanner, text)


def _find_gated(scanner: CompiledScanner, text: str) -> list[tuple[int, int, int]] | None:
    """_find once the pregate has let ``text`` through (or was not applied)."""
    stages = scanner.stages
    top = len(stages) - 1
    if top > 0:
        # bytes.translate with a delete table is a C loop (see _count_digits).
        data = text.encode("utf-8", "surrogatepass")
        digits = len(data) - len(data.translate(None, _DIGITS))
        stage = stages[digits if digits < top else top]
    elif top == 0:
        stage = stages[0]
    else:  # built without scanner_compile: no gate, min_digits checked here
        digits = _count_digits(text)
        stage = _Stage(
            steps=tuple(
                (index, rule, rule.prefilter, rule.search)
                for index, rule in enumerate(scanner.rules)
                if rule.min_digits <= digits
            )
        )
    steps = stage.steps
    if stage.gated and len(text) <= _GATE_MAX_LENGTH and text.isascii():
        mask = proven = 0
        if stage.anchors is not None:
            anchor_masks = stage.anchor_masks
            for anchor in set(stage.anchors(text)):
                rules, satisfied = anchor_masks[anchor]
                mask |= rules
                proven |= satisfied
        for search, rules, satisfied in stage.solo:
            if search(text) is not None:
                mask |= rules
                proven |= satisfied
        if not mask:
            return None
        key = mask | proven << stage.width
        steps = stage.by_mask.get(key)  # type: ignore[assignment]
        if steps is None:
            steps = tuple(
                (index, rule, None if proven >> index & 1 else prefilter, search)
                for index, rule, prefilter, search in stage.steps
                if mask >> index & 1
            )
            if len(stage.by_mask) < _MAX_CANDIDATE_SETS:
                stage.by_mask[key] = steps
    accepted: list[tuple[int, int, int]] | None = None
    budget = MAX_CANDIDATES_PER_TEXT
    # Where the scanned text ends: the length, or the start of the fail-safe tail.
    end = len(text)
    for index, rule, prefilter, search in steps:
        if prefilter is not None and not prefilter(text):
            continue
        match = search(text, 0, end)
        if match is not None:
            if accepted is None:
                accepted = []
            budget, end = _collect(rule, index, text, match, accepted, budget, end)
    return accepted


def _collect(
    rule: _CompiledRule,
    index: int,
    text: str,
    match: re.Match[str] | None,
    accepted: list[tuple[int, int, int]],
    budget: int,
    end: int,
) -> tuple[int, int]:
    """Add the rule's acceptable, non-overlapping matches in ``text[:end]``, starting from
    ``match``, keeping ``accepted`` sorted; return the budget left and the new ``end``.

    A candidate met with no budget left makes the rest of the text, from its start, one
    finding of this rule (the text after it is not looked at, by any rule): a text
    crafted to cost unbounded validation is redacted, not let through.
    """
    length = len(text)
    validator = rule.validator
    has_secret = rule.has_secret
    search = rule.search
    while match is not None:
        start = match.start()
        if budget <= 0:
            return 0, _cut_tail(accepted, start, length, index)
        budget -= 1
        pos = start + 1
        if match.end() == start:  # zero-width matches redact nothing
            pass
        elif validator is not None and not validator(match.group()):
            match, tries = _shrink(rule, text, match, budget)
            budget -= tries
            # Without a shorter valid match, a later start may still hold one
            # ("2024 4111 1111 1111 1111"), so the search resumes one character on.
        if match is not None and match.end() > start:
            span_start, span_end = match.span(SECRET_GROUP) if has_secret else match.span()
            blocker = _overlap(accepted, span_start, span_end) if accepted else None
            if blocker is not None:
                # A higher-priority finding owns this text. A whole-match rule cannot
                # fit inside it, so skip past it; otherwise retry one character on.
                if not has_secret and start >= blocker[0]:
                    pos = blocker[1]
            elif span_end > span_start:
                bisect.insort(accepted, (span_start, span_end, index))
                pos = match.end()
        if pos >= end:
            break  # a match starting at the end would be empty
        match = search(text, pos, end)
    return budget, end


_REPLACE = ScanAction.REPLACE.value
_HASH = ScanAction.HASH.value


def _redact(scanner: CompiledScanner, rule: _CompiledRule, value: str) -> str:
    action = rule.action
    if action == _REPLACE:
        return rule.token
    if action == _HASH:
        if scanner.hasher is not None:
            return scanner.hasher(value)
        return keyed_hash(value, key_id=scanner.key_id, key=scanner.key)
    # MASK. A value no longer than keep_chars is masked whole: keeping it would reveal it.
    keep = rule.keep_chars if len(value) > rule.keep_chars else 0
    return "*" * (len(value) - keep) + value[len(value) - keep :]


def scan_findings(scanner: CompiledScanner, text: str) -> tuple[Finding, ...]:
    """Non-overlapping findings in ``text``, ordered by position (offsets into ``text``)."""
    accepted = _find(scanner, text)
    if not accepted:
        return ()
    return tuple(
        Finding(rule=scanner.rules[index].name, start=start, end=end)
        for start, end, index in sorted(accepted)
    )


def scan_text(scanner: CompiledScanner, text: str) -> tuple[str, tuple[str, ...]]:
    """Redact ``text``; return it with the names of the rules that fired (text order, once).

    When nothing fires the very same ``str`` object comes back with ``()``, so callers can
    test ``result is value``; most such values cost one or two searches. Texts in which
    nothing fired are remembered by their hash (a bounded set, emptied when full): user
    agents, URLs and attribute values repeat across events, and a repeat then costs a
    set lookup. Only texts no rule fired on are remembered, never one that held a finding.
    """
    cleared = scanner.cleared
    text_hash = hash(text)
    if text_hash in cleared:
        return text, ()
    pregate = scanner.pregate
    if not (
        pregate is not None
        and len(text) <= _PREGATE_MAX_LENGTH
        and text.isascii()
        and pregate(text) is None
    ):
        accepted = _find_gated(scanner, text)
        if accepted:
            return _apply_findings(scanner, text, accepted)
    if _MAX_CLEARED and len(text) <= _MAX_CLEARED_LENGTH:
        if len(cleared) >= _MAX_CLEARED:
            cleared.clear()
        cleared.add(text_hash)
    return text, ()


def _apply_findings(
    scanner: CompiledScanner, text: str, accepted: list[tuple[int, int, int]]
) -> tuple[str, tuple[str, ...]]:
    rules = scanner.rules
    if len(accepted) == 1:
        ((start, end, index),) = accepted
        rule = rules[index]
        return text[:start] + _redact(scanner, rule, text[start:end]) + text[end:], (rule.name,)
    accepted.sort()
    pieces = []
    fired: dict[str, None] = {}
    cursor = 0
    # Offsets all refer to the original text, so the output is assembled left to right
    # from untouched slices and replacements; nothing is shifted by earlier edits.
    for start, end, index in accepted:
        rule = rules[index]
        pieces.append(text[cursor:start])
        pieces.append(_redact(scanner, rule, text[start:end]))
        fired[rule.name] = None
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces), tuple(fired)


def sensitive_key_matcher(pattern: str = DEFAULT_SENSITIVE_KEY_PATTERN) -> Callable[[str], bool]:
    """A predicate telling whether a map key names a secret (``pattern`` searched anywhere).

    Matching is by substring on purpose: ``db_password``, ``X-Api-Key`` and ``authToken``
    all match, at the price of false positives such as ``token_count`` or ``passenger``;
    a hidden harmless value is cheaper than a stored secret. Keys repeat heavily across
    events, so answers are cached.
    """
    search = re.compile(pattern).search

    @functools.lru_cache(maxsize=4096)
    def is_sensitive(key: str) -> bool:
        return search(key) is not None

    return is_sensitive

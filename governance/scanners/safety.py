"""Validating custom patterns: refuse regexes that could backtrack catastrophically."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

# re._parser/_constants are private but stable across 3.11-3.12; they are only used to
# inspect custom patterns for backtracking hazards, never to match.
from re import _constants as _sre
from re import _parser as _sre_parse

# --- validating custom patterns --------------------------------------------------------

_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT)
# Probes for zero-width matches that only appear next to some character.
_EMPTY_PROBES = ("", "a", "aa", "0", " ", "-", "\n", "a0 -_.@:/")
_ASCII = [chr(code) for code in range(128)]


def _char_test(op: object, av: object) -> Callable[[str], bool] | None:
    """A predicate for a single-character node, or None if the node is not one."""
    if op is _sre.LITERAL:
        return lambda char, code=av: ord(char) == code
    if op is _sre.NOT_LITERAL:
        return lambda char, code=av: ord(char) != code
    if op is _sre.ANY:
        return lambda char: char != "\n"
    if op is _sre.IN:
        members = "".join(char for char in _ASCII if _in_class(av, char))  # type: ignore[arg-type]
        return lambda char, members=members: char in members
    return None


_CATEGORY_TESTS: dict[object, Callable[[str], bool]] = {
    _sre.CATEGORY_DIGIT: str.isdigit,
    _sre.CATEGORY_NOT_DIGIT: lambda char: not char.isdigit(),
    _sre.CATEGORY_SPACE: str.isspace,
    _sre.CATEGORY_NOT_SPACE: lambda char: not char.isspace(),
    _sre.CATEGORY_WORD: lambda char: char.isalnum() or char == "_",
    _sre.CATEGORY_NOT_WORD: lambda char: not (char.isalnum() or char == "_"),
}


def _in_class(items: list[tuple[object, object]], char: str) -> bool:
    negate = False
    hit = False
    for op, av in items:
        if op is _sre.NEGATE:
            negate = True
        elif op is _sre.LITERAL:
            hit = hit or ord(char) == av
        elif op is _sre.RANGE:
            low, high = av  # type: ignore[misc]
            hit = hit or low <= ord(char) <= high
        elif op is _sre.CATEGORY:
            test = _CATEGORY_TESTS.get(av)
            hit = hit or (test(char) if test else True)
        else:
            hit = True  # unknown item: assume it matches, which errs towards rejecting
    return hit != negate


def _children(op: object, av: object) -> Iterator[_sre_parse.SubPattern]:
    if op in _REPEATS:
        yield av[2]  # type: ignore[index]
    elif op is _sre.SUBPATTERN:
        yield av[3]  # type: ignore[index]
    elif op is _sre.BRANCH:
        yield from av[1]  # type: ignore[index]
    elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
        yield av[1]  # type: ignore[index]
    elif op is _sre.GROUPREF_EXISTS:
        yield av[1]  # type: ignore[index]
        if av[2] is not None:  # type: ignore[index]
            yield av[2]  # type: ignore[index]
    # Atomic groups and possessive repeats never backtrack into themselves: not descended.


def _chars_consumed(sub: _sre_parse.SubPattern) -> Callable[[str], bool]:
    """Over-approximation of the characters ``sub`` can consume."""
    tests: list[Callable[[str], bool]] = []
    for op, av in sub:
        test = _char_test(op, av)
        if test is not None:
            tests.append(test)
        elif op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):
            continue
        else:
            children = list(_children(op, av))
            if not children:
                return lambda char: True  # back-references and the like: anything
            tests.extend(_chars_consumed(child) for child in children)
    return lambda char: any(test(char) for test in tests)


def _variable_repeats(sub: _sre_parse.SubPattern) -> Iterator[_sre_parse.SubPattern]:
    """Bodies of repeats inside ``sub`` that can match a varying number of times (>1)."""
    for op, av in sub:
        if op in _REPEATS:
            low, high, body = av  # type: ignore[misc]
            if high > 1 and high != low:
                yield body
        for child in _children(op, av):
            yield from _variable_repeats(child)


def _first_chars(sub: _sre_parse.SubPattern) -> Callable[[str], bool]:
    for op, av in sub:
        test = _char_test(op, av)
        if test is not None:
            return test
        if op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):
            continue
        if op is _sre.SUBPATTERN:
            return _first_chars(av[3])  # type: ignore[index]
        break
    return lambda char: True


def _sequence(sub: _sre_parse.SubPattern) -> Iterator[tuple[object, object]]:
    """The nodes of ``sub`` in order, with plain groups spliced in (same language)."""
    for op, av in sub:
        if op is _sre.SUBPATTERN:
            yield from _sequence(av[3])  # type: ignore[index]
        else:
            yield op, av


def _all_children(op: object, av: object) -> Iterator[_sre_parse.SubPattern]:
    """Like _children, but also into atomic groups and possessive repeats (still checked)."""
    if op is _sre.ATOMIC_GROUP:
        yield av  # type: ignore[misc]
    elif op is _sre.POSSESSIVE_REPEAT:
        yield av[2]  # type: ignore[index]
    else:
        yield from _children(op, av)


def _check_backtracking(sub: _sre_parse.SubPattern, *, ignorecase: bool) -> None:
    for op, av in sub:
        if op in _REPEATS and av[1] > 1:  # type: ignore[index]
            body = av[2]  # type: ignore[index]
            inner = list(_variable_repeats(body))
            if inner:
                # Safe only if each iteration holds a fixed character none of the inner
                # repeats can eat, e.g. (?:\.\w+)+ or (\d{1,3}\.){3}: then iterations cannot
                # trade characters with each other.
                eaters = [_chars_consumed(child) for child in inner]
                delimiters = [
                    test for o, a in _sequence(body) if (test := _char_test(o, a)) is not None
                ]
                if ignorecase:  # then a delimiter matches, and is eaten, in either case
                    delimiters = [
                        lambda char, test=test: test(char.lower()) or test(char.upper())
                        for test in delimiters
                    ]
                    eaters = [
                        lambda char, eat=eat: eat(char.lower()) or eat(char.upper())
                        for eat in eaters
                    ]
                if not any(
                    not any(eat(char) for eat in eaters for char in _ASCII if delim(char))
                    for delim in delimiters
                ):
                    raise ValueError(
                        "pattern nests a variable quantifier inside another, e.g. (a+)+ or "
                        "(\\w+\\s?)*; this can backtrack catastrophically"
                    )
            for child_op, child_av in _sequence(body):
                if child_op is _sre.BRANCH:
                    firsts = [_first_chars(alternative) for alternative in child_av[1]]
                    for i, first in enumerate(firsts):
                        for other in firsts[i + 1 :]:
                            if any(first(char) and other(char) for char in _ASCII):
                                raise ValueError(
                                    "pattern repeats an alternation whose branches can start "
                                    "with the same character, e.g. (a|aa)*; this can "
                                    "backtrack catastrophically"
                                )
        for child in _all_children(op, av):
            _check_backtracking(child, ignorecase=ignorecase)


def validate_custom_pattern(pattern: str, *, max_length: int = 500) -> None:
    """Raise ``ValueError`` if ``pattern`` is unfit for a custom scanner rule.

    Rejected: empty; longer than ``max_length``; not compiling; able to match the empty
    string (checked on a few probe strings); and the cheaply detectable catastrophic-
    backtracking shapes: a repeated group containing a variable quantifier, such as
    ``(a+)+``, ``(.*)*`` or ``(\\w+\\s?)*``, unless every iteration contains a fixed character
    the inner quantifiers cannot match (``(?:\\.\\w+)+`` is fine), and a repeated alternation
    whose branches can begin with the same character (``(a|aa)*``; this also rejects some
    safe patterns such as ``(a|ab)+``). An outer possessive quantifier or atomic group is
    exempt. Not detected: polynomial blow-ups from adjacent overlapping quantifiers
    (``\\d+\\d+\\d+x``) and back-references; keep custom patterns anchored on literal text
    where possible. Messages never repeat the pattern, which may itself contain sample data.
    """
    if not pattern or not pattern.strip():
        raise ValueError("pattern is empty")
    if len(pattern) > max_length:
        raise ValueError(f"pattern is longer than {max_length} characters")
    try:
        compiled = re.compile(pattern)
        parsed = _sre_parse.parse(pattern)
    except re.error as error:
        raise ValueError(f"pattern does not compile: {error.msg} at position {error.pos}") from None
    except (RecursionError, OverflowError):
        raise ValueError("pattern is too deeply nested") from None
    for probe in _EMPTY_PROBES:
        if any(match.end() == match.start() for match in compiled.finditer(probe)):
            raise ValueError("pattern can match the empty string")
    # Inline (?i) anywhere, scoped or global, is treated as applying everywhere: cheap and
    # errs towards rejecting.
    ignorecase = re.search(r"\(\?[aiLmsux-]*i", pattern) is not None
    _check_backtracking(parsed, ignorecase=ignorecase)

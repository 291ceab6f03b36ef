"""Content scanners: find personal data and secrets inside free text and redact it at ingest."""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

# re._parser/_constants are private but stable across 3.11-3.12; they are only used to
# inspect custom patterns for backtracking hazards, never to match.
from re import _constants as _sre
from re import _parser as _sre_parse

from .hashing import keyed_hash


class ScanAction(enum.StrEnum):
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
    ``prefilter`` is an optional cheap regex that must match somewhere in a value for
    ``pattern`` to possibly match; values that fail it skip the rule entirely.
    """

    name: str
    pattern: str
    action: str = ScanAction.REPLACE.value
    replacement: str = ""
    keep_chars: int = 4
    validator: Callable[[str], bool] | None = None
    flags: int = 0
    prefilter: str | None = None

    @property
    def token(self) -> str:
        return self.replacement or f"[{self.name}]"


@dataclass(frozen=True)
class Finding:
    rule: str
    start: int
    end: int


# --- validators ------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """Luhn (mod 10) check; spaces and dashes are ignored, anything else fails."""
    digits = digits.replace(" ", "").replace("-", "")
    if len(digits) < 2 or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


# ISO 13616 lengths from the SWIFT IBAN registry. Unknown country codes are rejected: the
# registry is the whole set of IBAN countries, and guessing widens false positives.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27,
    "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip

_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]+")


def iban_valid(candidate: str) -> bool:
    """ISO 13616: known country, that country's length, and the mod-97 check equals 1."""
    iban = candidate.replace(" ", "").upper()
    if not iban.isascii() or not _IBAN_SHAPE.fullmatch(iban):
        return False
    if IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    # int(c, 36) maps 0-9 to 0-9 and A-Z to 10-35, exactly the ISO 7064 letter encoding.
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _card_valid(match: str) -> bool:
    digits = match.replace(" ", "").replace("-", "")
    # Issuer numbers start 2-6 (Mastercard 2/5, Amex/Diners/JCB 3, Visa 4, Discover/
    # UnionPay/Maestro 6); this keeps epoch-millisecond timestamps (17...) and most
    # numeric ids out, which Luhn alone would pass one time in ten.
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits)


def _ipv4_valid(match: str) -> bool:
    return all(int(octet) <= 255 for octet in match.split("."))


def _ipv6_valid(match: str) -> bool:
    if match == "::":  # bare "::" is far likelier to be punctuation (C++, Perl) than an address
        return False
    try:
        ipaddress.IPv6Address(match)
    except ValueError:
        return False
    return True


_CREDENTIAL_TAIL = re.compile(r"[A-Za-z0-9\-._~+/]+=*\Z")


def _token_like(secret: str) -> bool:
    # Opaque tokens are random: they carry digits or mixed case, or are long. This keeps
    # prose such as "bearer instruments" or "Basic plan" from being redacted.
    secret = secret.rstrip("=")
    if len(secret) < 8:
        return False
    if len(secret) >= 16 or any(char.isdigit() for char in secret):
        return True
    return any(char.isupper() for char in secret[1:]) and any(char.islower() for char in secret)


def _basic_valid(secret: str) -> bool:
    # A Basic credential is base64("user:password"); anything else is just a word.
    try:
        decoded = base64.b64decode(secret + "=" * (-len(secret) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    text = decoded.decode("utf-8", errors="replace")
    return ":" in text and text.isprintable()


def _credential_valid(match: str) -> bool:
    tail = _CREDENTIAL_TAIL.search(match)
    if tail is None:
        return False
    if match[:5].lower() == "basic":
        return _basic_valid(tail.group())
    return _token_like(tail.group())


# --- built-in rules --------------------------------------------------------------------

_H = "[0-9A-Fa-f]{1,4}"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_V4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_IPV6_FORMS = "|".join(
    [
        rf"(?:{_H}:){{7}}{_H}",
        rf"(?:{_H}:){{6}}{_V4}",
        *(rf"(?:{_H}:){{1,{left}}}(?::{_H}){{1,{7 - left}}}" for left in range(6, 0, -1)),
        rf"(?:{_H}:){{1,5}}:{_V4}",
        rf"::(?:{_H}:){{0,5}}{_V4}",
        rf"(?:{_H}:){{1,7}}:",
        rf":(?::{_H}){{1,7}}",
        "::",
    ]
)
# Not glued to a word on the left; on the right, not followed by more of an address
# (another hex group or a dotted quad), so the longest form wins over "fe80::" + "1".
_IPV6 = (
    rf"(?<![0-9A-Za-z_.])(?:{_IPV6_FORMS})(?:%[0-9A-Za-z_.~-]{{1,32}})?"
    rf"(?![0-9A-Za-z_]|:{_H}(?![0-9A-Za-z_])|::|\.\d)"
)

_IBAN_BY_LENGTH: dict[int, list[str]] = {}
for _country, _length in sorted(IBAN_LENGTHS.items()):
    _IBAN_BY_LENGTH.setdefault(_length, []).append(_country)
# One branch per length so the count is exact: a grouped IBAN followed by " EUR" or by
# another number stops at the right place instead of swallowing its neighbour.
_IBAN = (
    r"(?<![A-Za-z0-9])(?:"
    + "|".join(
        rf"(?:{'|'.join(countries)})[0-9]{{2}}(?: ?[A-Z0-9]){{{length - 4}}}"
        for length, countries in sorted(_IBAN_BY_LENGTH.items())
    )
    + r")(?![A-Za-z0-9])"
)

_TOKEN68 = r"[A-Za-z0-9\-._~+/]+=*"

BUILTIN_RULES: tuple[ScannerRule, ...] = (
    ScannerRule(
        name="private_key",
        # A block cut short (truncated log line) is still a key: redact to the end.
        pattern=(
            r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
            r"(?:-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|\Z)"
        ),
        prefilter="-----BEGIN",
    ),
    ScannerRule(
        name="jwt",
        # JWS (3 segments) or JWE (5); the header is base64url JSON, hence "eyJ".
        pattern=(
            r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"
            r"(?:\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)?"
        ),
        prefilter="eyJ",
    ),
    ScannerRule(
        name="api_key",
        pattern=(
            r"(?<![A-Za-z0-9])(?:"
            r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,247}"  # Stripe secret / restricted
            r"|(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Za-z])"  # AWS access key id
            r"|gh[pousr]_[0-9A-Za-z]{36,251}"  # GitHub classic tokens
            r"|github_pat_[0-9A-Za-z_]{22,242}"  # GitHub fine-grained tokens
            r"|xox[abposr]-[0-9A-Za-z-]{10,250}"  # Slack
            r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
            r"|glpat-[0-9A-Za-z_-]{20,50}"  # GitLab personal access token
            r")"
        ),
        prefilter=r"sk_|rk_|AKIA|ASIA|gh[pousr]_|github_pat_|xox|AIza|glpat-",
    ),
    ScannerRule(
        name="bearer_token",
        # The scheme word stays (it says what was there); only the credential goes.
        # "Authorization: Bearer x" is left to the Bearer branch by the lookahead.
        pattern=(
            r"(?:\b(?i:bearer|basic)(?:[ \t]+|[ \t]*[:=][ \t]*)"
            r"|\b(?i:(?:proxy-)?authorization)[\"']?[ \t]*[:=][ \t]*[\"']?"
            r"(?!(?i:bearer|basic)\s)(?:(?i:token)[ \t]+)?)"
            rf"(?P<secret>{_TOKEN68})"
        ),
        replacement="[token]",
        validator=_credential_valid,
        prefilter=r"(?i:bearer|basic|authorization)",
    ),
    ScannerRule(
        name="url_password",
        # RFC 3986 userinfo cannot hold a raw / ? # or @, which keeps "host:8080/a@b" out.
        pattern=r"[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s:/?#@]*:(?P<secret>[^\s/?#@]+)@",
        replacement="[password]",
        prefilter=r"://[^\s/?#@]*@",
    ),
    ScannerRule(
        name="email",
        # Bounded repeats keep a long run of word characters before a lone "@" linear.
        pattern=(
            r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}"
            r"\.[A-Za-z]{2,63}"
        ),
        prefilter="@",
    ),
    ScannerRule(
        name="credit_card",
        pattern=r"(?<![0-9A-Za-z_])[0-9](?:[ -]?[0-9]){12,18}(?![0-9A-Za-z_])",
        validator=_card_valid,
        prefilter=r"[0-9](?:[ -]?[0-9]){12}",
    ),
    ScannerRule(
        name="iban",
        pattern=_IBAN,
        validator=iban_valid,
        prefilter=r"[A-Z]{2}[0-9]{2}",
    ),
    ScannerRule(
        name="us_ssn",
        # Never issued: area 000, 666, 900-999; group 00; serial 0000.
        pattern=(
            r"(?<![0-9A-Za-z_])(?<![0-9]-)"
            r"(?!000|666|9)[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}"
            r"(?![0-9A-Za-z_])(?!-[0-9])"
        ),
        prefilter=r"[0-9]-[0-9]{2}-[0-9]",
    ),
    ScannerRule(
        name="ipv6",
        pattern=_IPV6,
        validator=_ipv6_valid,
        prefilter=rf"::|:{_H}:{_H}:",
    ),
    ScannerRule(
        name="ipv4",
        # "v1.2.3.4" and "1.2.3.4.5" are versions, not addresses: no dotted neighbours.
        pattern=(
            r"(?<![0-9A-Za-z_])(?<![0-9]\.)[0-9]{1,3}(?:\.[0-9]{1,3}){3}"
            r"(?![0-9A-Za-z_])(?!\.[0-9])"
        ),
        validator=_ipv4_valid,
        prefilter=r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]",
    ),
)

DEFAULT_SENSITIVE_KEY_PATTERN = (
    r"(?i)(pass(word|wd)?|secret|token|authorization|api[_-]?key|private[_-]?key|credential"
    r"|cookie|session[_-]?key)"
)


# --- compiling and scanning ------------------------------------------------------------


@dataclass(frozen=True)
class _CompiledRule:
    name: str
    search: Callable[..., re.Match[str] | None]
    match: Callable[..., re.Match[str] | None]
    prefilter: Callable[[str], re.Match[str] | None] | None
    has_secret: bool
    action: str
    token: str
    keep_chars: int
    validator: Callable[[str], bool] | None


@dataclass(frozen=True)
class CompiledScanner:
    """Rules compiled once, in priority order, plus the hashing key; opaque to callers."""

    rules: tuple[_CompiledRule, ...]
    # One search that any value must pass for any rule to run: the union of every rule's
    # prefilter, or None when some rule has no prefilter (then every value is scanned).
    gate: Callable[[str], re.Match[str] | None] | None
    key_id: str
    key: str


# How many shorter matches to try when a validator rejects one (see _find).
_MAX_SHRINK = 8


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
                prefilter=re.compile(rule.prefilter).search if rule.prefilter else None,
                has_secret=SECRET_GROUP in regex.groupindex,
                action=rule.action,
                token=rule.token,
                keep_chars=rule.keep_chars,
                validator=rule.validator,
            )
        )
    gate = None
    if compiled and all(rule.prefilter for rule in rules):
        gate = re.compile("|".join(f"(?:{rule.prefilter})" for rule in rules)).search
    return CompiledScanner(rules=tuple(compiled), gate=gate, key_id=key_id, key=key)


def _span(rule: _CompiledRule, match: re.Match[str]) -> tuple[int, int]:
    return match.span(SECRET_GROUP) if rule.has_secret else match.span()


def _shrink(rule: _CompiledRule, text: str, match: re.Match[str]) -> re.Match[str] | None:
    """A shorter match at the same start that the validator accepts, if any.

    Only cuts just before a non-alphanumeric character are tried, so a lookahead at the
    cut sees what it would see in the full text: "4111 1111 1111 1111 123" (card then
    CVV) yields the card, while a 17-digit id never yields a 16-digit "card".
    """
    start, end = match.span()
    tries = 0
    cut = end - 1
    while cut > start and tries < _MAX_SHRINK:
        if not text[cut].isalnum() and text[cut - 1].isalnum():
            tries += 1
            shorter = rule.match(text, start, cut)
            if shorter is not None and shorter.end() > start:
                if rule.validator is None or rule.validator(shorter.group()):
                    return shorter
                cut = min(cut, shorter.end())
        cut -= 1
    return None


def _overlap(hits: list[tuple[int, int, int]], start: int, end: int) -> int | None:
    """End of an accepted span overlapping [start, end), or None."""
    for taken_start, taken_end, _ in hits:
        if start < taken_end and taken_start < end:
            return taken_end
    return None


def _find(scanner: CompiledScanner, text: str) -> list[tuple[int, int, int]] | None:
    """Accepted (start, end, rule index) spans, in the order they were accepted."""
    if scanner.gate is not None and scanner.gate(text) is None:
        return None
    accepted: list[tuple[int, int, int]] = []
    length = len(text)
    for index, rule in enumerate(scanner.rules):
        if rule.prefilter is not None and rule.prefilter(text) is None:
            continue
        pos = 0
        while pos <= length:
            match = rule.search(text, pos)
            if match is None:
                break
            start = match.start()
            if match.end() == start:  # zero-width matches redact nothing
                pos = start + 1
                continue
            if rule.validator is not None and not rule.validator(match.group()):
                match = _shrink(rule, text, match)
                if match is None:
                    # A later start may still hold a valid match ("2024 4111 1111 1111 1111").
                    pos = start + 1
                    continue
            span_start, span_end = _span(rule, match)
            if span_end == span_start:
                pos = match.end()
                continue
            blocker = _overlap(accepted, span_start, span_end)
            if blocker is not None:
                # A higher-priority finding owns this text; look again just past the clash.
                pos = blocker if start >= blocker else start + 1
                continue
            accepted.append((span_start, span_end, index))
            pos = match.end()
    return accepted


def _redact(scanner: CompiledScanner, rule: _CompiledRule, value: str) -> str:
    if rule.action == ScanAction.HASH:
        return keyed_hash(value, key_id=scanner.key_id, key=scanner.key)
    if rule.action == ScanAction.MASK:
        # A value no longer than keep_chars is masked whole: keeping it would reveal it.
        keep = rule.keep_chars if len(value) > rule.keep_chars else 0
        return "*" * (len(value) - keep) + value[len(value) - keep :]
    return rule.token


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
    test ``result is value`` and most values cost one prefilter search.
    """
    accepted = _find(scanner, text)
    if not accepted:
        return text, ()
    accepted.sort()
    pieces = []
    fired: dict[str, None] = {}
    cursor = 0
    # Offsets all refer to the original text, so the output is assembled left to right
    # from untouched slices and replacements; nothing is shifted by earlier edits.
    for start, end, index in accepted:
        rule = scanner.rules[index]
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


def _check_backtracking(sub: _sre_parse.SubPattern) -> None:
    for op, av in sub:
        if op in _REPEATS and av[1] > 1:  # type: ignore[index]
            body = av[2]  # type: ignore[index]
            inner = list(_variable_repeats(body))
            if inner:
                # Safe only if each iteration holds a fixed character none of the inner
                # repeats can eat, e.g. (?:\.\w+)+ or (\d{1,3}\.){3}: then iterations cannot
                # trade characters with each other.
                eaters = [_chars_consumed(child) for child in inner]
                delimiters = [test for o, a in body if (test := _char_test(o, a)) is not None]
                if not any(
                    not any(eat(char) for eat in eaters for char in _ASCII if delim(char))
                    for delim in delimiters
                ):
                    raise ValueError(
                        "pattern nests a variable quantifier inside another, e.g. (a+)+ or "
                        "(\\w+\\s?)*; this can backtrack catastrophically"
                    )
            for child_op, child_av in body:
                if child_op is _sre.BRANCH:
                    firsts = [_first_chars(alternative) for alternative in child_av[1]]
                    for i, first in enumerate(firsts):
                        for other in firsts[i + 1 :]:
                            if any(first(char) and other(char) for char in _ASCII):
                                raise ValueError(
                                    "pattern repeats an alternation whose branches can start "
                                    "with the same character, e.g. (a|ab)*; this can "
                                    "backtrack catastrophically"
                                )
        for child in _children(op, av):
            _check_backtracking(child)


def validate_custom_pattern(pattern: str, *, max_length: int = 500) -> None:
    """Raise ``ValueError`` if ``pattern`` is unfit for a custom scanner rule.

    Rejected: empty; longer than ``max_length``; not compiling; able to match the empty
    string (checked on a few probe strings); and the cheaply detectable catastrophic-
    backtracking shapes: a repeated group containing a variable quantifier, such as
    ``(a+)+``, ``(.*)*`` or ``(\\w+\\s?)*``, unless every iteration contains a fixed character
    the inner quantifiers cannot match (``(?:\\.\\w+)+`` is fine), and a repeated alternation
    whose branches can begin with the same character (``(a|ab)*``). Possessive quantifiers
    and atomic groups are exempt. Not detected: polynomial blow-ups from adjacent
    overlapping quantifiers (``\\d+\\d+\\d+x``) and back-references; keep custom patterns
    anchored on literal text where possible. Messages never repeat the pattern, which may
    itself contain sample data.
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
    _check_backtracking(parsed)

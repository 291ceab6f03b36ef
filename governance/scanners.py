"""Content scanners: find personal data and secrets inside free text and redact it at ingest."""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import enum
import functools
import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

# re._parser/_constants are private but stable across 3.11-3.12; they are only used to
# inspect custom patterns for backtracking hazards, never to match.
from re import _constants as _sre
from re import _parser as _sre_parse

from .hashing import keyed_hash, keyed_hasher


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


# Four dot-separated numbers of one to three digits, each at most 255 (leading zeros
# allowed): what int() per octet would accept, in one C call.
_OCTET_VALUE = r"(?:[01]?[0-9]?[0-9]|2[0-4][0-9]|25[0-5])"
_IPV4_OCTETS = re.compile(rf"{_OCTET_VALUE}(?:\.{_OCTET_VALUE}){{3}}")


def _ipv4_valid(match: str) -> bool:
    return _IPV4_OCTETS.fullmatch(match) is not None


def _ipv6_valid(match: str) -> bool:
    if match == "::":  # bare "::" is far likelier to be punctuation (C++, Perl) than an address
        return False
    if _IPV6_PLAIN.fullmatch(match) is not None:
        return True  # hextets only, eight or fewer around one "::": valid (the common case)
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
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
# Branch order is the tie-breaker (sre takes the first branch that succeeds): dotted-quad
# tails first, then compressed forms with the fewest groups left of "::" so the greedy
# right-hand side takes every group ("fe80::1:2", not "fe80::1" + ":2"). This list is the
# definition; the scanner runs the equivalent tree below.
_IPV6_FORMS = "|".join(
    [
        rf"(?:{_H}:){{7}}{_H}",
        rf"(?:{_H}:){{6}}{_V4}",
        rf"(?:{_H}:){{1,5}}:(?:{_H}:){{0,4}}{_V4}",
        rf"::(?:{_H}:){{0,5}}{_V4}",
        *(rf"(?:{_H}:){{{left}}}(?::{_H}){{1,{7 - left}}}" for left in range(1, 7)),
        rf"(?:{_H}:){{1,7}}:",
        rf":(?::{_H}){{1,7}}",
        "::",
    ]
)


def _ipv6_after_groups(depth: int) -> str:
    """_IPV6_FORMS as one tree, from after ``depth`` leading groups: what sre runs.

    sre tries every form at every position where an address may start; tried one after
    another, the forms re-match the same leading groups up to sixteen times, and a long
    run of almost-addresses costs that at every group. In the tree each depth offers
    "::" and what may follow it there, or the next group (after six groups, first the
    two last groups or the IPv4 tail of the full forms), so a group is matched once per
    start. A "::" at one depth excludes the forms that put it elsewhere and the full
    forms exclude every "::", so the tree yields the list's match, in the list's order
    (a differential test holds it to that), except bare "::": the validator refuses it
    anyway, so only "::" with a zone after it is matched, and a "::" must be followed
    by a hex digit or a zone to be tried at all. Every top branch starts with a
    character class or a literal, which sre checks without entering the branch.
    """
    branches = [f"{_H}:{_H}", _V4] if depth == 6 else []
    after_gap = [f"(?:{_H}:){{0,4}}{_V4}"] if depth <= 5 else []
    if depth <= 6:
        after_gap.append(f"{_H}(?::{_H}){{0,{6 - depth}}}")
    after_gap.append("")  # the gap ends the address: "fe80::"
    branches.append(":(?:" + "|".join(after_gap) + ")")
    if depth < 7:
        branches.append(f"{_H}:(?:{_ipv6_after_groups(depth + 1)})")
    return "|".join(branches)


_IPV6_TREE = (
    rf"[0-9A-Fa-f][0-9A-Fa-f]{{0,3}}:(?:{_ipv6_after_groups(1)})"
    rf"|::(?=[0-9A-Fa-f%])(?:(?:{_H}:){{0,5}}{_V4}|{_H}(?::{_H}){{0,6}}|(?=%))"
)
# The valid addresses without an IPv4 tail or a zone, as _ipv6_valid's fast path.
_IPV6_PLAIN = re.compile(
    "|".join(
        [
            rf"(?:{_H}:){{7}}{_H}",
            *(rf"(?:{_H}:){{{left}}}(?::{_H}){{1,{7 - left}}}" for left in range(1, 7)),
            rf"(?:{_H}:){{1,7}}:",
            rf":(?::{_H}){{1,7}}",
        ]
    )
)


def _ipv6_pattern(forms: str) -> str:
    """An address of ``forms`` with an optional zone, not glued to a word or a dotted
    number on either side."""
    return (
        rf"(?<![0-9A-Za-z_.])(?:{forms})(?:%[0-9A-Za-z_.~-]{{1,32}})?"
        r"(?![0-9A-Za-z_])(?!\.[0-9])"
    )


_IPV6 = _ipv6_pattern(_IPV6_TREE)


def _iban_pattern() -> str:
    # Each country's own length, so the count is exact: a grouped IBAN followed by " EUR"
    # or by another number stops at the right place instead of swallowing its neighbour.
    # Spaces may separate the groups of four of the printed form (ISO 13616), or be left
    # out. For speed on long runs of almost-IBANs ("DE00 DE00 DE00 ..."): branches keyed
    # by the first, then the second letter of the country (sre skips a branch whose
    # leading literal is absent without entering it), and four characters per step
    # rather than one (sre repeats a group slowly).
    def rest(length: int) -> str:
        groups, tail = divmod(length - 4, 4)
        return rf"(?: ?[A-Z0-9]{{4}}){{{groups}}}" + (rf" ?[A-Z0-9]{{{tail}}}" if tail else "")

    by_first: dict[str, list[str]] = {}
    for country, length in sorted(IBAN_LENGTHS.items()):
        by_first.setdefault(country[0], []).append(f"{country[1]}[0-9]{{2}}{rest(length)}")
    branches = "|".join(f"{first}(?:{'|'.join(seconds)})" for first, seconds in by_first.items())
    return rf"(?<![A-Za-z0-9])(?:{branches})(?![A-Za-z0-9])"


_TOKEN68 = r"[A-Za-z0-9\-._~+/]+=*"
_EMAIL_DOMAIN = r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,63}"

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
        # JWS (3 segments) or JWE (5); the header is base64url JSON, hence "eyJ". The
        # lookbehind comes after the literal so that sre searches for "eyJ" directly.
        pattern=(
            r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"
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
        # The same literals, each led by a rare character (sre then skips to those).
        prefilter=(
            r"_(?<=sk_)|_(?<=rk_)|A(?:KIA|SIA|Iza)|_(?<=gh[pousr]_)|_(?<=github_)"
            r"|x(?=ox[abposr]-)|-(?<=glpat-)"
        ),
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
        # The local part starts where a run of its characters starts: tried once per run
        # (not at each of its characters), a long run before a lone "@" stays linear, and
        # an over-long local part is redacted whole. An address glued to the end of the
        # previous one ("a@x.io-b@y.io") starts inside that run, so it is taken into
        # the same match (atomic: no backtracking into what was taken). Bounded
        # repeats keep the domain linear.
        pattern=(
            rf"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@{_EMAIL_DOMAIN}"
            rf"(?>[A-Za-z0-9._%+-]+@{_EMAIL_DOMAIN})*"
        ),
        prefilter="@",
    ),
    ScannerRule(
        name="iban",
        # Before cards: an IBAN's digits can pass Luhn, never the other way round.
        pattern=_iban_pattern(),
        validator=iban_valid,
        prefilter=r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z][0-9]{2}",
        min_digits=2,
    ),
    ScannerRule(
        name="credit_card",
        # The lookbehind follows the first digit (same test) so sre skips to digits.
        pattern=r"[0-9](?<![0-9A-Za-z_][0-9])(?:[ -]?[0-9]){12,18}(?![0-9A-Za-z_])",
        # Where a match starts, thirteen digits or separators (a class run, no backtracking).
        prefilter=r"[0-9](?<![0-9A-Za-z_][0-9])[0-9 -]{12}",
        validator=_card_valid,
        min_digits=13,
    ),
    ScannerRule(
        name="us_ssn",
        # Never issued: area 000, 666, 900-999; group 00; serial 0000.
        pattern=(
            r"(?<![0-9A-Za-z_])(?<![0-9]-)"
            r"(?!000|666|9)[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}"
            r"(?![0-9A-Za-z_])(?!-[0-9])"
        ),
        prefilter=r"-[0-9]{2}-",
        min_digits=9,
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
        # Lookbehinds after the first digit (same tests) so sre skips to digits.
        pattern=(
            r"[0-9](?<![0-9A-Za-z_][0-9])(?<![0-9]\.[0-9])[0-9]{0,2}(?:\.[0-9]{1,3}){3}"
            r"(?![0-9A-Za-z_])(?!\.[0-9])"
        ),
        validator=_ipv4_valid,
        prefilter=r"\.[0-9]{1,3}\.[0-9]{1,3}\.",  # literal-led prefilters scan fastest
        min_digits=4,
    ),
)

DEFAULT_SENSITIVE_KEY_PATTERN = (
    r"(?i)(pass(word|wd)?|secret|token|authorization|api[_-]?key|private[_-]?key|credential"
    r"|cookie|session[_-]?key)"
)


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


def _pattern_required_chars(pattern: str, flags: int) -> frozenset[str] | None:
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

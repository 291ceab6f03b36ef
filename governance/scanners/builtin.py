"""The built-in rules: secrets and personal data every plan scans for, linear by construction."""

from __future__ import annotations

# re._parser/_constants are private but stable across 3.11-3.12; they are only used to
# inspect custom patterns for backtracking hazards, never to match.
from .types import ScannerRule
from .validators import (
    _H,
    IBAN_LENGTHS,
    _card_valid,
    _credential_valid,
    _ipv4_valid,
    _ipv6_valid,
    iban_valid,
)

# --- built-in rules --------------------------------------------------------------------

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

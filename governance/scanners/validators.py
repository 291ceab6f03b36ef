"""Validators that confirm a pattern's match (Luhn, IBAN check digits, addresses, credentials)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re

# re._parser/_constants are private but stable across 3.11-3.12; they are only used to
# inspect custom patterns for backtracking hazards, never to match.

# --- validators ------------------------------------------------------------------------


# One IPv6 group (also the built-in rule's).
_H = "[0-9A-Fa-f]{1,4}"
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

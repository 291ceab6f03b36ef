"""Content scanners find secrets and personal data in free text and redact only those."""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import json
import re
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from governance import scanners
from governance.hashing import keyed_hash
from governance.scanners import (
    BUILTIN_RULES,
    DEFAULT_SENSITIVE_KEY_PATTERN,
    CompiledScanner,
    Finding,
    ScanAction,
    ScannerRule,
    iban_valid,
    luhn_valid,
    scan_findings,
    scan_text,
    scanner_compile,
    sensitive_key_matcher,
    validate_custom_pattern,
)

KEY_ID = "k1"
KEY = "scanner-test-key"
SCANNER = scanner_compile(BUILTIN_RULES, key_id=KEY_ID, key=KEY)

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
RSA_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi4Y9D8xQ1mXJ3r8m0Wk9W2e2c1\n"
    "w6Xb2jq1R3o4m0uV8bBq9bZ0wWm8Qe0A==\n"
    "-----END RSA PRIVATE KEY-----"
)


def scan(text: str, scanner=SCANNER) -> str:
    return scan_text(scanner, text)[0]


def one_rule(**fields) -> object:
    return scanner_compile([ScannerRule(**fields)], key_id=KEY_ID, key=KEY)


def builtin(name: str) -> ScannerRule:
    return next(rule for rule in BUILTIN_RULES if rule.name == name)


# --- each built-in rule ------------------------------------------------------------------


def test_builtin_rules_are_named_and_ordered_by_priority():
    """The rule names are API; the most specific kinds come first so they win overlaps."""
    assert [rule.name for rule in BUILTIN_RULES] == [
        "private_key",
        "jwt",
        "api_key",
        "bearer_token",
        "url_password",
        "email",
        "iban",
        "credit_card",
        "us_ssn",
        "ipv6",
        "ipv4",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key:\n{RSA_KEY}\nend", "key:\n[private_key]\nend"),
        (RSA_KEY.replace("RSA ", "EC "), "[private_key]"),
        (RSA_KEY.replace("RSA ", "OPENSSH "), "[private_key]"),
        (RSA_KEY.replace("RSA ", "ENCRYPTED "), "[private_key]"),
        (RSA_KEY.replace("RSA ", ""), "[private_key]"),
        # JSON-escaped newlines, as the key arrives inside a logged payload.
        (json.dumps(RSA_KEY)[1:-1] + " tail", "[private_key] tail"),
        # A block cut short by a truncated log line is redacted to the end.
        (
            "dump -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
            "dump [private_key]",
        ),
    ],
)
def test_private_key_blocks_are_redacted_whole(text, expected):
    """PEM private-key blocks of every common flavour go, including truncated ones."""
    assert scan(text) == expected


def test_public_keys_and_certificates_are_not_private_keys():
    """Only PRIVATE KEY blocks are secrets; a certificate header is left alone."""
    text = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    assert scan(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"token={JWT}", "token=[jwt]"),
        (f"id_token: {JWT}.", "id_token: [jwt]."),
        ('{"jwt":"' + JWT + '"}', '{"jwt":"[jwt]"}'),
        # Unsigned (alg none) and five-segment JWE forms.
        ("t eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. x", "t [jwt] x"),
        ("eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..MkR5N.DxZ7QM.vT0n", "[jwt]"),
    ],
)
def test_jwts_are_redacted(text, expected):
    """Three (or five) base64url segments starting with a JSON header are a JWT."""
    assert scan(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc123def456ghi789", "Authorization: Bearer [token]"),
        ("authorization: bearer 0a1b2c3d4e5f6a7b8c9d", "authorization: bearer [token]"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic [token]"),
        (
            '{"Authorization": "Bearer Zm9vYmFy.YmF6-cXV4_cXV1eA"}',
            '{"Authorization": "Bearer [token]"}',
        ),
        ('{"authorization":"s3cr3t-value-99"}', '{"authorization":"[token]"}'),
        ("Authorization: token 9f8e7d6c5b4a39281706", "Authorization: token [token]"),
        (
            "Proxy-Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l",
            "Proxy-Authorization: Basic [token]",
        ),
        (f"Authorization: Bearer {JWT}", "Authorization: Bearer [jwt]"),
    ],
)
def test_bearer_basic_and_authorization_credentials_are_redacted_keeping_the_scheme(text, expected):
    """The credential after Bearer/Basic/Authorization goes; the scheme word stays."""
    assert scan(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Basic plan upgraded to Pro",
        "bearer instruments are negotiable",
        "authorization: denied",
        "Basic information missing",  # decodes, but to bytes without user:password
        "Authorization: Digest username=alice",
    ],
)
def test_prose_around_scheme_words_is_left_alone(text):
    """Scheme words in prose are not followed by anything credential-like."""
    assert scan(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "postgres://app:hunter2@db.internal:5432/app",
            "postgres://app:[password]@db.internal:5432/app",
        ),
        ("redis://:s3cr3t@cache:6379/0", "redis://:[password]@cache:6379/0"),
        ("amqp://guest:p%40ss;w0rd!@mq/vhost", "amqp://guest:[password]@mq/vhost"),
        (
            "see https://user:Tr0ub4dor&3@example.com/path.",
            "see https://user:[password]@example.com/path.",
        ),
    ],
)
def test_url_passwords_are_redacted_keeping_user_and_host(text, expected):
    """Only the userinfo password goes; scheme, user and host stay for debugging."""
    assert scan(text) == expected


def test_urls_without_passwords_keep_their_ports_and_paths():
    """A host:port followed by a path is not userinfo, even with an @ further on."""
    assert scan("GET http://api.internal:8080/v1/items 200") == (
        "GET http://api.internal:8080/v1/items 200"
    )


@pytest.mark.parametrize(
    "key",
    [
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_test_51H8xYzAbCdEfGhIjKlMnOpQr",
        "rk_live_0123456789abcdefABCDEF",
        "AKIAIOSFODNN7EXAMPLE",
        "ASIAY34FZKBOKMUTVV7A",
        "ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R",
        "gho_16C7e42F292c6912E7710c838347Ae178B4a",
        "ghs_abcdefghijklmnopqrstuvwxyz0123456789",
        "github_pat_11ABCDEFG0123456789abc_" + "x" * 59,
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxp-1234567890-abcdefghij",
        "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI",
        "glpat-xXxXxXxXxXxXxXxXxXxX",
    ],
)
def test_api_keys_in_common_formats_are_redacted(key):
    """Provider key formats are recognised by prefix and shape, wherever they appear."""
    assert scan(f"export KEY={key} # prod") == "export KEY=[api_key] # prod"


@pytest.mark.parametrize(
    "text",
    [
        "sk_live_short",  # too short for a Stripe key
        "AKIAIOSFODNN7EXAMPL",  # 15 characters after AKIA
        "ghp_tooShort123",
        "the task_live_view changed",
    ],
)
def test_api_key_lookalikes_are_left_alone(text):
    """Prefixes alone, with the wrong length, are not keys."""
    assert scan(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("contact alice@example.com now", "contact [email] now"),
        ("From: Bob.Smith+billing@mail.example.co.uk", "From: [email]"),
        ("<o'neil@example.org>", "<o'[email]>"),
        ("mailto:first_last-99@sub.domain.io?subject=hi", "mailto:[email]?subject=hi"),
        ("(x@y.fr), z@w.de.", "([email]), [email]."),
    ],
)
def test_emails_are_redacted(text, expected):
    """Addresses are found inside punctuation, mailto links and lists."""
    assert scan(text) == expected


@pytest.mark.parametrize(
    "text",
    ["@mention in chat", "user@localhost", "price 5@3 each", "a@b", "npm i @scope/pkg@1.2.3"],
)
def test_email_lookalikes_are_left_alone(text):
    """An @ without a dotted domain is not an email address."""
    assert scan(text) == text


@pytest.mark.parametrize(
    "card",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "5500 0000 0000 0004",
        "2223 0031 2200 3222",
        "3782 822463 10005",
        "3714-496353-98431",
        "6011000990139424",
        "3530111333300000",
        "4222222222222",
    ],
)
def test_luhn_valid_card_numbers_are_redacted(card):
    """Visa, Mastercard (both ranges), Amex, Discover and JCB, spaced, dashed or not."""
    assert scan(f"card {card}, thanks") == "card [credit_card], thanks"


def test_a_card_next_to_other_numbers_is_still_found():
    """Neighbouring numbers (a year before, a CVV after) do not hide the card."""
    assert scan("2024 4111 1111 1111 1111 123") == "2024 [credit_card] 123"
    assert scan("card 4111 1111 1111 1111 exp 12/29 cvv 737") == (
        "card [credit_card] exp 12/29 cvv 737"
    )


@pytest.mark.parametrize(
    "text",
    [
        "order 4111111111111112 shipped",  # fails Luhn
        "order 1234 5678 9012 3456",  # fails Luhn
        "ts 1700000000004",  # passes Luhn, but no card network starts with 1
        "id 41111111111111110",  # 17 digits failing Luhn; its 16-digit prefix passes
        "sha a4111111111111111b",  # glued to hex: part of an id, not a card
        "phone +1 415-555-0100",
    ],
)
def test_card_lookalikes_are_left_alone(text):
    """Order numbers, timestamps and ids are not cards even at card length."""
    assert scan(text) == text


@pytest.mark.parametrize(
    "iban",
    [
        "DE89370400440532013000",
        "DE89 3704 0044 0532 0130 00",
        "GB29 NWBK 6016 1331 9268 19",
        "FR14 2004 1010 0505 0001 3M02 606",
        "NL91ABNA0417164300",
        "BE68 5390 0754 7034",
        "NO9386011117947",
        "CH93 0076 2011 6238 5295 7",
    ],
)
def test_valid_ibans_are_redacted(iban):
    """IBANs of several countries, grouped or compact, including a trailing currency."""
    assert scan(f"IBAN {iban} EUR") == "IBAN [iban] EUR"


@pytest.mark.parametrize(
    "text",
    [
        "IBAN DE89370400440532013001",  # bad check digits
        "IBAN DE8937040044053201300",  # wrong length for Germany
        "IBAN XX89370400440532013000",  # no such country
        "SKU AB12CDEF3456789012",
    ],
)
def test_iban_lookalikes_are_left_alone(text):
    """Only country-length-correct strings that pass mod 97 are IBANs."""
    assert scan(text) == text


@pytest.mark.parametrize("ssn", ["123-45-6789", "078-05-1120", "899-99-9999", "001-01-0001"])
def test_ssns_are_redacted(ssn):
    """Well-formed SSNs in issued ranges are redacted, also after a label with a dash."""
    assert scan(f"ssn {ssn}.") == "ssn [us_ssn]."
    assert scan(f"SSN-{ssn}") == "SSN-[us_ssn]"


@pytest.mark.parametrize(
    "text",
    [
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",
        "123-00-4567",
        "123-45-0000",
        "call 555-123-45-6789",  # part of a longer dashed number
        "2024-05-01",
    ],
)
def test_ssn_lookalikes_are_left_alone(text):
    """Never-issued areas, groups and serials, and longer dashed numbers, stay."""
    assert scan(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("from 2001:db8::1 port", "from [ipv6] port"),
        ("[fe80::1%eth0]:8080", "[[ipv6]]:8080"),
        ("ipv6:2001:0db8:85a3:0000:0000:8a2e:0370:7334,", "ipv6:[ipv6],"),
        ("mapped ::ffff:192.0.2.1 ok", "mapped [ipv6] ok"),
        ("lo ::1", "lo [ipv6]"),
        ("fe80::1:2:3 and 1:2:3::4", "[ipv6] and [ipv6]"),
    ],
)
def test_ipv6_addresses_are_redacted(text, expected):
    """Full, compressed, zone-scoped and IPv4-mapped forms are redacted whole."""
    assert scan(text) == expected


@pytest.mark.parametrize(
    "text",
    ["mac 00:1a:2b:3c:4d:5e", "at 12:34:56", "std::vector<int>", "a :: b", "Foo::Bar"],
)
def test_ipv6_lookalikes_are_left_alone(text):
    """MAC addresses, times and C++ scopes are not IPv6 addresses."""
    assert scan(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("client 203.0.113.7 connected", "client [ipv4] connected"),
        ("ip=10.0.0.1:8080", "ip=[ipv4]:8080"),
        ("net 192.168.0.0/16.", "net [ipv4]/16."),
        ("1.2.3.4", "[ipv4]"),
        ("host.10.0.0.1 x", "host.[ipv4] x"),
    ],
)
def test_ipv4_addresses_are_redacted(text, expected):
    """Dotted quads with valid octets are addresses (a bare 1.2.3.4 included)."""
    assert scan(text) == expected


@pytest.mark.parametrize(
    "text",
    ["bad 999.1.1.1", "256.0.0.1", "version 1.2.3.4.5", "build v1.2.3.4", "10.0.0"],
)
def test_ipv4_lookalikes_are_left_alone(text):
    """Out-of-range octets, longer dotted versions and v-prefixed versions stay."""
    assert scan(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "button clicked",
        "GET /api/v1/items?page=2 200 took 17ms",
        "upload completed 2024-05-01T10:00:00Z",
        "cache miss for key product:1234",
        "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
    ],
)
def test_unchanged_text_comes_back_as_the_same_object(text):
    """With nothing to redact, the very same str is returned with no rule names."""
    redacted, fired = scan_text(SCANNER, text)
    assert redacted is text
    assert fired == ()


# --- actions -----------------------------------------------------------------------------


def test_replace_uses_the_rule_token_or_a_custom_one():
    """The default token is [name]; a rule may choose its own."""
    default = one_rule(name="employee_id", pattern=r"EMP-[0-9]{6}")
    custom = one_rule(name="employee_id", pattern=r"EMP-[0-9]{6}", replacement="<emp>")
    assert scan_text(default, "by EMP-004211") == ("by [employee_id]", ("employee_id",))
    assert scan("by EMP-004211", custom) == "by <emp>"


def test_hash_action_is_keyed_deterministic_and_prefixed():
    """Hashing yields k1:<64 hex> from keyed_hash, stable per key and different across keys."""
    hashing = [dataclasses.replace(builtin("email"), action=ScanAction.HASH)]
    scanner = scanner_compile(hashing, key_id=KEY_ID, key=KEY)
    other = scanner_compile(hashing, key_id="k2", key="another-key")
    redacted, fired = scan_text(scanner, "from alice@example.com!")
    digest = keyed_hash("alice@example.com", key_id=KEY_ID, key=KEY)
    assert redacted == f"from {digest}!"
    assert re.fullmatch(r"k1:[0-9a-f]{64}", digest)
    assert fired == ("email",)
    assert scan_text(scanner, "from alice@example.com!")[0] == redacted
    assert scan_text(other, "from alice@example.com!")[0] != redacted


def test_hash_and_mask_apply_to_the_secret_group_only():
    """A rule with a `secret` group transforms just that group (the URL password here)."""
    rule = dataclasses.replace(builtin("url_password"), action="hash")
    scanner = scanner_compile([rule], key_id=KEY_ID, key=KEY)
    digest = keyed_hash("hunter2", key_id=KEY_ID, key=KEY)
    assert scan("db://app:hunter2@db/x", scanner) == f"db://app:{digest}@db/x"


def test_mask_keeps_the_last_characters():
    """Masking stars all but the last keep_chars characters."""
    rule = dataclasses.replace(builtin("credit_card"), action=ScanAction.MASK)
    masked = scanner_compile([rule], key_id=KEY_ID, key=KEY)
    assert scan("card 4111 1111 1111 1111 ok", masked) == "card " + "*" * 15 + "1111 ok"
    six = scanner_compile(
        [ScannerRule(name="pin", pattern=r"PIN [0-9]{4,8}", action="mask", keep_chars=2)],
        key_id=KEY_ID,
        key=KEY,
    )
    assert scan("PIN 123456", six) == "********56"


def test_mask_hides_values_no_longer_than_what_it_would_keep():
    """Keeping 4 characters of a 4-character secret would reveal it, so all are starred."""
    scanner = one_rule(name="code", pattern=r"(?<=code=)[0-9]{3,4}\b", action="mask")
    assert scan("code=1234", scanner) == "code=****"


def test_unknown_actions_and_negative_keep_are_refused_at_compile_time():
    """A typo in an action fails when the scanner is built, not silently at ingest."""
    with pytest.raises(ValueError, match="unknown action"):
        one_rule(name="x", pattern="x", action="encrypt")
    with pytest.raises(ValueError, match="keep_chars"):
        one_rule(name="x", pattern="x", action="mask", keep_chars=-1)


# --- overlaps, offsets, several findings ---------------------------------------------------


def test_earlier_rules_win_overlaps():
    """An IPv4 inside a URL password and digits inside a JWT belong to the earlier rule."""
    assert scan("http://u:10.0.0.1@h/") == "http://u:[password]@h/"
    jwt_with_digits = "eyJhbGciOiJIUzI1NiJ9.eyJuIjoiNDExMTExMTExMTExMTExMSJ9.4111111111111111"
    assert scan_text(SCANNER, f"t {jwt_with_digits}") == ("t [jwt]", ("jwt",))


def test_custom_rule_order_decides_overlaps():
    """Between two custom rules that overlap, whichever is listed first wins."""
    order = ScannerRule(name="order", pattern=r"ORD-[0-9]+")
    digits = ScannerRule(name="digits", pattern=r"[0-9]{4,}")
    first = scanner_compile([order, digits], key_id=KEY_ID, key=KEY)
    second = scanner_compile([digits, order], key_id=KEY_ID, key=KEY)
    assert scan("ORD-123456", first) == "[order]"
    assert scan("ORD-123456", second) == "ORD-[digits]"


def test_several_findings_are_all_redacted_with_offsets_into_the_original():
    """Findings carry original offsets and names come back once each, in text order."""
    text = "a@b.io paid 4111 1111 1111 1111 from 10.0.0.1 and c@d.io"
    findings = scan_findings(SCANNER, text)
    assert findings == (
        Finding("email", 0, 6),
        Finding("credit_card", 12, 31),
        Finding("ipv4", 37, 45),
        Finding("email", 50, 56),
    )
    assert [text[f.start : f.end] for f in findings] == [
        "a@b.io",
        "4111 1111 1111 1111",
        "10.0.0.1",
        "c@d.io",
    ]
    assert scan_text(SCANNER, text) == (
        "[email] paid [credit_card] from [ipv4] and [email]",
        ("email", "credit_card", "ipv4"),
    )


def test_finding_offsets_cover_only_the_secret_group():
    """For rules with a `secret` group the finding spans the credential, not the scheme."""
    text = "Authorization: Bearer abc123def456ghi789"
    (finding,) = scan_findings(SCANNER, text)
    assert text[finding.start : finding.end] == "abc123def456ghi789"


def test_custom_validator_rejections_are_left_alone():
    """A match the validator rejects stays, and the next candidate is still examined."""
    scanner = one_rule(name="even", pattern=r"\b[0-9]{3}\b", validator=lambda m: int(m) % 2 == 0)
    assert scan_text(scanner, "101 202 303") == ("101 [even] 303", ("even",))


# --- sensitive keys ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db_password",
        "PASSWD",
        "pass",
        "client_secret",
        "refresh_token",
        "authToken",
        "Authorization",
        "api_key",
        "API-Key",
        "x-api-key",
        "apikey",
        "private_key",
        "credentials",
        "Set-Cookie",
        "session_key",
    ],
)
def test_sensitive_key_matcher_flags_secret_names(key):
    """Password, secret, token, authorization and key names match in any case or style."""
    assert sensitive_key_matcher()(key)


@pytest.mark.parametrize("key", ["user_agent", "locale", "retry_count", "session_id", "keyboard"])
def test_sensitive_key_matcher_passes_ordinary_names(key):
    """Ordinary attribute names are not treated as secrets."""
    assert not sensitive_key_matcher()(key)


@pytest.mark.parametrize("key", ["token_count", "tokenizer_version", "passenger", "bypass_cache"])
def test_sensitive_key_matcher_accepts_substring_false_positives(key):
    """By design names containing a secret word match too: hiding one harmless value is
    cheaper than storing a secret under a name like ``my_tokenValue``."""
    assert sensitive_key_matcher(DEFAULT_SENSITIVE_KEY_PATTERN)(key)


def test_sensitive_key_matcher_takes_a_custom_pattern():
    """Organisations can replace the default list with their own pattern."""
    matcher = sensitive_key_matcher(r"(?i)^(ssn|dob)$")
    assert matcher("SSN") and matcher("dob")
    assert not matcher("password")


# --- custom pattern validation -------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        r"EMP-[0-9]{6}",
        r"\bacct_[0-9a-f]{24}\b",
        r"(?:\.\w+)+@corp",
        r"(?:X[a-z]+)+",
        r"([0-9]{1,3}\.){3}[0-9]{1,3}",
        r"(?P<secret>[A-Z0-9]{10})@vault",
        r"(?:https?|ftp)://\S+",
        r"(a+)++",  # possessive: never backtracks
    ],
)
def test_validate_custom_pattern_accepts_normal_patterns(pattern):
    """Ordinary anchored patterns, delimited repeats and possessive repeats pass."""
    validate_custom_pattern(pattern)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 501, "longer than 500"),
        ("(unclosed", "does not compile"),
        ("[z-a]", "does not compile"),
        ("a*", "empty string"),
        ("x|", "empty string"),
        (r"\b", "empty string"),
        (r"(?<=a)b*", "empty string"),
        (r"(a+)+$", "nests a variable quantifier"),
        (r"(\w+\s?)+$", "nests a variable quantifier"),
        (r"(?:[0-9]+)+x", "nests a variable quantifier"),
        (r"(x+x+)+y", "nests a variable quantifier"),
        (r"(.*a){2,20}", "nests a variable quantifier"),
        (r"(?i)(?:X[a-z]+)+", "nests a variable quantifier"),  # [a-z] eats x under (?i)
        (r"(?>(a+)+)b", "nests a variable quantifier"),  # atomic outside does not help
        (r"(a|aa)+b", "alternation"),
    ],
)
def test_validate_custom_pattern_rejects_unfit_patterns(pattern, message):
    """Empty, too long, broken, empty-matching and backtracking-prone patterns are refused."""
    with pytest.raises(ValueError, match=message):
        validate_custom_pattern(pattern)


def test_validate_custom_pattern_limit_is_configurable_and_messages_do_not_echo():
    """The length cap is a parameter, and errors never repeat the (possibly sensitive) pattern."""
    validate_custom_pattern("x" * 600, max_length=1000)
    with pytest.raises(ValueError) as caught:
        validate_custom_pattern("(4111111111111111")
    assert "4111" not in str(caught.value)


# --- validators ----------------------------------------------------------------------------


def test_luhn_valid():
    """Luhn accepts check-digit-correct numbers, ignoring spaces and dashes, and nothing else."""
    assert luhn_valid("4111111111111111")
    assert luhn_valid("4111-1111 1111-1111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("4111x111111111111")
    assert not luhn_valid("")


def test_iban_valid():
    """Mod 97 with the registry length of the country; case and spaces do not matter."""
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert iban_valid("gb82west12345698765432")
    assert not iban_valid("GB82 WEST 1234 5698 7654 33")
    assert not iban_valid("GB82 WEST 1234 5698 7654 3")
    assert not iban_valid("ZZ82WEST12345698765432")
    assert not iban_valid("not an iban")


# --- property: planted secrets never survive ----------------------------------------------

# Characters that separate a secret from its neighbours in real text. Word-internal
# characters (- . _ + @ %) are left out: next to them the secret would be part of a word.
SEPARATORS = " \t\n,;:!?()[]{}<>\"'|="
SURROUNDING = st.text(alphabet=string.ascii_letters + string.digits + " .,;:!?()-/'\"", max_size=40)
ALNUM = string.ascii_letters + string.digits


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _luhn_complete(partial: str) -> str:
    total = 0
    for index, char in enumerate(reversed(partial)):
        value = int(char)
        if index % 2 == 0:  # these positions are doubled once the check digit is appended
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return partial + str((10 - total % 10) % 10)


@st.composite
def emails(draw) -> tuple[str, ...]:
    local = draw(st.from_regex(r"[a-z0-9]([a-z0-9._%+-]{0,20}[a-z0-9])?", fullmatch=True))
    labels = draw(
        st.lists(
            st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True),
            min_size=1,
            max_size=3,
        )
    )
    tld = draw(st.from_regex(r"[a-z]{2,6}", fullmatch=True))
    return (f"{local}@{'.'.join(labels)}.{tld}",)


CARD_NETWORKS = [
    ("4", 16), ("4", 13), ("4", 19), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16),
    ("34", 15), ("37", 15), ("6011", 16), ("65", 16), ("3530", 16), ("36", 14), ("62", 19),
]  # fmt: skip


@st.composite
def cards(draw) -> tuple[str, ...]:
    prefix, length = draw(st.sampled_from(CARD_NETWORKS))
    body = draw(st.text(alphabet=string.digits, min_size=length - len(prefix) - 1,
                        max_size=length - len(prefix) - 1))  # fmt: skip
    number = _luhn_complete(prefix + body)
    style = draw(st.sampled_from(["plain", " ", "-"]))
    if style == "plain":
        return (number,)
    if length == 15:  # Amex prints 4-6-5
        groups = [number[:4], number[4:10], number[10:]]
    else:
        groups = [number[i : i + 4] for i in range(0, length, 4)]
    return (style.join(groups), number)


@st.composite
def jwts(draw) -> tuple[str, ...]:
    header = {"alg": draw(st.sampled_from(["HS256", "RS256", "ES256"])), "typ": "JWT"}
    payload = {
        "sub": draw(st.text(alphabet=ALNUM, min_size=1, max_size=20)),
        "iat": draw(st.integers(0, 2**31)),
    }
    signature = draw(st.binary(min_size=16, max_size=64))
    token = ".".join(
        [
            _b64url(json.dumps(header).encode()),
            _b64url(json.dumps(payload).encode()),
            _b64url(signature),
        ]
    )
    return (token,)


@st.composite
def api_keys(draw) -> tuple[str, ...]:
    upper_digits = string.ascii_uppercase + string.digits
    kind = draw(st.sampled_from(["aws", "github", "github_pat", "stripe", "slack", "google"]))
    if kind == "aws":
        key = draw(st.sampled_from(["AKIA", "ASIA"])) + draw(
            st.text(alphabet=upper_digits, min_size=16, max_size=16)
        )
    elif kind == "github":
        key = draw(st.sampled_from(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"])) + draw(
            st.text(alphabet=ALNUM, min_size=36, max_size=36)
        )
    elif kind == "github_pat":
        key = (
            "github_pat_"
            + draw(st.text(alphabet=ALNUM, min_size=22, max_size=22))
            + "_"
            + draw(st.text(alphabet=ALNUM, min_size=59, max_size=59))
        )
    elif kind == "stripe":
        key = draw(st.sampled_from(["sk_live_", "sk_test_", "rk_live_"])) + draw(
            st.text(alphabet=ALNUM, min_size=24, max_size=99)
        )
    elif kind == "slack":
        key = draw(st.sampled_from(["xoxb-", "xoxp-", "xoxa-"])) + draw(
            st.text(alphabet=ALNUM + "-", min_size=10, max_size=60)
        )
    else:
        key = "AIza" + draw(st.text(alphabet=ALNUM + "-_", min_size=35, max_size=35))
    return (key,)


@st.composite
def bearer_headers(draw) -> tuple[str, ...]:
    scheme = draw(st.sampled_from(["Bearer", "bearer", "Basic", "Authorization:"]))
    if scheme == "Basic":
        user = draw(st.text(alphabet=ALNUM, min_size=1, max_size=12))
        password = draw(st.text(alphabet=string.printable.strip(), min_size=1, max_size=20))
        secret = base64.b64encode(f"{user}:{password}".encode()).decode()
    else:
        secret = draw(st.text(alphabet=ALNUM + "-._~+/", min_size=16, max_size=60))
    prefix = "Authorization: " if draw(st.booleans()) and scheme != "Authorization:" else ""
    assume(secret not in f"{prefix}{scheme} ")
    return (secret, f"{prefix}{scheme} {secret}")


@st.composite
def url_passwords(draw) -> tuple[str, ...]:
    scheme = draw(st.sampled_from(["http", "https", "postgres", "redis", "amqp", "mysql"]))
    user = draw(st.from_regex(r"([a-z][a-z0-9_]{0,10})?", fullmatch=True))
    password = draw(st.text(alphabet=ALNUM + "!$&'()*+,;=._~-", min_size=6, max_size=24))
    host = draw(st.sampled_from(["db.internal", "10.1.2.3", "cache", "example.com"]))
    path = draw(st.sampled_from(["", "/", "/app", ":5432/app"]))
    # Nor in what replaces it: "passwo" is still in "[password]".
    assume(password not in f"{scheme}://{user}:[password]@{host}{path}")
    return (password, f"{scheme}://{user}:{password}@{host}{path}")


IBAN_COUNTRIES = {"DE": 22, "GB": 22, "FR": 27, "NL": 18, "BE": 16, "ES": 24, "IT": 27,
                  "CH": 21, "NO": 15, "MT": 31, "PL": 28, "SE": 24}  # fmt: skip


@st.composite
def ibans(draw) -> tuple[str, ...]:
    country = draw(st.sampled_from(sorted(IBAN_COUNTRIES)))
    length = IBAN_COUNTRIES[country]
    bban = draw(
        st.text(
            alphabet=st.sampled_from(string.digits * 3 + string.ascii_uppercase),
            min_size=length - 4,
            max_size=length - 4,
        )
    )
    numeric = "".join(str(int(char, 36)) for char in bban + country + "00")
    iban = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    if draw(st.booleans()):
        return (" ".join(iban[i : i + 4] for i in range(0, len(iban), 4)), iban)
    return (iban,)


@st.composite
def ssns(draw) -> tuple[str, ...]:
    area = draw(st.integers(1, 899).filter(lambda value: value != 666))
    group = draw(st.integers(1, 99))
    serial = draw(st.integers(1, 9999))
    return (f"{area:03d}-{group:02d}-{serial:04d}",)


def ipv4s() -> st.SearchStrategy[tuple[str, ...]]:
    return st.ip_addresses(v=4).map(lambda address: (str(address),))


@st.composite
def ipv6s(draw) -> tuple[str, ...]:
    address = draw(st.ip_addresses(v=6).filter(lambda a: a != ipaddress.IPv6Address("::")))
    return (address.exploded if draw(st.booleans()) else str(address),)


@st.composite
def private_keys(draw) -> tuple[str, ...]:
    kind = draw(st.sampled_from(["RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", ""]))
    lines = draw(
        st.lists(st.text(alphabet=ALNUM + "+/", min_size=8, max_size=64), min_size=1, max_size=4)
    )
    body = "\n".join(lines)
    block = f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"
    return (body, block)


# Each strategy yields the strings that must not survive; the last one is what is planted.
PLANTED = {
    "private_key": private_keys(),
    "jwt": jwts(),
    "api_key": api_keys(),
    "bearer_token": bearer_headers(),
    "url_password": url_passwords(),
    "email": emails(),
    "iban": ibans(),
    "credit_card": cards(),
    "us_ssn": ssns(),
    "ipv6": ipv6s(),
    "ipv4": ipv4s(),
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_planted_secrets_never_survive_a_scan(kind, data):
    """Whatever surrounds it, a planted secret of each kind is gone after scanning."""
    secrets = data.draw(PLANTED[kind], label="secret")
    before = data.draw(SURROUNDING, label="before")
    after = data.draw(SURROUNDING, label="after")
    left = data.draw(st.sampled_from(SEPARATORS), label="left")
    right = data.draw(st.sampled_from(SEPARATORS), label="right")
    text = f"{before}{left}{secrets[-1]}{right}{after}"
    redacted, fired = scan_text(SCANNER, text)
    for secret in secrets:
        # The surrounding text may hold a copy by chance; the planted one must be gone.
        assert redacted.count(secret) <= before.count(secret) + after.count(secret)
    assert fired


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.ascii_lowercase + " ", max_size=80))
def test_lowercase_prose_without_scheme_words_is_never_touched(text):
    """Plain words carry nothing any rule looks for, and come back as the same object."""
    assume(not re.search("bearer|basic|authorization", text))
    redacted, fired = scan_text(SCANNER, text)
    assert redacted is text and fired == ()


# --- the gate and the cleared-text memory change nothing ----------------------------------

# Rules that exercise every gate path: the built-ins (literal, case-insensitive literal and
# regex prefilters, min_digits), a rule without a prefilter (gated on the characters its
# pattern needs, here case-insensitively), and a custom regex prefilter.
GATE_RULES = (
    *BUILTIN_RULES,
    ScannerRule(name="employee_id", pattern=r"(?i)\bemp-[0-9]{4,8}\b"),
    ScannerRule(name="ticket", pattern=r"TCK#[0-9]{3,}", prefilter=r"#[0-9]{3}", min_digits=3),
)
GATE_PIECES = [
    "eyJ", JWT, "AKIAIOSFODNN7EXAMPLE", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "ghp_", "xoxb-",
    "glpat-", "Bearer ", "bAsIc ", "Authorization: ", "dXNlcjpwYXNz", "://", "@", "a@b.co",
    "-----BEGIN RSA PRIVATE KEY-----", "::", "fe80::1", "2001:db8::8a2e:370:7334",
    "::ffff:1.2.3.4", "%eth0", "10.0.0.1", "999.1.1.1", "4111 1111 1111 1111", "123-45-6789",
    "GB82WEST12345698765432", "EMP-004211", "emp-12345", "TCK#1234", "#123",
    "550e8400-e29b-41d4-a716-446655440000", "\u212a", "\u017f", "\u0130",
]  # fmt: skip


def _ungated(scanner):
    """The same rules without gates or memory: every rule runs on every text."""
    return CompiledScanner(rules=scanner.rules, key_id=scanner.key_id, key=scanner.key)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(GATE_PIECES),
            st.text(alphabet=string.printable + "\u212a\u017f\u0130", max_size=12),
        ),
        max_size=8,
    )
)
def test_gates_never_change_what_is_found(parts):
    """Clearing texts early (by the characters rules need) finds exactly what a full run does."""
    text = "".join(parts)
    gated = scanner_compile(GATE_RULES, key_id=KEY_ID, key=KEY)
    full = _ungated(gated)
    assert scan_findings(gated, text) == scan_findings(full, text)
    assert scan_text(gated, text) == scan_text(full, text)
    assert scan_text(gated, text) == scan_text(full, text)  # now maybe from memory


def test_case_folded_non_ascii_text_still_reaches_case_insensitive_rules():
    """sre folds KELVIN SIGN onto "k": non-ASCII text is never cleared by the ASCII gate."""
    scanner = scanner_compile(
        [ScannerRule(name="kelvin", pattern=r"(?i)kelvin-[0-9]+")], key_id=KEY_ID, key=KEY
    )
    assert scan_text(scanner, "at \u212aelvin-42 now") == ("at [kelvin] now", ("kelvin",))
    assert scan_text(scanner, "at Kelvin-42 now") == ("at [kelvin] now", ("kelvin",))
    assert scan_text(scanner, "at kelvin now") == ("at kelvin now", ())


def test_clean_texts_are_remembered_and_texts_with_findings_never():
    """A text nothing fired on is remembered by its hash only (bounded); one with a finding
    is not remembered at all, and no text is ever kept."""
    scanner = scanner_compile(BUILTIN_RULES, key_id=KEY_ID, key=KEY)
    clean = "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0"
    assert scan_text(scanner, clean) == (clean, ())
    assert hash(clean) in scanner.cleared
    assert all(isinstance(entry, int) for entry in scanner.cleared)
    again = "".join(list(clean))  # an equal text, another object
    result, fired = scan_text(scanner, again)
    assert result is again and fired == ()
    dirty = "mail alice@example.com"
    assert scan_text(scanner, dirty) == ("mail [email]", ("email",))
    assert hash(dirty) not in scanner.cleared
    assert scan_text(scanner, dirty) == ("mail [email]", ("email",))
    for number in range(2000):
        scan_text(scanner, f"plain text number {number}")
    assert 0 < len(scanner.cleared) <= 2000 // 4  # emptied when full, never unbounded


# --- cost bounds ---------------------------------------------------------------------------

# Per built-in rule, a 64 KiB value holding thousands of its candidates (matches its
# validator accepts or refuses): each one costs Python work, so without a per-value bound
# a client can make one value cost hundreds of milliseconds.
CANDIDATE_FLOODS = {
    "private_key": "-----BEGIN PRIVATE KEY-----x-----END PRIVATE KEY----- ",
    "jwt": "eyJaaaa.a.a ",
    "api_key": " AKIAAAAAAAAAAAAAAAAA",
    "bearer_token": "bearer ",
    "url_password": "a://b:c@ ",
    "email": "a@b.cc ",
    "iban": "DE89 3704 0044 0532 0130 00 ",
    "credit_card": "1 ",
    "us_ssn": "123-45-6789 ",
    "ipv6": "1::1 ",
    "ipv4": "1.1.1.1 ",
}


def _flood(unit: str, size: int = 64 * 1024) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _counting(rule: ScannerRule) -> tuple[ScannerRule, list[str]]:
    """``rule`` with a validator that records each candidate it is asked about (and then
    answers as the rule's own validator would, or accepts when the rule has none)."""
    seen: list[str] = []
    check = rule.validator

    def validator(candidate: str) -> bool:
        seen.append(candidate)
        return check(candidate) if check is not None else True

    return dataclasses.replace(rule, validator=validator), seen


def test_every_builtin_rule_has_a_candidate_flood():
    """The cost-bound test below covers every built-in rule."""
    assert set(CANDIDATE_FLOODS) == {rule.name for rule in BUILTIN_RULES}


@pytest.mark.parametrize("name", sorted(CANDIDATE_FLOODS))
def test_candidates_per_value_are_bounded_and_the_rest_is_redacted(name):
    """However many candidates a value holds, at most MAX_CANDIDATES_PER_TEXT are examined;
    the value is then redacted from the first candidate over the bound to its end (fail
    safe), never let through."""
    rule, seen = _counting(builtin(name))
    scanner = scanner_compile([rule], key_id=KEY_ID, key=KEY)
    text = _flood(CANDIDATE_FLOODS[name])
    result, fired = scan_text(scanner, text)
    assert len(seen) <= scanners.MAX_CANDIDATES_PER_TEXT
    assert fired == (name,)
    findings = scan_findings(scanner, text)
    assert findings[-1].end == len(text)  # the rest of the value is one finding
    assert result.endswith(rule.token)
    assert len(result) < len(text) // 4


def test_a_value_within_the_bound_is_scanned_in_full():
    """Up to the bound every candidate is judged on its own; one more, and the rest of the
    value from that candidate on is redacted as one finding of its rule."""
    bound = scanners.MAX_CANDIDATES_PER_TEXT
    assert scan(" 1.1.1.1" * bound) == " [ipv4]" * bound
    assert scan(" 1.1.1.1" * (bound + 5)) == " [ipv4]" * bound + " [ipv4]"


def test_findings_of_earlier_rules_past_the_bound_are_folded_into_the_rest():
    """The rest of the value is redacted whatever a higher-priority rule found in it."""
    bound = scanners.MAX_CANDIDATES_PER_TEXT
    text = "1.1.1.1 " * (bound + 5) + "mail alice@example.com"
    result, fired = scan_text(SCANNER, text)
    assert "alice" not in result and "@" not in result
    assert result.endswith("[ipv4]")
    assert fired == ("ipv4",)


def test_long_texts_skip_the_gate_and_find_the_same():
    """A text longer than the gate's limit runs every rule's prefilter instead, finding the
    same things."""
    text = "x" * (scanners.gate._GATE_MAX_LENGTH + 1) + " alice@example.com 10.0.0.1 "
    assert scan(text) == "x" * (scanners.gate._GATE_MAX_LENGTH + 1) + " [email] [ipv4] "


def test_an_overlong_local_part_is_redacted_whole():
    """The local part runs from the start of its run of characters (one try per run, so a
    long run before a lone "@" stays linear): nothing of an over-long one is left."""
    assert scan("x" * 100 + "@example.com ok") == "[email] ok"


def test_glued_addresses_are_redacted_with_nothing_left():
    """An address glued to the end of another (no separator) is redacted with it."""
    assert scan("to a@x.io-b@y.io and c@z.io.d@w.io") == "to [email] and [email]"


IPV6_PIECES = ["1", "a", "ffff", "12345", "db8", "0", ":", "::", ":::", ".", "1.2.3.4",
               "255.1.1.1", "%eth0", "g", " ", "-", "_", "x:"]  # fmt: skip


IPV6_TREE = scanner_compile([builtin("ipv6")], key_id=KEY_ID, key=KEY)
IPV6_LISTED = scanner_compile(
    [dataclasses.replace(builtin("ipv6"), pattern=scanners.builtin._ipv6_pattern(scanners.builtin._IPV6_FORMS))],
    key_id=KEY_ID,
    key=KEY,
)


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.sampled_from(IPV6_PIECES), max_size=24))
def test_the_ipv6_tree_finds_what_the_list_of_forms_finds(parts):
    """The IPv6 rule runs a tree of the address forms (each group matched once per start);
    it finds exactly what the plain list of forms, tried one after another, finds."""
    text = "".join(parts)
    assert scan_findings(IPV6_TREE, text) == scan_findings(IPV6_LISTED, text)

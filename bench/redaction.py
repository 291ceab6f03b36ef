"""Redaction throughput and recall: our engine against sentry-relay's ``pii_strip_event``.

Corpus: 10,000 audit-like events (seeded, so every run sees the same data), each with ten
string fields (event_name, outcome, request_id, user_id, org_id, session_id, client_ip,
user_agent, message, referrer) plus a small ``attributes`` map. About a third of the ten
fields carry planted personal data or secrets: raw user/org/session ids, emails, IPv4 and
IPv6 addresses, Luhn-valid card numbers, JWTs, bearer tokens, AWS access key ids, URL
passwords, US SSNs, device UUIDs, and secrets under sensitive map keys. Every planted
value is recorded, and recall is the fraction of them absent from an engine's output.

Both engines apply the same rules to the same fields (see ``RULE_MAPPING``): the three id
fields are hashed; client_ip, user_agent, message, referrer and the attributes values
are scanned with the equivalent content rules; map entries under a sensitive key are
replaced; event_name, outcome and request_id are kept unscanned.

Rows (pinned to one core; rows take turns each repeat; best and median of the repeats):
  ours, redact only        messages pre-built (parse excluded), ``redact_message`` per event
  ours, JSON in            json.loads of 100-event batches, fastjson parse (ParseDict
                           fallback), ``redact_message``; what ingest does
  ours, JSON in, bytes out the same plus ``SerializeToString`` (relay also serialises)
  relay FFI, 100/call      relay's best mode: config JSON encoded once, 100 events per
                           call inside one Sentry event's ``extra.batch`` list, payloads
                           pre-serialised; timed is the C call plus decoding its output
  relay FFI, 1000/call     the same with 1,000 events per call (informative)
  relay FFI, 1/call        the same with one event per call (first 2,000 events)
  relay API, 100/call      ``sentry_relay.pii_strip_event(config, event)`` with dicts
                           (json.dumps of config and event, json.loads of the result)

The target (ours redact-only >= 2x relay's 100-per-call mode, 100% recall for ours)
sets the exit status. Recall also lists removed values whose first characters survive
(relay leaves "2001:db8:[ip]" of a compressed IPv6 address), which are not counted as
misses. Prints machine info and the table, and writes ``bench/results/redaction.json``. Needs
``sentry-relay`` (``pip install -e '.[bench]'`` or ``pip install sentry-relay``).

Run: /work/main/.venv/bin/python bench/redaction.py [--events N] [--repeats N]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import statistics
import string
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from google.protobuf import json_format

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import support  # noqa: E402 (needs the repo on sys.path)

# The governance modules used here import no Django settings (choices.py only needs
# django.db.models.TextChoices), so no django.setup() is required.
from governance.defaults import default_scanner_rules  # noqa: E402 (needs the repo on sys.path)
from governance.fastjson import compile_json_parser  # noqa: E402
from governance.protoc import compile_protos  # noqa: E402
from governance.redaction import (  # noqa: E402
    PolicySpec,
    RedactionPlan,
    redact_message,
    redaction_plan_compile,
)
from governance.scanners import (  # noqa: E402
    DEFAULT_SENSITIVE_KEY_PATTERN,
    scanner_compile,
    sensitive_key_matcher,
)
from governance.schemas import load_schema  # noqa: E402

try:
    from sentry_relay._lowlevel import lib as relay_lib
    from sentry_relay.processing import pii_strip_event
    from sentry_relay.utils import decode_str, encode_str, rustcall
except ImportError:  # pragma: no cover - reported to the user below
    relay_lib = None

SEED = 20_240_611
EVENTS = 10_000
BATCH = 100  # events per relay call and per JSON body on our side
ONE_PER_CALL_EVENTS = 2_000  # relay at one event per call is slow; a subset is enough
REPEATS = 5
TARGET_RATIO = 2.0
LARGE_BATCH = 1_000  # an extra relay row: how much more batching would buy it
# A removed value of at least PARTIAL_MIN_LEN characters whose first PARTIAL_PREFIX
# characters are still in the output counts as partially kept (reported, not a miss).
PARTIAL_MIN_LEN = 16
PARTIAL_PREFIX = 8
KEY_ID = "k1"
KEY = "bench-hash-key"  # a benchmark key, not a secret
SCHEMA = "bench.v1.AuditEvent"

AUDIT_PROTO = """
syntax = "proto3";
package bench.v1;
message AuditEvent {
  string event_name = 1;
  string outcome = 2;
  string request_id = 3;
  string user_id = 4;
  string org_id = 5;
  string session_id = 6;
  string client_ip = 7;
  string user_agent = 8;
  string message = 9;
  string referrer = 10;
  map<string, string> attributes = 11;
}
"""

CORE_FIELDS = (
    "event_name",
    "outcome",
    "request_id",
    "user_id",
    "org_id",
    "session_id",
    "client_ip",
    "user_agent",
    "message",
    "referrer",
)
KEPT = ("event_name", "outcome", "request_id")
HASHED = ("user_id", "org_id", "session_id")
SCANNED = ("client_ip", "user_agent", "message", "referrer")
MAP = "attributes"

# --- rules -----------------------------------------------------------------------------

OUR_POLICIES: dict[str, PolicySpec] = {
    **{name: PolicySpec("internal", "keep") for name in KEPT},
    **{name: PolicySpec("pseudonymous_id", "hash") for name in HASHED},
    **{name: PolicySpec("internal", "keep", scan=True) for name in SCANNED},
    # Map values are always scanned and sensitive keys always replaced by the engine.
    MAP: PolicySpec("internal", "keep"),
}

# Relay lacks JWT, cloud API key and Basic credential rules: custom patterns, translated
# from our built-ins (Rust's regex crate has no look-around, so \b stands in for it).
RELAY_CUSTOM_RULES: dict[str, dict[str, Any]] = {
    "jwt": {
        "type": "pattern",
        "pattern": (
            r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"
            r"(?:\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)?"
        ),
        "redaction": {"method": "replace", "text": "[jwt]"},
    },
    "api_key": {
        "type": "pattern",
        "pattern": (
            r"\b(?:(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,247}"
            r"|(?:AKIA|ASIA)[0-9A-Z]{16}\b"
            r"|gh[pousr]_[0-9A-Za-z]{36,251}"
            r"|github_pat_[0-9A-Za-z_]{22,242}"
            r"|xox[abposr]-[0-9A-Za-z-]{10,250}"
            r"|AIza[0-9A-Za-z_-]{35}"
            r"|glpat-[0-9A-Za-z_-]{20,50})"
        ),
        "redaction": {"method": "replace", "text": "[api_key]"},
    },
    "basic_auth": {
        "type": "pattern",
        "pattern": r"(?i)\bbasic\s+([A-Za-z0-9+/]{8,}={0,2})",
        "replaceGroups": [1],
        "redaction": {"method": "replace", "text": "[token]"},
    },
    "sensitive_key": {
        # Our sensitive-key pattern, as relay's key/value pair rule.
        "type": "redact_pair",
        "keyPattern": DEFAULT_SENSITIVE_KEY_PATTERN,
        "redaction": {"method": "replace", "text": "[redacted]"},
    },
}

# Relay's counterparts of our scanner rules, in our priority order.
RELAY_SCAN_RULES = [
    "@pemkey",  # private_key
    "jwt",  # jwt (custom)
    "api_key",  # api_key (custom)
    "@bearer",  # bearer_token: Bearer scheme
    "basic_auth",  # bearer_token: Basic scheme (custom)
    "@urlauth",  # url_password
    "@email",  # email
    "@iban",  # iban
    "@creditcard",  # credit_card
    "@usssn",  # us_ssn
    "@ip",  # ipv4 + ipv6
    "@uuid:hash",  # uuid -> hash (default_scanner_rules)
]


def _relay_selector(fields: Iterable[str]) -> str:
    return " || ".join(f"extra.batch.*.{name}" for name in fields)


RELAY_CONFIG: dict[str, Any] = {
    "rules": RELAY_CUSTOM_RULES,
    "applications": {
        _relay_selector(HASHED): ["@anything:hash"],
        _relay_selector([*SCANNED, f"{MAP}.*"]): RELAY_SCAN_RULES,
        _relay_selector([f"{MAP}.*"]): ["sensitive_key"],
    },
}

RULE_MAPPING = {
    "event layout (relay)": (
        "one Sentry event per call: {'extra': {'batch': [event, ...]}}; each event is the "
        "proto3 JSON dict of bench.v1.AuditEvent (snake_case keys, attributes as an object)"
    ),
    "user_id, org_id, session_id": (
        "ours PolicySpec('pseudonymous_id', 'hash') (HMAC-SHA256) | relay '@anything:hash' "
        "on extra.batch.*.<field> (HMAC-SHA1)"
    ),
    "client_ip, user_agent, message, referrer": (
        "ours PolicySpec('internal', 'keep', scan=True) with default_scanner_rules() | relay "
        + ", ".join(RELAY_SCAN_RULES)
        + " on extra.batch.*.<field>"
    ),
    "attributes (map<string,string>)": (
        "ours: values scanned, keys matching the sensitive-key pattern -> '[redacted]' "
        "(keys are scanned too) | relay: the same scan rules on extra.batch.*.attributes.* "
        "plus a redact_pair rule with our sensitive-key pattern (keys not scanned)"
    ),
    "event_name, outcome, request_id": "kept, not scanned, on both sides",
}

# --- corpus ----------------------------------------------------------------------------

ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
B64URL = ALNUM + "-_"
FIRST = ("jane", "john", "maria", "wei", "amir", "olga", "kofi", "lucia", "ravi", "emma")
LAST = ("doe", "smith", "garcia", "chen", "haddad", "petrova", "mensah", "rossi", "iyer")
DOMAINS = ("example.com", "corp.example.org", "mail.example.co.uk", "example.io")
EVENT_NAMES = (
    "auth.login",
    "auth.logout",
    "auth.mfa_challenge",
    "billing.payment",
    "billing.card_updated",
    "admin.role_changed",
    "admin.user_invited",
    "data.export",
    "api.key_rotated",
    "security.waf_block",
)
OUTCOMES = ("success", "success", "success", "denied", "failed", "error")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "ExampleCLI/3.4.1 (linux; amd64)",
)
PLAIN_MESSAGES = (
    "user updated notification preferences",
    "role changed from viewer to editor",
    "export job {n} completed in {ms} ms",
    "api key rotated by owner",
    "session refreshed after 1800 s idle",
    "build 2024.06.{d} deployed to eu-west-1",
    "order #{n} shipped in 3 parcels",
    "mfa challenge passed (totp)",
    "invoice INV-{n} generated for 4 seats",
    "rate limit raised to 1200 req/min for plan team",
)
PLAIN_REFERRERS = (
    "https://app.example.com/dashboard",
    "https://app.example.com/projects/{n}/settings",
    "https://www.google.com/",
    "https://docs.example.com/guides/sso?lang=en",
)
PLANS = ("free", "team", "business", "enterprise")
REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-2")

# Shares of events in which a field carries planted data (user_id and org_id always do).
P_SESSION = 0.4
P_CLIENT_IP = 0.4
P_MESSAGE = 0.4
P_REFERRER = 0.1
P_USER_AGENT = 0.05
P_ATTRIBUTE = 0.1


@dataclass
class Planted:
    kind: str
    field: str
    value: str


@dataclass
class Event:
    data: dict[str, Any]
    planted: list[Planted] = field(default_factory=list)


def _chars(rng: random.Random, alphabet: str, count: int) -> str:
    return "".join(rng.choices(alphabet, k=count))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _luhn_complete(partial: str) -> str:
    """Append the check digit that makes ``partial`` + digit Luhn-valid."""
    total = 0
    for index, char in enumerate(reversed(partial)):
        value = int(char)
        if index % 2 == 0:  # doubled once the check digit is appended
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return partial + str((10 - total % 10) % 10)


class Corpus:
    """Generators for each kind of planted value (all from one seeded RNG)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def email(self) -> str:
        rng = self.rng
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = rng.choice(
            (
                f"{first}.{last}",
                f"{first[0]}{last}{rng.randint(1, 999)}",
                f"{first}+{rng.choice(('billing', 'ops', 'test'))}",
            )
        )
        return f"{local}@{rng.choice(DOMAINS)}"

    def ipv4(self) -> str:
        rng = self.rng
        return (
            f"{rng.randint(1, 223)}.{rng.randint(0, 255)}."
            f"{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        )

    def ipv6(self) -> str:
        rng = self.rng
        groups = [f"{rng.randint(0x2001, 0x2C0F):x}"] + [
            f"{rng.randint(1, 0xFFFF):x}" for _ in range(7)
        ]
        if rng.random() < 0.5:
            return ":".join(groups)
        # Compressed: a run of zero groups written as "::".
        return ":".join(groups[:3]) + "::" + ":".join(groups[5:])

    def card(self) -> str:
        rng = self.rng
        prefix, length = rng.choice(
            (
                ("4", 16),  # Visa
                (str(rng.randint(51, 55)), 16),  # Mastercard 5-series
                (str(rng.randint(2221, 2720)), 16),  # Mastercard 2-series
                (rng.choice(("34", "37")), 15),  # Amex
                ("6011", 16),  # Discover
            )
        )
        digits = _luhn_complete(prefix + _chars(rng, string.digits, length - len(prefix) - 1))
        style = rng.choice(("plain", "space", "dash"))
        if style == "plain":
            return digits
        sep = " " if style == "space" else "-"
        cuts = (4, 10) if length == 15 else (4, 8, 12)
        parts, start = [], 0
        for cut in (*cuts, length):
            parts.append(digits[start:cut])
            start = cut
        return sep.join(parts)

    def jwt(self) -> str:
        rng = self.rng
        header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
        claims = {
            "sub": f"usr_{rng.randint(10**8, 10**9)}",
            "iat": rng.randint(1_700_000_000, 1_800_000_000),
        }
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        return f"{header}.{payload}.{_chars(rng, B64URL, 43)}"

    def bearer(self) -> str:
        return _chars(self.rng, ALNUM, self.rng.randint(32, 40))

    def aws_key(self) -> str:
        return "AKIA" + _chars(self.rng, UPPER_DIGITS, 16)

    def password(self) -> str:
        return _chars(self.rng, ALNUM + "-_.", self.rng.randint(12, 20))

    def ssn(self) -> str:
        rng = self.rng
        area = rng.choice((rng.randint(1, 665), rng.randint(667, 899)))
        return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"

    def uuid(self) -> str:
        hexes = _chars(self.rng, "0123456789abcdef", 32)
        return f"{hexes[:8]}-{hexes[8:12]}-4{hexes[13:16]}-a{hexes[17:20]}-{hexes[20:]}"

    def pii_message(self) -> tuple[str, list[tuple[str, str]]]:
        """A free-text message with planted values: (text, [(kind, value), ...])."""
        rng = self.rng
        choice = rng.randrange(14)
        if choice == 0:
            email, ip = self.email(), self.ipv4()
            return f"login failed for {email} from {ip}", [("email", email), ("ipv4", ip)]
        if choice == 1:
            email = self.email()
            return f"password reset requested by {email}", [("email", email)]
        if choice == 2:
            card = self.card()
            return f"payment declined for card {card} (insufficient funds)", [("card", card)]
        if choice == 3:
            card = self.card()
            return f"card on file updated: {card}", [("card", card)]
        if choice == 4:
            token = self.bearer()
            return (
                f"upstream returned 401; request had Authorization: Bearer {token}",
                [("bearer", token)],
            )
        if choice == 5:
            token = self.jwt()
            return f"sso callback id_token={token} state=ok", [("jwt", token)]
        if choice == 6:
            token = self.jwt()
            return f"webhook call signed with Bearer {token}", [("jwt", token)]
        if choice == 7:
            key = self.aws_key()
            return f"leaked credential in build log: aws_access_key_id={key}", [("aws_key", key)]
        if choice == 8:
            secret = self.password()
            user = rng.choice(("svc_export", "analytics", "admin"))
            return (
                f"export failed: could not connect to postgres://{user}:{secret}"
                f"@db-{rng.randint(1, 9)}.internal:5432/analytics",
                [("url_password", secret)],
            )
        if choice == 9:
            ssn = self.ssn()
            return f"kyc check mismatch for ssn {ssn}", [("ssn", ssn)]
        if choice == 10:
            ip = self.ipv6()
            return f"blocked request from {ip} by waf rule 942100", [("ipv6", ip)]
        if choice == 11:
            device, email = self.uuid(), self.email()
            return (
                f"device {device} enrolled by {email}",
                [("device_uuid", device), ("email", email)],
            )
        if choice == 12:
            first, second = self.email(), self.email()
            return f"invite sent to {first}; cc {second}", [("email", first), ("email", second)]
        ip = self.ipv4()
        return f"client {ip} exceeded rate limit (1200 req/min)", [("ipv4", ip)]

    def plain(self, template: str) -> str:
        rng = self.rng
        return template.format(
            n=rng.randint(1000, 99999), ms=rng.randint(50, 9000), d=rng.randint(10, 28)
        )

    def event(self) -> Event:
        rng = self.rng
        data: dict[str, Any] = {
            "event_name": rng.choice(EVENT_NAMES),
            "outcome": rng.choice(OUTCOMES),
            "request_id": f"req_{_chars(rng, '0123456789abcdef', 16)}",
        }
        planted: list[Planted] = []

        def plant(name: str, kind: str, value: str, text: str | None = None) -> None:
            data[name] = value if text is None else text
            planted.append(Planted(kind, name, value))

        plant("user_id", "user_id", f"usr_{rng.randint(10**9, 10**10 - 1)}")
        plant("org_id", "org_id", f"org_{_chars(rng, string.ascii_lowercase + string.digits, 10)}")
        if rng.random() < P_SESSION:
            session = self.uuid() if rng.random() < 0.5 else f"sess_{_chars(rng, ALNUM, 24)}"
            plant("session_id", "session_id", session)
        if rng.random() < P_CLIENT_IP:
            if rng.random() < 0.75:
                plant("client_ip", "ipv4", self.ipv4())
            else:
                plant("client_ip", "ipv6", self.ipv6())
        if rng.random() < P_USER_AGENT:
            email = self.email()
            plant("user_agent", "email", email, f"ExampleBot/2.1 (+mailto:{email})")
        else:
            data["user_agent"] = rng.choice(USER_AGENTS)
        if rng.random() < P_MESSAGE:
            text, values = self.pii_message()
            data["message"] = text
            planted.extend(Planted(kind, "message", value) for kind, value in values)
        else:
            data["message"] = self.plain(rng.choice(PLAIN_MESSAGES))
        if rng.random() < P_REFERRER:
            if rng.random() < 0.5:
                email = self.email()
                text = f"https://app.example.com/invite/accept?email={email}&plan=team"
                plant("referrer", "email", email, text)
            else:
                secret = self.password()
                text = f"https://partner:{secret}@hooks.example.net/callback?id=7"
                plant("referrer", "url_password", secret, text)
        elif rng.random() < 0.7:
            data["referrer"] = self.plain(rng.choice(PLAIN_REFERRERS))
        attributes = {"plan": rng.choice(PLANS), "region": rng.choice(REGIONS)}
        if rng.random() < P_ATTRIBUTE:
            if rng.random() < 0.5:
                secret = self.password()
                attributes["db_password"] = secret
                planted.append(Planted("sensitive_key", MAP, secret))
            else:
                email = self.email()
                attributes["contact_email"] = email
                planted.append(Planted("email", MAP, email))
        data[MAP] = attributes
        return Event(data=data, planted=planted)


def make_corpus(count: int) -> list[Event]:
    corpus = Corpus(SEED)
    return [corpus.event() for _ in range(count)]


# --- engines ---------------------------------------------------------------------------


def load_ours() -> tuple[type, RedactionPlan, Callable[[dict], Any]]:
    file_set = compile_protos({"bench_audit.proto": AUDIT_PROTO}, include_platform_protos=False)
    compiled = load_schema(file_set.SerializeToString(), SCHEMA)
    scanner = scanner_compile(default_scanner_rules(), key_id=KEY_ID, key=KEY)
    plan = redaction_plan_compile(
        compiled.descriptor,
        OUR_POLICIES,
        key_id=KEY_ID,
        key=KEY,
        scanner=scanner,
        sensitive_key=sensitive_key_matcher(DEFAULT_SENSITIVE_KEY_PATTERN),
    )
    parse = compile_json_parser(compiled.descriptor, compiled.message_class)
    return compiled.message_class, plan, parse


def _batches(items: list, size: int) -> list[list]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def relay_payload(events: list[dict]) -> dict:
    return {"extra": {"batch": events}}


# --- recall ----------------------------------------------------------------------------


def _strings(value: Any) -> Iterable[str]:
    """Every string in a JSON-like value, dict keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@dataclass
class Recall:
    caught: int = 0
    total: int = 0
    by_kind: dict[str, list[int]] = field(default_factory=dict)
    misses: list[dict[str, str]] = field(default_factory=list)
    # Removed values whose start survives (e.g. "2001:db8:[ip]"): not misses, but reported.
    partial: dict[str, int] = field(default_factory=dict)
    partial_examples: list[dict[str, str]] = field(default_factory=list)

    def check(self, event: Event, output: dict) -> None:
        text = "\x00".join(_strings(output))
        for planted in event.planted:
            counts = self.by_kind.setdefault(planted.kind, [0, 0])
            counts[1] += 1
            self.total += 1
            if planted.value in text:
                if sum(1 for miss in self.misses if miss["kind"] == planted.kind) < 3:
                    self.misses.append(
                        {
                            "kind": planted.kind,
                            "field": planted.field,
                            "value": planted.value,
                            "input": _field_text(event.data, planted.field),
                            "output": _field_text(output, planted.field),
                        }
                    )
            else:
                counts[0] += 1
                self.caught += 1
                value = planted.value
                if len(value) >= PARTIAL_MIN_LEN and value[:PARTIAL_PREFIX] in text:
                    self.partial[planted.kind] = self.partial.get(planted.kind, 0) + 1
                    if len(self.partial_examples) < 3:
                        self.partial_examples.append(
                            {
                                "kind": planted.kind,
                                "value": value,
                                "output": _field_text(output, planted.field),
                            }
                        )

    @property
    def ratio(self) -> float:
        return self.caught / self.total if self.total else 1.0

    def summary(self) -> dict[str, Any]:
        return {
            "recall": self.ratio,
            "caught": self.caught,
            "planted": self.total,
            "by_kind": {
                kind: {"caught": caught, "planted": total, "recall": caught / total}
                for kind, (caught, total) in sorted(self.by_kind.items())
            },
            "miss_examples": self.misses,
            "partially_kept_by_kind": dict(sorted(self.partial.items())),
            "partially_kept_examples": self.partial_examples,
        }


def _field_text(data: dict, name: str) -> str:
    value = data.get(name, "")
    return json.dumps(value) if isinstance(value, dict) else str(value)


def recall_ours(events: list[Event], message_class: type, plan: RedactionPlan) -> Recall:
    recall = Recall()
    for event in events:
        message = json_format.ParseDict(event.data, message_class())
        outcome = redact_message(plan, message)
        if outcome.rejection is not None:
            raise SystemExit(f"our engine rejected a corpus event: {outcome.rejection}")
        output = json_format.MessageToDict(message, preserving_proto_field_name=True)
        recall.check(event, output)
    return recall


def recall_relay(events: list[Event]) -> Recall:
    recall = Recall()
    for chunk in _batches(events, BATCH):
        result = pii_strip_event(RELAY_CONFIG, relay_payload([event.data for event in chunk]))
        outputs = result["extra"]["batch"]
        if len(outputs) != len(chunk):
            raise SystemExit("relay returned a different number of events")
        for event, output in zip(chunk, outputs, strict=True):
            recall.check(event, output)
    return recall


# --- timing ----------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    engine: str
    events: int
    prepare: Callable[[], Any]  # builds the inputs, untimed
    run: Callable[[Any], object]  # the timed work
    notes: str
    seconds: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return self.events / min(self.seconds)

    @property
    def median(self) -> float:
        return self.events / statistics.median(self.seconds)


def measure(rows: list[Row], repeats: int) -> None:
    """Time every row ``repeats`` times after one warm-up each, rows taking turns.

    Interleaving the rows means a burst of load from elsewhere on the machine slows all
    of them alike, so the ratios stay meaningful even when absolute numbers drift.
    """
    for row in rows:
        row.run(row.prepare())
    for _ in range(repeats):
        for row in rows:
            inputs = row.prepare()
            start = time.perf_counter()
            row.run(inputs)
            row.seconds.append(time.perf_counter() - start)


def ours_rows(
    events: list[Event], message_class: type, plan: RedactionPlan, parse: Callable
) -> list[Row]:
    serialized = [
        json_format.ParseDict(event.data, message_class()).SerializeToString() for event in events
    ]
    from_string = message_class.FromString
    bodies = [
        json.dumps([event.data for event in chunk]).encode("utf-8")
        for chunk in _batches(events, BATCH)
    ]
    parse_dict = json_format.ParseDict
    fast_hits = sum(parse(event.data) is not None for event in events)

    def prebuilt() -> list:
        return [from_string(data) for data in serialized]

    def redact_only(messages: list) -> None:
        for message in messages:
            redact_message(plan, message)

    def json_in(serialize: bool) -> Callable[[list[bytes]], list]:
        def run(batch_bodies: list[bytes]) -> list:
            out = []
            for body in batch_bodies:
                for data in json.loads(body):
                    message = parse(data)
                    if message is None:
                        message = parse_dict(data, message_class())
                    redact_message(plan, message)
                    out.append(message.SerializeToString() if serialize else message)
            return out

        return run

    # The JSON rows must produce what the pre-built row produces.
    reference = prebuilt()
    redact_only(reference)
    expected = [message.SerializeToString(deterministic=True) for message in reference]
    got = [m.SerializeToString(deterministic=True) for m in json_in(False)(bodies)]
    assert got == expected, "JSON path and pre-built path disagree"

    count = len(events)
    return [
        Row(
            "ours: redact only (pre-built)",
            "ours",
            count,
            prebuilt,
            redact_only,
            "messages built untimed; redact_message per event",
        ),
        Row(
            "ours: JSON in",
            "ours",
            count,
            lambda: bodies,
            json_in(False),
            f"json.loads per {BATCH}-event body + fastjson ({fast_hits}/{count} fast path)"
            " + redact",
        ),
        Row(
            "ours: JSON in, bytes out",
            "ours",
            count,
            lambda: bodies,
            json_in(True),
            "the row above + SerializeToString",
        ),
    ]


def relay_rows(events: list[Event]) -> list[Row]:
    strip = relay_lib.relay_pii_strip_event
    config_str = encode_str(json.dumps(RELAY_CONFIG))  # serialised once, reused by every call
    datas = [event.data for event in events]

    def encoded(size: int, subset: list[dict]) -> list:
        return [encode_str(json.dumps(relay_payload(chunk))) for chunk in _batches(subset, size)]

    def ffi(payloads: list) -> None:
        for payload in payloads:
            decode_str(rustcall(strip, config_str, payload), free=True)

    batched = encoded(BATCH, datas)
    large = encoded(LARGE_BATCH, datas)
    single_subset = datas[:ONE_PER_CALL_EVENTS]
    single = encoded(1, single_subset)
    api_payloads = [relay_payload(chunk) for chunk in _batches(datas, BATCH)]

    def api(payloads: list[dict]) -> None:
        for payload in payloads:
            pii_strip_event(RELAY_CONFIG, payload)

    return [
        Row(
            f"relay FFI: {BATCH}/call (best mode)",
            "relay",
            len(datas),
            lambda: batched,
            ffi,
            "config encoded once; payloads pre-serialised; C call + output decode",
        ),
        Row(
            f"relay FFI: {LARGE_BATCH}/call",
            "relay",
            len(datas),
            lambda: large,
            ffi,
            f"as above, {LARGE_BATCH} events per call (informative; not the target's mode)",
        ),
        Row(
            "relay FFI: 1/call",
            "relay",
            len(single_subset),
            lambda: single,
            ffi,
            f"as above, one event per call (first {len(single_subset)} events)",
        ),
        Row(
            f"relay API: {BATCH}/call",
            "relay",
            len(datas),
            lambda: api_payloads,
            api,
            "pii_strip_event(dict, dict): json.dumps in, json.loads out",
        ),
    ]


# --- report ----------------------------------------------------------------------------


def corpus_stats(events: list[Event]) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    pii_fields = 0
    for event in events:
        fields_hit = {planted.field for planted in event.planted if planted.field in CORE_FIELDS}
        pii_fields += len(fields_hit)
        for planted in event.planted:
            kinds[planted.kind] = kinds.get(planted.kind, 0) + 1
    return {
        "events": len(events),
        "seed": SEED,
        "planted_values": sum(kinds.values()),
        "planted_by_kind": dict(sorted(kinds.items())),
        "share_of_core_fields_with_pii": pii_fields / (len(events) * len(CORE_FIELDS)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    if relay_lib is None:
        print("sentry-relay is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2

    pinning = support.pin_to_one_core()
    events = make_corpus(args.events)
    stats = corpus_stats(events)
    message_class, plan, parse = load_ours()

    recalls = {"ours": recall_ours(events, message_class, plan), "relay": recall_relay(events)}
    rows = ours_rows(events, message_class, plan, parse) + relay_rows(events)
    measure(rows, args.repeats)

    machine = {
        "processor": platform.processor() or platform.machine(),
        "cpu_model": support.cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "protobuf": support.protobuf_version(),
        "sentry_relay": metadata.version("sentry-relay"),
        "cores_visible": os.cpu_count(),
        "pinning": pinning,
    }
    print(f"machine: {machine['processor']} ({machine['cpu_model']}) | {machine['platform']}")
    print(
        f"python {machine['python']} | protobuf {machine['protobuf']} | "
        f"sentry-relay {machine['sentry_relay']} | {pinning}"
    )
    print(
        f"corpus: {stats['events']:,} events (seed {SEED}), {stats['planted_values']:,} planted "
        f"values, {stats['share_of_core_fields_with_pii']:.0%} of the 10 core fields carry PII; "
        f"{args.repeats} repeats, events/s = best (median)"
    )
    print()
    header = f"{'engine / mode':<36} {'events/s':>22} {'recall':>8}  notes"
    print(header)
    print("-" * len(header))
    for row in rows:
        recall = recalls[row.engine].ratio
        speed = f"{row.best:,.0f} ({row.median:,.0f})"
        print(f"{row.name:<36} {speed:>22} {recall:>8.2%}  {row.notes}")

    by_name = {row.name: row for row in rows}
    relay_best = by_name[f"relay FFI: {BATCH}/call (best mode)"]
    ratios = {
        "redact_only_vs_relay_best": by_name["ours: redact only (pre-built)"].best
        / relay_best.best,
        "json_in_vs_relay_best": by_name["ours: JSON in"].best / relay_best.best,
        "json_in_bytes_out_vs_relay_best": by_name["ours: JSON in, bytes out"].best
        / relay_best.best,
    }
    print()
    print(f"speed ratio ours/relay (relay in best mode, {BATCH} events/call):")
    for label, value in ratios.items():
        print(f"  {label:<34} {value:5.2f}x")

    for engine, recall in recalls.items():
        missed = {
            kind: counts for kind, counts in sorted(recall.by_kind.items()) if counts[0] < counts[1]
        }
        if not missed:
            print(f"\n{engine}: all {recall.total:,} planted values removed")
        else:
            kept = recall.total - recall.caught
            print(f"\n{engine}: {kept:,} of {recall.total:,} planted values kept")
            for kind, (caught, total) in missed.items():
                print(f"  {kind:<14} {caught:>6,}/{total:<6,} caught ({caught / total:.2%})")
            for miss in recall.misses:
                print(f"    e.g. {miss['kind']} in {miss['field']}: {miss['output'][:110]!r}")
        if recall.partial:
            kinds = ", ".join(f"{kind} {count:,}" for kind, count in sorted(recall.partial.items()))
            print(f"  removed but partially kept (first {PARTIAL_PREFIX} chars survive): {kinds}")
            for example in recall.partial_examples:
                print(f"    e.g. {example['value']!r} -> {example['output'][:110]!r}")

    passed = ratios["redact_only_vs_relay_best"] >= TARGET_RATIO and recalls["ours"].ratio == 1.0
    print(
        f"\ntarget: ours >= {TARGET_RATIO:g}x relay (redact only vs relay best mode) and "
        f"100% recall: {'PASS' if passed else 'FAIL'}"
    )

    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path = out_dir / "redaction.json"
    report = {
        "benchmark": "redaction",
        "corpus": stats,
        "batch_size": BATCH,
        "repeats": args.repeats,
        "machine": machine,
        "rule_mapping": RULE_MAPPING,
        "relay_config": RELAY_CONFIG,
        "rows": [
            {
                "name": row.name,
                "engine": row.engine,
                "events": row.events,
                "events_per_s_best": round(row.best),
                "events_per_s_median": round(row.median),
                "recall": recalls[row.engine].ratio,
                "notes": row.notes,
            }
            for row in rows
        ],
        "speed_ratios": ratios,
        "recall": {engine: recall.summary() for engine, recall in recalls.items()},
        "target": {"ratio": TARGET_RATIO, "recall": 1.0, "passed": passed},
    }
    out_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out_path.relative_to(ROOT)}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

"""Redaction engine: pure functions over a compiled plan and a message, no database.

A plan is compiled once per schema revision and policy epoch from the field
policies (classification + action per field path), the content scanners and the
sensitive-key rule for maps. Applying it walks only the paths that need work.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from .choices import Classification, RedactionAction
from .hashing import keyed_hash, keyed_hash_candidates
from .scanners import CompiledScanner, scan_text
from .schemas import TIMESTAMP_TYPE, is_map_field, leaf_fields

# A pseudonymous id kept as it arrives must already be a one-way hash.
PSEUDONYM_RE = re.compile(r"^(sha256:[0-9a-f]{64}|k[0-9A-Za-z_-]{0,15}:[0-9a-f]{64})$")
REDACTED_TOKEN = "[redacted]"  # noqa: S105 (a placeholder, not a secret)
UNCLASSIFIED_DROP = "drop"
UNCLASSIFIED_REJECT = "reject"
MS_PER_HOUR = 3_600_000

__all__ = ["keyed_hash", "keyed_hash_candidates", "redact_message", "redaction_plan_compile"]


@dataclass(frozen=True)
class PolicySpec:
    """A field policy as the engine needs it (built from the database or from options)."""

    classification: str
    action: str
    keep_chars: int | None = None
    scan: bool = False


@dataclass(frozen=True)
class FieldRule:
    path: tuple[str, ...]
    dotted: str
    action: str
    classification: str
    keep_chars: int
    scan: bool
    is_map: bool
    is_string: bool
    is_timestamp: bool
    is_integer: bool
    unclassified: bool = False


@dataclass(frozen=True)
class RedactionPlan:
    rules: tuple[FieldRule, ...]
    key_id: str
    key: str
    scanner: CompiledScanner | None
    sensitive_key: Callable[[str], bool]
    unhashed_pseudonym: str  # "reject" or "hash"

    def hash(self, value: str) -> str:
        return keyed_hash(value, key_id=self.key_id, key=self.key)


@dataclass(frozen=True)
class PolicyRejection:
    code: str
    field: str
    message: str


@dataclass
class RedactionOutcome:
    redactions: list[tuple[str, str]]
    rejection: PolicyRejection | None = None


INTEGER_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)


def redaction_plan_compile(
    descriptor: Descriptor,
    policies: Mapping[str, PolicySpec],
    *,
    key_id: str,
    key: str,
    scanner: CompiledScanner | None,
    sensitive_key: Callable[[str], bool],
    unclassified: str = UNCLASSIFIED_DROP,
    unhashed_pseudonym: str = UNCLASSIFIED_REJECT,
) -> RedactionPlan:
    """Build the plan: one rule per leaf path that needs any work at ingest.

    Leaves with no policy fail closed: dropped, or the event rejected when
    ``unclassified`` is ``"reject"``. Plain ``keep`` leaves cost nothing at ingest.
    """
    rules = []
    for path, field in leaf_fields(descriptor):
        spec = policies.get(path)
        is_map = is_map_field(field)
        value_field = field.message_type.fields_by_name["value"] if is_map else field
        base = {
            "path": tuple(path.split(".")),
            "dotted": path,
            "is_map": is_map,
            "is_string": value_field.type == FieldDescriptor.TYPE_STRING,
            "is_timestamp": value_field.message_type is not None
            and value_field.message_type.full_name == TIMESTAMP_TYPE,
            "is_integer": value_field.type in INTEGER_TYPES,
        }
        if spec is None:
            action = (
                RedactionAction.REJECT_EVENT
                if unclassified == UNCLASSIFIED_REJECT
                else RedactionAction.DROP
            )
            rules.append(
                FieldRule(
                    **base,
                    action=action,
                    classification="",
                    keep_chars=0,
                    scan=False,
                    unclassified=True,
                )
            )
            continue
        needs_work = (
            spec.action != RedactionAction.KEEP
            or (spec.scan and base["is_string"])
            or (is_map and base["is_string"])  # map values are always scanned
            or spec.classification == Classification.PSEUDONYMOUS_ID
        )
        if needs_work:
            rules.append(
                FieldRule(
                    **base,
                    action=spec.action,
                    classification=spec.classification,
                    keep_chars=spec.keep_chars if spec.keep_chars is not None else 4,
                    scan=spec.scan or is_map,
                )
            )
    return RedactionPlan(
        rules=tuple(rules),
        key_id=key_id,
        key=key,
        scanner=scanner,
        sensitive_key=sensitive_key,
        unhashed_pseudonym=unhashed_pseudonym,
    )


# -- applying a plan ------------------------------------------------------------------


def _parents(message: Message, path: Sequence[str]) -> Iterator[Message]:
    """Yield every message that holds the last field of ``path`` (through repeated/maps)."""
    if len(path) == 1:
        yield message
        return
    head = path[0]
    field = message.DESCRIPTOR.fields_by_name[head]
    if is_map_field(field):
        for child in getattr(message, head).values():
            yield from _parents(child, path[1:])
    elif field.is_repeated:
        for child in getattr(message, head):
            yield from _parents(child, path[1:])
    elif message.HasField(head):
        yield from _parents(getattr(message, head), path[1:])


def redact_message(plan: RedactionPlan, message: Message) -> RedactionOutcome:
    """Apply ``plan`` to ``message`` in place.

    Return the (path, rule) pairs that changed something, or the rejection when a
    policy refuses the event. Never returns or records a value.
    """
    outcome = RedactionOutcome(redactions=[])
    for rule in plan.rules:
        for parent in _parents(message, rule.path):
            rejection = _apply(plan, rule, parent, outcome.redactions)
            if rejection is not None:
                outcome.rejection = rejection
                return outcome
    return outcome


def _present(parent: Message, name: str) -> bool:
    field = parent.DESCRIPTOR.fields_by_name[name]
    if field.is_repeated:
        return len(getattr(parent, name)) > 0
    if field.has_presence:
        return parent.HasField(name)
    return bool(getattr(parent, name))


def _apply(
    plan: RedactionPlan, rule: FieldRule, parent: Message, record: list[tuple[str, str]]
) -> PolicyRejection | None:
    name = rule.path[-1]
    if not _present(parent, name):
        return None
    action = rule.action
    if action == RedactionAction.REJECT_EVENT:
        if rule.unclassified:
            return PolicyRejection(
                "unclassified_field", rule.dotted, "field has no classification yet"
            )
        return PolicyRejection("policy_rejected", rule.dotted, "field is not allowed by policy")
    if action == RedactionAction.DROP:
        parent.ClearField(name)
        record.append((rule.dotted, "unclassified" if rule.unclassified else "drop"))
        return None
    if rule.is_map:
        _apply_map(plan, rule, getattr(parent, name), record)
        return None
    if action == RedactionAction.KEEP:
        return _keep(plan, rule, parent, name, record)
    if action == RedactionAction.GENERALIZE:
        _generalize(rule, parent, name, record)
        return None
    if not rule.is_string:
        # A hash or a mask cannot live in a number: dropping is the safe fallback.
        parent.ClearField(name)
        record.append((rule.dotted, f"{action}:drop"))
        return None
    field = parent.DESCRIPTOR.fields_by_name[name]
    transform = _string_transform(plan, rule)
    if field.is_repeated:
        values = getattr(parent, name)
        values[:] = [transform(value) for value in values]
    else:
        setattr(parent, name, transform(getattr(parent, name)))
    record.append((rule.dotted, action))
    return None


def _string_transform(plan: RedactionPlan, rule: FieldRule) -> Callable[[str], str]:
    keep = rule.keep_chars
    if rule.action == RedactionAction.HASH:
        return plan.hash
    if rule.action == RedactionAction.MASK:
        return lambda value: "*" * max(len(value) - keep, 0) + (value[-keep:] if keep else "")
    if rule.action == RedactionAction.TRUNCATE:
        return lambda value: value[:keep]
    raise ValueError(f"no string transform for {rule.action}")


def _keep(
    plan: RedactionPlan,
    rule: FieldRule,
    parent: Message,
    name: str,
    record: list[tuple[str, str]],
) -> PolicyRejection | None:
    if not rule.is_string:
        return None
    field = parent.DESCRIPTOR.fields_by_name[name]
    values = list(getattr(parent, name)) if field.is_repeated else [getattr(parent, name)]
    changed = False
    if rule.classification == Classification.PSEUDONYMOUS_ID:
        for index, value in enumerate(values):
            if PSEUDONYM_RE.match(value):
                continue
            if plan.unhashed_pseudonym == UNCLASSIFIED_REJECT:
                return PolicyRejection(
                    "not_pseudonymous",
                    rule.dotted,
                    "must be a one-way hash ('sha256:' and 64 hex digits)",
                )
            values[index] = plan.hash(value)
            changed = True
        if changed:
            record.append((rule.dotted, "hash_at_edge"))
    if rule.scan and plan.scanner is not None:
        for index, value in enumerate(values):
            scanned, fired = scan_text(plan.scanner, value)
            if fired:
                values[index] = scanned
                changed = True
                record.extend((rule.dotted, f"scanner:{hit}") for hit in fired)
    if changed:
        if field.is_repeated:
            getattr(parent, name)[:] = values
        else:
            setattr(parent, name, values[0])
    return None


def _apply_map(
    plan: RedactionPlan, rule: FieldRule, entries: object, record: list[tuple[str, str]]
) -> None:
    if not rule.is_string:
        return
    fired_rules: list[str] = []
    if plan.scanner is not None:
        _scan_map_keys(plan.scanner, entries, fired_rules)
    for entry_key in list(entries):
        value = entries[entry_key]
        if plan.sensitive_key(str(entry_key)):
            # Whatever the value, a key like "password" means a secret.
            entries[entry_key] = REDACTED_TOKEN
            fired_rules.append("sensitive_key")
            continue
        if rule.action == RedactionAction.HASH:
            entries[entry_key] = plan.hash(value)
            fired_rules.append("hash")
            continue
        if rule.action in (RedactionAction.MASK, RedactionAction.TRUNCATE):
            entries[entry_key] = _string_transform(plan, rule)(value)
            fired_rules.append(rule.action)
            continue
        if plan.scanner is not None:
            scanned, fired = scan_text(plan.scanner, value)
            if fired:
                entries[entry_key] = scanned
                fired_rules.extend(f"scanner:{hit}" for hit in fired)
    # Keys can be personal too: record the map's path and the rules, never the keys.
    for fired_rule in dict.fromkeys(fired_rules):
        record.append((rule.dotted, fired_rule))


def _scan_map_keys(scanner: CompiledScanner, entries: object, fired_rules: list[str]) -> None:
    # Keys are data too ({"alice@example.com": "3"}): a key a scanner fires on is renamed.
    for entry_key in list(entries):
        if not isinstance(entry_key, str):
            return
        scanned, fired = scan_text(scanner, entry_key)
        if fired:
            value = entries[entry_key]
            del entries[entry_key]
            entries[scanned] = value
            fired_rules.extend(f"key_scanner:{hit}" for hit in fired)


def _generalize(rule: FieldRule, parent: Message, name: str, record: list[tuple[str, str]]) -> None:
    if rule.is_timestamp:
        timestamp = getattr(parent, name)
        timestamp.seconds -= timestamp.seconds % 3600
        timestamp.nanos = 0
    elif rule.is_integer:
        # Unix milliseconds (the int64 occurred-at convention) floored to the hour.
        setattr(parent, name, getattr(parent, name) // MS_PER_HOUR * MS_PER_HOUR)
    elif rule.is_string:
        generalized = generalize_ip(getattr(parent, name))
        if generalized is None:
            parent.ClearField(name)
            record.append((rule.dotted, "generalize:drop"))
            return
        setattr(parent, name, generalized)
    else:
        parent.ClearField(name)
        record.append((rule.dotted, "generalize:drop"))
        return
    record.append((rule.dotted, "generalize"))


def generalize_ip(value: str) -> str | None:
    """IPv4 to its /24 network, IPv6 to its /48; None when ``value`` is not an address."""
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))

"""Redaction engine: pure functions over a compiled plan and a message, no database.

A plan is compiled once per schema revision and policy epoch from the field
policies (classification + action per field path), the content scanners and the
sensitive-key rule for maps. Applying it walks only the paths that need work.

Every string kept as it arrives is scanned, whatever its classification: a field
marked ``scan`` by every rule, any other (an envelope's event id, a source) for secrets
and personal data, so a value classified internal/keep cannot smuggle an e-mail or a
token into storage. Only the rules that pseudonymise identifiers (``uuid``) are left to
the fields that ask for ``scan``: an identifier field holds UUIDs by design.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from .choices import Classification, RedactionAction
from .hashing import keyed_hash, keyed_hash_candidates, keyed_hasher
from .scanners import CompiledScanner, scan_findings, scan_text
from .schemas import TIMESTAMP_TYPE, is_map_field, leaf_fields

# A pseudonymous id kept as it arrives must already be a one-way hash.
PSEUDONYM_RE = re.compile(r"^(sha256:[0-9a-f]{64}|k[0-9A-Za-z_-]{0,15}:[0-9a-f]{64})$")
REDACTED_TOKEN = "[redacted]"  # noqa: S105 (a placeholder, not a secret)
UNCLASSIFIED_DROP = "drop"
UNCLASSIFIED_REJECT = "reject"
MS_PER_HOUR = 3_600_000
# How a path reaches its leaf's parents: through a map's values, a repeated message, or a
# singular message (only when set).
_MAP = "map"
_REPEATED = "repeated"
_SINGLE = "single"
# Scanner rules that pseudonymise identifiers rather than find secrets or personal data
# (governance/defaults.py): run only on fields whose policy asks for ``scan``.
IDENTIFIER_RULES = frozenset({"uuid"})
# Each such field remembers the hashes of its recent clean values (never the values), as
# the scanner does for scanned fields but apart from it: a field whose values recur
# (source, app version, topic) then costs a set lookup, and one with a new value in every
# event (an event id) churns only its own memory.
_MAX_CLEAN = 64
# A value that is one UUID and nothing else holds nothing the other rules could find.
_WHOLE_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
).fullmatch
_MAX_CLEAN_LENGTH = 256

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
    # (field name, _MAP | _REPEATED | _SINGLE) for each container above the leaf.
    containers: tuple[tuple[str, str], ...] = ()
    leaf_repeated: bool = False
    leaf_has_presence: bool = False
    # A kept string without ``scan``: scanned for secrets and personal data only.
    secrets_scan: bool = False


@dataclass(frozen=True)
class RedactionPlan:
    rules: tuple[FieldRule, ...]
    key_id: str
    key: str
    scanner: CompiledScanner | None
    sensitive_key: Callable[[str], bool]
    unhashed_pseudonym: str  # "reject" or "hash"
    # Derived from the fields above when the plan is built: keyed_hash bound to the
    # plan's key (HMAC's key schedule computed once), and the rules as closures.
    hasher: Callable[[str], str] = field(init=False, repr=False, compare=False)
    appliers: tuple[Callable, ...] = field(init=False, repr=False, compare=False)
    # Where the hashes a data-subject request finds an event by end up: top-level string
    # fields by name, nested ones by path (hashed, and pseudonymous ids).
    subject_names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    subject_paths: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hasher", keyed_hasher(key_id=self.key_id, key=self.key))
        object.__setattr__(self, "appliers", _plan_appliers(self))
        subject = [rule for rule in self.rules if _names_subject(rule)]
        names = tuple(rule.path[0] for rule in subject if len(rule.path) == 1)
        object.__setattr__(self, "subject_names", names)
        object.__setattr__(
            self, "subject_paths", tuple(rule.path for rule in subject if len(rule.path) > 1)
        )

    def hash(self, value: str) -> str:
        return self.hasher(value)


@dataclass(frozen=True)
class PolicyRejection:
    code: str
    field: str
    message: str


@dataclass
class RedactionOutcome:
    redactions: list[tuple[str, str]]
    rejection: PolicyRejection | None = None
    # The one-way hashes the redacted message holds in hashed and pseudonymous-id fields
    # (never a raw value): what a data-subject request finds the event by.
    subject_hashes: tuple[str, ...] = ()


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
    ``unclassified`` is ``"reject"``. Kept strings are scanned (see the module
    docstring); other kept values (numbers, enums, timestamps) cost nothing at ingest.
    """
    rules = []
    for path, leaf in leaf_fields(descriptor):
        spec = policies.get(path)
        is_map = is_map_field(leaf)
        value_field = leaf.message_type.fields_by_name["value"] if is_map else leaf
        parts = tuple(path.split("."))
        base = {
            "path": parts,
            "dotted": path,
            "containers": _containers(descriptor, parts),
            "leaf_repeated": leaf.is_repeated,
            "leaf_has_presence": leaf.has_presence,
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
        # A kept pseudonymous id must be a hash already (or is refused or hashed).
        secrets_scan = (
            spec.action == RedactionAction.KEEP
            and base["is_string"]
            and not (spec.scan or is_map)
            and spec.classification != Classification.PSEUDONYMOUS_ID
        )
        needs_work = (
            spec.action != RedactionAction.KEEP
            or (spec.scan and base["is_string"])
            or (is_map and base["is_string"])  # map values are always scanned
            or spec.classification == Classification.PSEUDONYMOUS_ID
            or (secrets_scan and scanner is not None)
        )
        if needs_work:
            rules.append(
                FieldRule(
                    **base,
                    action=spec.action,
                    classification=spec.classification,
                    keep_chars=spec.keep_chars if spec.keep_chars is not None else 4,
                    scan=spec.scan or is_map,
                    secrets_scan=secrets_scan,
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


def _containers(descriptor: Descriptor, path: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """How ``_parents`` walks ``path`` from a message of type ``descriptor``."""
    containers = []
    for head in path[:-1]:
        container = descriptor.fields_by_name[head]
        if is_map_field(container):
            containers.append((head, _MAP))
            descriptor = container.message_type.fields_by_name["value"].message_type
        else:
            containers.append((head, _REPEATED if container.is_repeated else _SINGLE))
            descriptor = container.message_type
    return tuple(containers)


# -- applying a plan ------------------------------------------------------------------

# A rule compiled for one plan: applied to the top-level message, it appends to the
# redaction record and returns the rejection that stops the event, if any.
_Applier = Callable[[Message, list[tuple[str, str]]], "PolicyRejection | None"]


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
    redactions: list[tuple[str, str]] = []
    for apply in plan.appliers:
        rejection = apply(message, redactions)
        if rejection is not None:
            return RedactionOutcome(redactions=redactions, rejection=rejection)
    if not (plan.subject_names or plan.subject_paths):
        return RedactionOutcome(redactions=redactions)
    return RedactionOutcome(redactions=redactions, subject_hashes=subject_hashes(plan, message))


def _names_subject(rule: FieldRule) -> bool:
    """Whether the values ``rule`` leaves are hashes that identify a person."""
    if not rule.is_string or rule.unclassified or rule.is_map:
        return False
    return rule.action == RedactionAction.HASH or (
        rule.action == RedactionAction.KEEP
        and rule.classification == Classification.PSEUDONYMOUS_ID
    )


def subject_hashes(plan: RedactionPlan, message: Message) -> tuple[str, ...]:
    """The distinct one-way hashes in ``message``'s subject fields, after redaction.

    Only values of the hash forms are taken (a scanner may have replaced one with a
    placeholder): what is returned can be matched, never read back.
    """
    is_pseudonym = PSEUDONYM_RE.match
    found: list[str] = []
    for name in plan.subject_names:
        value = getattr(message, name)
        if type(value) is str:
            if value and is_pseudonym(value):
                found.append(value)
        else:
            found.extend(item for item in value if is_pseudonym(item))
    for path in plan.subject_paths:
        name = path[-1]
        for parent in _parents(message, path):
            value = getattr(parent, name)
            values = (value,) if type(value) is str else value
            found.extend(item for item in values if item and is_pseudonym(item))
    if len(found) < 2:
        return tuple(found)
    return tuple(dict.fromkeys(found))


def _plan_appliers(plan: RedactionPlan) -> tuple[_Applier, ...]:
    """One applier per rule, except that runs of top-level hashed or scanned strings
    share one (a loop step is cheaper than a call; the record order is unchanged)."""
    appliers: list[_Applier] = []
    batch: list[_Op] = []
    for rule in plan.rules:
        op = None if rule.containers else _string_op(plan, rule)
        if op is not None:
            batch.append(op)
            continue
        if batch:
            appliers.append(_batch_applier(plan, batch))
            batch = []
        appliers.append(_rule_applier(plan, rule))
    if batch:
        appliers.append(_batch_applier(plan, batch))
    return tuple(appliers)


def _rule_applier(plan: RedactionPlan, rule: FieldRule) -> _Applier:
    """``rule`` as one closure: the walk to its parents and the work on each decided once.

    The result does what ``_apply`` does on every parent ``_parents`` yields; the common
    shapes (a hashed or scanned string, a map of strings) get closures that skip the
    per-event dispatch, everything else goes through ``_apply``.
    """
    applier = _leaf_applier(plan, rule)
    if applier is None:
        applier = functools.partial(_apply, plan, rule)
    # Wrap from the innermost container outwards.
    for head, kind in reversed(rule.containers):
        applier = _container_walker(head, kind, applier)
    return applier


def _container_walker(head: str, kind: str, inner: _Applier) -> _Applier:
    if kind == _MAP:

        def walk_map(message: Message, record: list[tuple[str, str]]) -> PolicyRejection | None:
            for child in getattr(message, head).values():
                rejection = inner(child, record)
                if rejection is not None:
                    return rejection
            return None

        return walk_map
    if kind == _REPEATED:

        def walk_repeated(
            message: Message, record: list[tuple[str, str]]
        ) -> PolicyRejection | None:
            for child in getattr(message, head):
                rejection = inner(child, record)
                if rejection is not None:
                    return rejection
            return None

        return walk_repeated

    def walk_single(message: Message, record: list[tuple[str, str]]) -> PolicyRejection | None:
        if message.HasField(head):
            return inner(getattr(message, head), record)
        return None

    return walk_single


# (kind, field name, record entry if hashed else _Labels): one hot-shape rule.
_Op = tuple[int, str, object]
_HASH_OP, _SCAN_OP, _SECRETS_SCAN_OP = 0, 1, 2


def _string_op(plan: RedactionPlan, rule: FieldRule) -> _Op | None:
    """The rule as an op when it hashes, or keeps and scans, a singular proto3 string.

    That is ``_apply`` with the branches that cannot be taken removed: the presence
    test is bool(value) for a string without presence, and an empty value needs no work.
    """
    if (
        not rule.is_string
        or rule.unclassified
        or rule.is_map
        or rule.leaf_repeated
        or rule.leaf_has_presence
    ):
        return None
    name = rule.path[-1]
    if rule.action == RedactionAction.HASH:
        return (_HASH_OP, name, (rule.dotted, rule.action))
    if (
        rule.action == RedactionAction.KEEP
        and rule.classification != Classification.PSEUDONYMOUS_ID
        and plan.scanner is not None
    ):
        if rule.scan:
            return (_SCAN_OP, name, _Labels(rule.dotted, "scanner:"))
        if rule.secrets_scan:
            return (_SECRETS_SCAN_OP, name, (_Labels(rule.dotted, "scanner:"), set()))
    return None


def _batch_applier(plan: RedactionPlan, ops: Sequence[_Op]) -> _Applier:
    ops = tuple(ops)
    hash_value = plan.hasher
    scanner = plan.scanner
    # Texts the scanner recently found nothing in (see scan_text); checked here first to
    # save the call for the values that repeat across events.
    cleared = scanner.cleared if scanner is not None else frozenset()

    def apply_batch(parent: Message, record: list[tuple[str, str]]) -> None:
        for kind, name, payload in ops:
            value = getattr(parent, name)
            if not value:
                continue
            if kind == _HASH_OP:
                setattr(parent, name, hash_value(value))
                record.append(payload)  # type: ignore[arg-type]
            elif kind == _SCAN_OP:
                if value not in cleared:
                    scanned, fired = scan_text(scanner, value)  # type: ignore[arg-type]
                    if fired:
                        setattr(parent, name, scanned)
                        record.extend(map(payload.__getitem__, fired))  # type: ignore[attr-defined]
            else:
                labels, clean = payload  # type: ignore[misc]
                value_hash = hash(value)
                if value_hash in clean:
                    continue
                scanned, fired = secrets_scan_text(scanner, value)  # type: ignore[arg-type]
                if fired:
                    setattr(parent, name, scanned)
                    record.extend(map(labels.__getitem__, fired))
                elif len(value) <= _MAX_CLEAN_LENGTH:
                    if len(clean) >= _MAX_CLEAN:
                        clean.clear()
                    clean.add(value_hash)

    return apply_batch


def secrets_scan_text(scanner: CompiledScanner, text: str) -> tuple[str, tuple[str, ...]]:
    """``scan_text`` for a kept field that did not ask for ``scan``: only when a secret or
    personal-data rule fires is the text redacted (then by every rule that fired).

    Looks with ``scan_findings`` first, which neither hashes nor fills the scanner's
    memory of clean texts: these fields (event ids, request ids) hold a new value in
    every event, and would push out the recurring values that memory is for.
    """
    if len(text) == 36 and _WHOLE_UUID(text) is not None:
        return text, ()
    findings = scan_findings(scanner, text)
    if not findings or all(finding.rule in IDENTIFIER_RULES for finding in findings):
        return text, ()
    return scan_text(scanner, text)


def _leaf_applier(plan: RedactionPlan, rule: FieldRule) -> _Applier | None:
    """A specialised closure for the hot shapes, or None for the generic path."""
    if rule.is_map:
        if (
            rule.is_string
            and not rule.unclassified
            and rule.action == RedactionAction.KEEP
            and plan.scanner is not None
        ):
            return _map_scan_applier(plan, plan.scanner, rule)
        return None
    op = _string_op(plan, rule)
    if op is not None:
        return _batch_applier(plan, [op])
    if (
        rule.is_string
        and not rule.unclassified
        and not rule.leaf_repeated
        and not rule.leaf_has_presence
        and rule.action == RedactionAction.KEEP
        and rule.classification == Classification.PSEUDONYMOUS_ID
    ):
        return _pseudonym_applier(plan, rule)
    return None


def _pseudonym_applier(plan: RedactionPlan, rule: FieldRule) -> _Applier:
    """``_apply`` -> ``_keep`` for a kept pseudonymous id in a singular proto3 string: a
    value that is not yet a one-way hash is refused or hashed, then scanned if asked."""
    name = rule.path[-1]
    dotted = rule.dotted
    is_pseudonym = PSEUDONYM_RE.match
    reject = plan.unhashed_pseudonym == UNCLASSIFIED_REJECT
    hash_value = plan.hasher
    scanner = plan.scanner if rule.scan else None

    def apply_pseudonym(parent: Message, record: list[tuple[str, str]]) -> PolicyRejection | None:
        value = getattr(parent, name)
        if not value:
            return None
        changed = False
        if not is_pseudonym(value):
            if reject:
                return PolicyRejection(
                    "not_pseudonymous",
                    dotted,
                    "must be a one-way hash ('sha256:' and 64 hex digits)",
                )
            value = hash_value(value)
            changed = True
            record.append((dotted, "hash_at_edge"))
        if scanner is not None:
            scanned, fired = scan_text(scanner, value)
            if fired:
                value = scanned
                changed = True
                record.extend((dotted, f"scanner:{hit}") for hit in fired)
        if changed:
            setattr(parent, name, value)
        return None

    return apply_pseudonym


class _Labels(dict):
    """(path, prefix + rule name) record entries, built once per rule name."""

    def __init__(self, dotted: str, prefix: str) -> None:
        super().__init__()
        self.dotted = dotted
        self.prefix = prefix

    def __missing__(self, hit: str) -> tuple[str, str]:
        entry = self[hit] = (self.dotted, f"{self.prefix}{hit}")
        return entry


def _map_scan_applier(plan: RedactionPlan, scanner: CompiledScanner, rule: FieldRule) -> _Applier:
    """``_apply_map`` for a kept map of strings: keys scanned, then each entry."""
    name = rule.path[-1]
    sensitive_key = plan.sensitive_key
    dotted = rule.dotted
    cleared = scanner.cleared  # see _batch_applier

    def apply_map(parent: Message, record: list[tuple[str, str]]) -> None:
        entries = getattr(parent, name)
        if not entries:
            return
        keys = list(entries)
        fired_rules: list[str] = []
        string_keys = isinstance(keys[0], str)
        if string_keys:
            # As _scan_map_keys: keys are data too; a key a scanner fires on is renamed.
            renamed = False
            for entry_key in keys:
                if entry_key in cleared:
                    continue
                scanned, fired = scan_text(scanner, entry_key)
                if fired:
                    value = entries[entry_key]
                    del entries[entry_key]
                    entries[scanned] = value
                    fired_rules.extend(f"key_scanner:{hit}" for hit in fired)
                    renamed = True
            if renamed:
                keys = list(entries)
        for entry_key in keys:
            if sensitive_key(entry_key if string_keys else str(entry_key)):
                entries[entry_key] = REDACTED_TOKEN
                fired_rules.append("sensitive_key")
                continue
            value = entries[entry_key]
            if value in cleared:
                continue
            scanned, fired = scan_text(scanner, value)
            if fired:
                entries[entry_key] = scanned
                fired_rules.extend(f"scanner:{hit}" for hit in fired)
        if fired_rules:
            for fired_rule in dict.fromkeys(fired_rules):
                record.append((dotted, fired_rule))

    return apply_map


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
    if (rule.scan or rule.secrets_scan) and plan.scanner is not None:
        scan = scan_text if rule.scan else secrets_scan_text
        for index, value in enumerate(values):
            scanned, fired = scan(plan.scanner, value)
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

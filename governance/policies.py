"""Field policies: seeding from schema annotations and conventions, and policy-as-code YAML."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import yaml

from .choices import (
    ACTION_STRENGTH,
    CLASSIFICATION_STRENGTH,
    Classification,
    FieldRole,
    RedactionAction,
)
from .redaction import PolicySpec
from .schemas import CompiledSchema, field_option, leaf_fields

C, A = Classification, RedactionAction
INTERNAL_KEEP = PolicySpec(C.INTERNAL, A.KEEP)
PSEUDONYM_HASH = PolicySpec(C.PSEUDONYMOUS_ID, A.HASH)

# The seed's privacy rules: actor identifiers only as keyed hashes, secrets and message
# bodies never stored, client addresses generalised.
CONVENTIONAL_POLICIES: dict[str, PolicySpec] = {
    **dict.fromkeys(
        ("user_id", "org_id", "device_id", "session_id", "account_id", "customer_id"),
        PSEUDONYM_HASH,
    ),
    "actor_scope_hash": PolicySpec(C.PSEUDONYMOUS_ID, A.KEEP),
    **dict.fromkeys(
        ("email", "email_address", "phone", "phone_number"), PolicySpec(C.PERSONAL, A.HASH)
    ),
    **dict.fromkeys(
        ("client_ip", "ip", "ip_address", "remote_addr"), PolicySpec(C.PERSONAL, A.GENERALIZE)
    ),
    **dict.fromkeys(
        (
            "password",
            "secret",
            "token",
            "api_key",
            "access_token",
            "refresh_token",
            "authorization",
        ),
        PolicySpec(C.SECRET, A.DROP),
    ),
    **dict.fromkeys(
        ("body", "content", "message_body", "message_content", "prompt", "completion"),
        PolicySpec(C.SENSITIVE, A.DROP),
    ),
}
ROLE_POLICIES: dict[str, PolicySpec] = {role: INTERNAL_KEEP for role in FieldRole.values} | {
    FieldRole.SESSION_ID: PSEUDONYM_HASH,
    FieldRole.DEVICE_ID: PSEUDONYM_HASH,
    FieldRole.ACTOR: PSEUDONYM_HASH,
}

OPTION_PREFIXES = {"classification": "CLASSIFICATION_", "action": "REDACTION_ACTION_"}
DEFAULT_KEEP_CHARS = 4  # what the engine keeps when a mask or truncate names no count


def _option_policy(compiled: CompiledSchema, field: object) -> PolicySpec | None:
    option = field_option(compiled, field, "policy")
    if option is None:
        return None
    values = {}
    for name, prefix in OPTION_PREFIXES.items():
        enum = option.DESCRIPTOR.fields_by_name[name].enum_type
        label = enum.values_by_number[getattr(option, name)].name.removeprefix(prefix).lower()
        values[name] = label
    if values["classification"] == "unspecified" or values["action"] == "unspecified":
        return None
    return PolicySpec(
        classification=values["classification"],
        action=values["action"],
        keep_chars=option.keep_chars or None,
        scan=option.scan,
    )


def annotated_policies(compiled: CompiledSchema) -> dict[str, PolicySpec]:
    """Path -> the ``(telemetry.v1.policy)`` annotation of every annotated leaf."""
    annotated = {}
    for path, field in leaf_fields(compiled.descriptor):
        spec = _option_policy(compiled, field)
        if spec is not None:
            annotated[path] = spec
    return annotated


def policy_loosening(current: PolicySpec, proposed: PolicySpec) -> list[str]:
    """How ``proposed`` protects less than ``current``, one line each (empty: it does not).

    Weaker is a lower classification or action (``choices.CLASSIFICATION_STRENGTH``,
    ``ACTION_STRENGTH``), more characters kept by the same mask or truncate, or a kept
    value no longer scanned. A proposal weaker in one respect loosens, whatever else it
    tightens.
    """
    ways = []
    if (
        CLASSIFICATION_STRENGTH[proposed.classification]
        < CLASSIFICATION_STRENGTH[current.classification]
    ):
        ways.append(f"classification {current.classification} -> {proposed.classification}")
    if ACTION_STRENGTH[proposed.action] < ACTION_STRENGTH[current.action]:
        ways.append(f"action {current.action} -> {proposed.action}")
    elif proposed.action == current.action and proposed.action in (A.MASK, A.TRUNCATE):
        kept_now = DEFAULT_KEEP_CHARS if current.keep_chars is None else current.keep_chars
        kept_then = DEFAULT_KEEP_CHARS if proposed.keep_chars is None else proposed.keep_chars
        if kept_then > kept_now:
            ways.append(f"keep_chars {kept_now} -> {kept_then}")
    if current.scan and not proposed.scan and proposed.action == A.KEEP:
        ways.append("content scan off")
    return ways


@dataclass(frozen=True)
class WithheldAnnotation:
    """An annotation weaker than the policy in force: not applied, proposed for review."""

    path: str
    in_force: PolicySpec
    annotated: PolicySpec
    loosening: tuple[str, ...]


@dataclass(frozen=True)
class PolicySeed:
    """A new revision's policies, and what the upload's annotations could not change."""

    policies: dict[str, PolicySpec]
    withheld: tuple[WithheldAnnotation, ...] = ()
    tightened: tuple[str, ...] = ()


def field_policies_seed(
    compiled: CompiledSchema,
    *,
    roles: Mapping[str, str],
    previous: Mapping[str, PolicySpec],
    previous_annotations: Mapping[str, PolicySpec] | None = None,
) -> PolicySeed:
    """Policies for a new revision.

    A path the previous revision has a policy for inherits that reviewed policy. Its
    annotation counts only where it changed since the previous revision's sources: a
    stricter one applies at once (``tightened``), a weaker one is ``withheld`` (the
    reviewed policy stays in force; the caller proposes the annotation for review).
    Other paths take their annotation, else conventions by field name and role; paths
    none of these cover stay unclassified.
    """
    previous_annotations = previous_annotations or {}
    role_of = {path: role for role, path in roles.items()}
    seeded: dict[str, PolicySpec] = {}
    withheld: list[WithheldAnnotation] = []
    tightened: list[str] = []
    for path, field in leaf_fields(compiled.descriptor):
        annotated = _option_policy(compiled, field)
        in_force = previous.get(path)
        if in_force is not None:
            seeded[path] = in_force
            if annotated is None or annotated in (in_force, previous_annotations.get(path)):
                continue
            loosening = policy_loosening(in_force, annotated)
            if loosening:
                withheld.append(WithheldAnnotation(path, in_force, annotated, tuple(loosening)))
            else:
                seeded[path] = annotated
                tightened.append(path)
            continue
        spec = annotated or CONVENTIONAL_POLICIES.get(field.name)
        if spec is None and path in role_of:
            spec = ROLE_POLICIES[role_of[path]]
        if spec is not None:
            seeded[path] = spec
    return PolicySeed(seeded, tuple(withheld), tuple(tightened))


# -- policy as code -------------------------------------------------------------------

FIELD_KEYS = {"classification", "action", "keep_chars", "scan"}
DOCUMENT_KEYS = {"schema", "version", "fields"}
SAFE_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class PolicyDocumentError(Exception):
    """The YAML is not a valid policy document; ``errors`` lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


@dataclass(frozen=True)
class PolicyDocument:
    schema: str
    version: int | None
    fields: dict[str, PolicySpec]


def policy_entry_dump(spec: PolicySpec) -> dict[str, object]:
    """One field's entry of a policy document (defaults left out)."""
    entry: dict[str, object] = {"classification": spec.classification, "action": spec.action}
    if spec.keep_chars is not None:
        entry["keep_chars"] = spec.keep_chars
    if spec.scan:
        entry["scan"] = True
    return entry


def policy_yaml_dump(
    schema: str, policies: Mapping[str, PolicySpec], *, version: int | None = None
) -> str:
    """Render policies in the stable policy-as-code format (sorted by path)."""
    fields = {path: policy_entry_dump(policies[path]) for path in sorted(policies)}
    document: dict[str, object] = {"schema": schema}
    if version is not None:
        document["version"] = version
    document["fields"] = fields
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=100)


def policy_yaml_parse(text: str) -> PolicyDocument:
    """Parse and check a policy document; unknown keys and values are errors."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PolicyDocumentError([f"not valid YAML{where}"]) from None
    if not isinstance(document, dict):
        raise PolicyDocumentError(["the document must be a mapping with 'schema' and 'fields'"])
    errors = [f"unknown key {key!r}" for key in document if key not in DOCUMENT_KEYS]
    schema = document.get("schema")
    if not isinstance(schema, str) or not schema:
        errors.append("'schema' must name a schema")
    version = document.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        errors.append("'version' must be an integer")
    raw_fields = document.get("fields")
    if not isinstance(raw_fields, dict) or not raw_fields:
        errors.append("'fields' must map field paths to policies")
        raw_fields = {}
    fields = {}
    for path, entry in raw_fields.items():
        spec = policy_entry_parse(str(path), entry, errors)
        if spec is not None:
            fields[str(path)] = spec
    if errors:
        raise PolicyDocumentError(errors)
    return PolicyDocument(schema=schema, version=version, fields=fields)


def policy_entry_parse(path: str, entry: object, errors: list[str]) -> PolicySpec | None:
    """One field's entry of a policy document; problems are appended to ``errors``."""
    if not SAFE_PATH.match(path):
        errors.append(f"{path!r} is not a field path")
        return None
    if not isinstance(entry, dict):
        errors.append(f"{path}: expected {{classification: ..., action: ...}}")
        return None
    unknown = sorted(set(entry) - FIELD_KEYS)
    if unknown:
        errors.append(f"{path}: unknown key(s) {', '.join(map(str, unknown))}")
    classification, action = entry.get("classification"), entry.get("action")
    if classification not in Classification.values:
        errors.append(f"{path}: classification must be one of {', '.join(Classification.values)}")
    if action not in RedactionAction.values:
        errors.append(f"{path}: action must be one of {', '.join(RedactionAction.values)}")
    keep_chars = entry.get("keep_chars")
    if keep_chars is not None and (
        not isinstance(keep_chars, int) or isinstance(keep_chars, bool) or not 0 <= keep_chars <= 64
    ):
        errors.append(f"{path}: keep_chars must be an integer from 0 to 64")
    scan = entry.get("scan", False)
    if not isinstance(scan, bool):
        errors.append(f"{path}: scan must be true or false")
    if (
        unknown
        or classification not in Classification.values
        or action not in RedactionAction.values
    ):
        return None
    return PolicySpec(classification, action, keep_chars, bool(scan))

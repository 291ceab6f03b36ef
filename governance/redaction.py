"""Redaction engine: pure functions over a compiled plan and a message, no database.

This is the seed of the field-policy engine: today the plan comes from the privacy
annotations of the schema's .proto (``(telemetry.v1.policy)``); field policies edited
in the admin will compile into the same plan.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from .schemas import CompiledSchema, field_option, iter_field_paths

HASH = "hash"
DROP = "drop"
# Option enum names are REDACTION_ACTION_<ACTION>.
OPTION_ACTIONS = {"REDACTION_ACTION_HASH": HASH, "REDACTION_ACTION_DROP": DROP}


def keyed_hash(value: str, *, key_id: str, key: str) -> str:
    """HMAC-SHA256 of ``value`` under ``key``, prefixed with the key id (``k1:<hex>``).

    The prefix lets keys rotate: old rows keep their key id and stay joinable.
    """
    digest = hmac.new(key.encode("utf-8"), value.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{key_id}:{digest}"


def keyed_hash_candidates(value: str, *, keys: Mapping[str, str]) -> list[str]:
    """Every stored form ``value`` may have, one per configured key (for search)."""
    return [keyed_hash(value, key_id=key_id, key=key) for key_id, key in keys.items()]


@dataclass(frozen=True)
class FieldAction:
    path: tuple[str, ...]
    action: str
    is_map: bool
    is_string: bool

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class RedactionPlan:
    actions: tuple[FieldAction, ...]
    key_id: str
    key: str


def redaction_plan_compile(compiled: CompiledSchema, *, key_id: str, key: str) -> RedactionPlan:
    """Build the plan from the schema's privacy annotations."""
    actions = []
    for path, field in iter_field_paths(compiled.descriptor):
        policy = field_option(compiled, field, "policy")
        if policy is None:
            continue
        action_name = (
            policy.DESCRIPTOR.fields_by_name["action"]
            .enum_type.values_by_number[policy.action]
            .name
        )
        action = OPTION_ACTIONS.get(action_name)
        if action is None:
            continue
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        actions.append(
            FieldAction(
                path=tuple(path.split(".")),
                action=action,
                is_map=bool(is_map),
                is_string=field.type == FieldDescriptor.TYPE_STRING,
            )
        )
    return RedactionPlan(actions=tuple(actions), key_id=key_id, key=key)


def _parent(message: Message, path: tuple[str, ...]) -> Message | None:
    for part in path[:-1]:
        if not message.HasField(part):
            return None
        message = getattr(message, part)
    return message


def redact_message(plan: RedactionPlan, message: Message) -> list[str]:
    """Apply the plan to ``message`` in place; return the paths whose values were changed."""
    changed = []
    for action in plan.actions:
        parent = _parent(message, action.path)
        if parent is None:
            continue
        name = action.path[-1]
        if action.is_map:
            entries = getattr(parent, name)
            if not entries:
                continue
            if action.action == DROP:
                parent.ClearField(name)
            else:
                for entry_key in list(entries):
                    entries[entry_key] = keyed_hash(
                        str(entries[entry_key]), key_id=plan.key_id, key=plan.key
                    )
            changed.append(action.dotted)
            continue
        value = getattr(parent, name)
        if value in ("", 0, None, False):
            continue
        if action.action == HASH and action.is_string:
            parent_value = keyed_hash(value, key_id=plan.key_id, key=plan.key)
            setattr(parent, name, parent_value)
        else:
            # A non-string value cannot hold a hash: dropping it is the safe fallback.
            parent.ClearField(name)
        changed.append(action.dotted)
    return changed

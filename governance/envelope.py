"""Envelope facts by field role (event id, time, source, actor...), read by compiled getters.

A schema names, per role, the field path that carries the fact. Walking that path by
name, and asking the descriptor whether the leaf is an enum, on every event cost more
than validating the event; here each role becomes a getter compiled once per plan.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from .choices import FieldRole

# Roles read as text (the stored envelope columns and the scope checks).
TEXT_ROLES = (
    FieldRole.EVENT_ID,
    FieldRole.SOURCE,
    FieldRole.SURFACE,
    FieldRole.REQUEST_ID,
    FieldRole.TRACEPARENT,
    FieldRole.ACTOR,
)

ValueGetter = Callable[[Message], Any]
TextGetter = Callable[[Message], str]


def role_value(message: Message, path: str) -> Any:
    """The value at ``path`` (dotted), or None when a message on the way is not set."""
    value: Any = message
    parts = path.split(".")
    for part in parts[:-1]:
        if not value.HasField(part):
            return None
        value = getattr(value, part)
    return getattr(value, parts[-1])


def role_text(message: Message, path: str) -> str:
    """The value at ``path`` as text: "" when unset; an enum value by its name."""
    value = role_value(message, path)
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        # Enum-typed roles such as a client surface: store the value's name.
        field_descriptor = _leaf_field(message.DESCRIPTOR, path)
        if field_descriptor is not None and field_descriptor.enum_type is not None:
            enum_value = field_descriptor.enum_type.values_by_number.get(value)
            return enum_value.name if enum_value else str(value)
    return str(value)


def _leaf_field(descriptor: Descriptor, path: str) -> FieldDescriptor | None:
    parts = path.split(".")
    for part in parts[:-1]:
        descriptor = descriptor.fields_by_name[part].message_type
    return descriptor.fields_by_name.get(parts[-1])


def _no_text(message: Message) -> str:
    return ""


@dataclass(frozen=True)
class EnvelopeReader:
    """A plan's role getters: ``text[role](message)`` is ``role_text`` for the role's path."""

    occurred_at: ValueGetter
    text: dict[str, TextGetter]


def envelope_reader_compile(descriptor: Descriptor, roles: Mapping[str, str]) -> EnvelopeReader:
    """Compile the getters of every role in ``roles`` (a missing role reads "")."""
    text = {
        role: _text_getter(descriptor, roles[role]) if roles.get(role) else _no_text
        for role in TEXT_ROLES
    }
    return EnvelopeReader(
        occurred_at=_value_getter(descriptor, roles[FieldRole.OCCURRED_AT])[0],
        text=text,
    )


def _value_getter(descriptor: Descriptor, path: str) -> tuple[ValueGetter, FieldDescriptor | None]:
    """``role_value`` for ``path``, and the leaf field when the path is a plain one."""
    parts = path.split(".")
    current: Descriptor | None = descriptor
    for part in parts[:-1]:
        field = current.fields_by_name.get(part) if current is not None else None
        if field is None or field.message_type is None or field.is_repeated:
            return (lambda message: role_value(message, path)), None
        current = field.message_type
    leaf = current.fields_by_name.get(parts[-1]) if current is not None else None
    if leaf is None:
        return (lambda message: role_value(message, path)), None
    name = parts[-1]
    if len(parts) == 1:
        return operator.attrgetter(name), leaf
    heads = parts[:-1]

    def get(message: Message) -> Any:
        value: Any = message
        for part in heads:
            if not value.HasField(part):
                return None
            value = getattr(value, part)
        return getattr(value, name)

    return get, leaf


def _text_getter(descriptor: Descriptor, path: str) -> TextGetter:
    get, leaf = _value_getter(descriptor, path)
    if leaf is None or leaf.is_repeated:
        return lambda message: role_text(message, path)
    if leaf.type == FieldDescriptor.TYPE_STRING:
        if get.__class__ is operator.attrgetter:
            return get  # a top-level string: its value is its text

        def string_text(message: Message) -> str:
            value = get(message)
            return "" if value is None else value

        return string_text
    if leaf.enum_type is not None:
        names = {value.number: value.name for value in leaf.enum_type.values}

        def enum_text(message: Message) -> str:
            value = get(message)
            if value is None:
                return ""
            return names.get(value) or str(value)

        return enum_text

    def any_text(message: Message) -> str:
        value = get(message)
        return "" if value is None else str(value)

    return any_text

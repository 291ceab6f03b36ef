"""Refuses schema revisions that break wire or proto3-JSON compatibility with earlier revisions.

The check walks from the event message through every message and enum reachable via its
fields, pairing old and new fields by number. Rule names follow buf's breaking-change rules
(WIRE_JSON category), with these choices:

* ``FIELD_SAME_CARDINALITY`` (buf's newer name for ``FIELD_SAME_LABEL``) covers singular <->
  repeated, map <-> repeated and gaining or losing explicit presence (proto3 ``optional``).
* ``FIELD_SAME_TYPE`` is strict: any change of scalar type, message/enum type name or map
  key/value type is refused, because even "wire compatible" pairs such as int32/int64 differ
  in range or in their JSON encoding.
* A deleted field needs both its number (wire) and its name (JSON) reserved:
  ``FIELD_NO_DELETE`` when neither is, ``FIELD_NO_DELETE_UNLESS_NAME_RESERVED`` when only the
  number is, ``FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED`` when only the name is. Enum values
  follow the same pattern with the ``ENUM_VALUE_NO_DELETE*`` rules.
* ``MESSAGE_NO_DELETE`` / ``ENUM_NO_DELETE`` are reported for the event message and for a
  reached type missing from the new set. A nested type whose only fields were deleted (with
  reservations) or repointed may go away: no old payload can reach it any more, and the
  field rules already refuse every unsafe way of dropping it.
* Oneofs synthesised for proto3 ``optional`` fields are not oneofs for ``FIELD_SAME_ONEOF``.

Paths are dotted field names from the event message (``reconnect.reason_code``); enum values
append the value name to the path of the field using the enum (``surface.CLIENT_SURFACE_IOS``);
type deletions use the fully qualified type name. The module works on the descriptor protos
alone, so it needs neither Django nor a descriptor pool.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from google.protobuf.descriptor_pb2 import (
    DescriptorProto,
    EnumDescriptorProto,
    FeatureSet,
    FieldDescriptorProto,
    FileDescriptorProto,
    FileDescriptorSet,
)

_Field = FieldDescriptorProto
_Kind = Literal["message", "enum"]

_CARDINALITY_WORDS = {
    "map": "a map",
    "repeated": "repeated",
    "required": "required",
    "optional": "singular with explicit presence",
    "implicit": "singular",
}

_EDITION_PRESENCE = {"implicit": "IMPLICIT", "optional": "EXPLICIT", "required": "LEGACY_REQUIRED"}


@dataclass(frozen=True)
class Violation:
    """One incompatibility between the new schema and an earlier revision."""

    rule: str
    path: str
    old: str
    new: str
    message: str
    against_version: int | None = None


@dataclass(frozen=True, eq=False)
class _Message:
    name: str
    proto: DescriptorProto
    file: FileDescriptorProto
    # Feature sets from the file inwards; editions resolve presence from the nearest one.
    features: tuple[FeatureSet, ...]


@dataclass(frozen=True)
class _Shape:
    """What a field means on the wire and in JSON, independent of its name and number."""

    cardinality: str
    type_text: str
    element_kind: _Kind | None
    element: str | None


class _Schema:
    """The messages and enums of one descriptor set, by fully qualified name."""

    def __init__(self, descriptor_set: FileDescriptorSet) -> None:
        self.messages: dict[str, _Message] = {}
        self.enums: dict[str, EnumDescriptorProto] = {}
        for file in descriptor_set.file:
            prefix = f"{file.package}." if file.package else ""
            features = (file.options.features,)
            self._index(file, prefix, features, file.message_type, file.enum_type)

    def _index(
        self,
        file: FileDescriptorProto,
        prefix: str,
        features: tuple[FeatureSet, ...],
        messages: Iterable[DescriptorProto],
        enums: Iterable[EnumDescriptorProto],
    ) -> None:
        for enum in enums:
            self.enums[prefix + enum.name] = enum
        for message in messages:
            name = prefix + message.name
            chain = (*features, message.options.features)
            self.messages[name] = _Message(name, message, file, chain)
            self._index(file, f"{name}.", chain, message.nested_type, message.enum_type)

    def shape(self, owner: _Message, field: _Field) -> _Shape:
        entry = self._map_entry(field)
        if entry is not None:
            key, value = _entry_fields(entry)
            kind, element = _element(value)
            text = f"map<{_type_text(key)}, {_type_text(value)}>"
            return _Shape("map", text, kind, element)
        kind, element = _element(field)
        return _Shape(_cardinality(owner, field), _type_text(field), kind, element)

    def _map_entry(self, field: _Field) -> DescriptorProto | None:
        if field.label != _Field.LABEL_REPEATED or field.type != _Field.TYPE_MESSAGE:
            return None
        entry = self.messages.get(_type_name(field))
        if entry is None or not entry.proto.options.map_entry:
            return None
        return entry.proto


def check_compatibility(
    *,
    old: FileDescriptorSet,
    new: FileDescriptorSet,
    message: str,
    old_message: str | None = None,
) -> list[Violation]:
    """Return every way ``new`` breaks events written with ``old``, sorted by path then rule.

    ``message`` is the fully qualified event message of the new revision; ``old_message``
    names the old revision's event when it differed (by default the same name).
    """
    old_schema, new_schema = _Schema(old), _Schema(new)
    old_name, new_name = (old_message or message).lstrip("."), message.lstrip(".")
    if old_name not in old_schema.messages:
        raise ValueError(f"{old_name} is not a message in the old descriptor set")
    if old_name != new_name or new_name not in new_schema.messages:
        return [_event_replaced(old_name, new_name, new_schema)]
    return _sorted(_unique(_Walk(old_schema, new_schema).run(old_name)))


def check_against_history(
    *,
    history: Sequence[tuple[int, FileDescriptorSet]],
    new: FileDescriptorSet,
    message: str,
    old_messages: Mapping[int, str] | None = None,
) -> list[Violation]:
    """Check ``new`` against every earlier revision, tagging each violation with its version.

    A violation found against several versions with the same old and new state is reported
    once, against the earliest of them. ``old_messages`` maps a version to its event message
    name where that differed from ``message``.
    """
    found: dict[tuple[str, str, str, str], Violation] = {}
    for version, descriptor_set in sorted(history, key=lambda item: item[0]):
        old_message = (old_messages or {}).get(version)
        violations = check_compatibility(
            old=descriptor_set, new=new, message=message, old_message=old_message
        )
        for violation in violations:
            key = _key(violation)
            if key not in found:
                found[key] = replace(violation, against_version=version)
    return _sorted(found.values())


class _Walk:
    """Breadth-first comparison of the types reachable from the event message."""

    def __init__(self, old: _Schema, new: _Schema) -> None:
        self.old, self.new = old, new
        self.queue: deque[tuple[_Kind, str, str]] = deque()
        # Each type is compared once, at the shortest path reaching it; this also stops
        # recursive messages from looping.
        self.seen: set[str] = set()

    def run(self, event: str) -> Iterator[Violation]:
        self._enqueue("message", event, "")
        while self.queue:
            kind, name, path = self.queue.popleft()
            if kind == "message":
                yield from self._compare_message(name, path)
            else:
                yield from self._compare_enum(name, path)

    def _enqueue(self, kind: _Kind, name: str, path: str) -> None:
        if name not in self.seen:
            self.seen.add(name)
            self.queue.append((kind, name, path))

    def _compare_message(self, name: str, path: str) -> Iterator[Violation]:
        old, new = self.old.messages.get(name), self.new.messages.get(name)
        if old is None:  # a set without its imports; nothing to compare against
            return
        if new is None:
            yield _type_deleted("MESSAGE_NO_DELETE", "message", name, path)
            return
        new_fields = {field.number: field for field in new.proto.field}
        for field in old.proto.field:
            field_path = f"{path}.{field.name}" if path else field.name
            if field.number in new_fields:
                yield from self._compare_field(
                    old, new, field, new_fields[field.number], field_path
                )
            else:
                old_text = _declaration(old, field, self.old.shape(old, field))
                yield from _field_deleted(old, new, field, field_path, old_text)

    def _compare_field(
        self, old_owner: _Message, new_owner: _Message, old: _Field, new: _Field, path: str
    ) -> Iterator[Violation]:
        where = f"field {old.number} of {old_owner.name}"
        old_shape, new_shape = self.old.shape(old_owner, old), self.new.shape(new_owner, new)
        old_text = _declaration(old_owner, old, old_shape)
        new_text = _declaration(new_owner, new, new_shape)
        if old.name != new.name:
            yield Violation(
                "FIELD_SAME_NAME",
                path,
                old_text,
                new_text,
                f"The name of {where} changed from {old.name} to {new.name}; "
                "JSON written with original field names would no longer parse.",
            )
        if _json_name(old) != _json_name(new):
            yield Violation(
                "FIELD_SAME_JSON_NAME",
                path,
                f'{old_text} [json_name = "{_json_name(old)}"]',
                f'{new_text} [json_name = "{_json_name(new)}"]',
                f"The JSON name of {where} changed from {_json_name(old)} to "
                f"{_json_name(new)}; JSON events written earlier would no longer parse.",
            )
        yield from self._compare_shapes(where, path, old_shape, new_shape, old_text, new_text)
        old_oneof, new_oneof = _oneof(old_owner, old), _oneof(new_owner, new)
        if old_oneof != new_oneof:
            yield Violation(
                "FIELD_SAME_ONEOF",
                path,
                _in_oneof(old_text, old_oneof),
                _in_oneof(new_text, new_oneof),
                f"{_upper_first(where)} moved from {_oneof_words(old_oneof)} to "
                f"{_oneof_words(new_oneof)}; which fields may be set together would change.",
            )

    def _compare_shapes(
        self, where: str, path: str, old: _Shape, new: _Shape, old_text: str, new_text: str
    ) -> Iterator[Violation]:
        if old.cardinality != new.cardinality and not _presence_follows_type(old, new):
            yield Violation(
                "FIELD_SAME_CARDINALITY",
                path,
                old_text,
                new_text,
                f"{_upper_first(where)} changed from {_CARDINALITY_WORDS[old.cardinality]} to "
                f"{_CARDINALITY_WORDS[new.cardinality]}; earlier events encode it differently.",
            )
        if old.type_text == new.type_text:
            if old.element_kind is not None and old.element is not None:
                self._enqueue(old.element_kind, old.element, path)
            return
        # Map <-> non-map is a cardinality change; comparing an entry type with an element
        # type would only repeat it.
        if (old.cardinality == "map") == (new.cardinality == "map"):
            yield Violation(
                "FIELD_SAME_TYPE",
                path,
                old_text,
                new_text,
                f"{_upper_first(where)} changed type from {old.type_text} to {new.type_text}; "
                "earlier events would not decode to the same values.",
            )

    def _compare_enum(self, name: str, path: str) -> Iterator[Violation]:
        old, new = self.old.enums.get(name), self.new.enums.get(name)
        if old is None:
            return
        if new is None:
            yield _type_deleted("ENUM_NO_DELETE", "enum", name, path)
            return
        new_names: dict[int, list[str]] = {}
        for value in new.value:
            new_names.setdefault(value.number, []).append(value.name)
        for value in old.value:
            value_path = f"{path}.{value.name}"
            old_text = f"{value.name} = {value.number}"
            if value.number not in new_names:
                yield from _enum_value_deleted(name, new, value.name, value.number, value_path)
            elif value.name not in new_names[value.number]:
                renamed = new_names[value.number][0]
                yield Violation(
                    "ENUM_VALUE_SAME_NAME",
                    value_path,
                    old_text,
                    f"{renamed} = {value.number}",
                    f"Value {value.number} of enum {name} was renamed from {value.name} to "
                    f"{renamed}; proto3 JSON writes enum values by name.",
                )


def _field_deleted(
    old_owner: _Message, new_owner: _Message, field: _Field, path: str, old_text: str
) -> Iterator[Violation]:
    number_reserved = any(r.start <= field.number < r.end for r in new_owner.proto.reserved_range)
    name_reserved = field.name in new_owner.proto.reserved_name
    if number_reserved and name_reserved:
        return
    what = f"Field {field.name} = {field.number} of {old_owner.name} was deleted"
    if number_reserved:
        yield Violation(
            "FIELD_NO_DELETE_UNLESS_NAME_RESERVED",
            path,
            old_text,
            f"reserved {field.number}",
            f'{what} with only its number reserved; reserve "{field.name}" too, because '
            "proto3 JSON identifies fields by name.",
        )
    elif name_reserved:
        yield Violation(
            "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED",
            path,
            old_text,
            f'reserved "{field.name}"',
            f"{what} with only its name reserved; reserve {field.number} too, because the "
            "wire format identifies fields by number.",
        )
    else:
        yield Violation(
            "FIELD_NO_DELETE",
            path,
            old_text,
            "",
            f"{what}; reserve its number and name instead so neither can be reused.",
        )


def _enum_value_deleted(
    enum_name: str, new: EnumDescriptorProto, name: str, number: int, path: str
) -> Iterator[Violation]:
    # Enum reserved ranges, unlike message ones, include their end.
    number_reserved = any(r.start <= number <= r.end for r in new.reserved_range)
    name_reserved = name in new.reserved_name
    if number_reserved and name_reserved:
        return
    old_text = f"{name} = {number}"
    what = f"Value {name} = {number} of enum {enum_name} was deleted"
    if number_reserved:
        yield Violation(
            "ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED",
            path,
            old_text,
            f"reserved {number}",
            f'{what} with only its number reserved; reserve "{name}" too, because proto3 '
            "JSON writes enum values by name.",
        )
    elif name_reserved:
        yield Violation(
            "ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED",
            path,
            old_text,
            f'reserved "{name}"',
            f"{what} with only its name reserved; reserve {number} too, because the wire "
            "format carries enum values by number.",
        )
    else:
        yield Violation(
            "ENUM_VALUE_NO_DELETE",
            path,
            old_text,
            "",
            f"{what}; reserve its number and name instead so neither can be reused.",
        )


def _type_deleted(rule: str, keyword: str, name: str, path: str) -> Violation:
    return Violation(
        rule,
        name,
        f"{keyword} {name}",
        "",
        f"The {keyword} {name}, reached through {path or 'the event'}, no longer exists.",
    )


def _event_replaced(old_name: str, new_name: str, new_schema: _Schema) -> Violation:
    if new_name in new_schema.messages and new_name != old_name:
        return Violation(
            "MESSAGE_NO_DELETE",
            old_name,
            f"message {old_name}",
            f"message {new_name}",
            f"The event message changed from {old_name} to {new_name}; events written "
            "earlier could not be read as the new message.",
        )
    return Violation(
        "MESSAGE_NO_DELETE",
        old_name,
        f"message {old_name}",
        "",
        f"The event message {old_name} no longer exists in the new schema.",
    )


def _presence_follows_type(old: _Shape, new: _Shape) -> bool:
    """Singular message <-> scalar changes presence only as a side effect of FIELD_SAME_TYPE."""
    singular = {"optional", "implicit"}
    if old.cardinality not in singular or new.cardinality not in singular:
        return False
    return (old.element_kind == "message") != (new.element_kind == "message")


def _cardinality(owner: _Message, field: _Field) -> str:
    if field.label == _Field.LABEL_REPEATED:
        return "repeated"
    presence = _presence(owner, field)
    # Singular message fields always track presence, whatever the syntax says.
    if presence == "implicit" and field.type in (_Field.TYPE_MESSAGE, _Field.TYPE_GROUP):
        return "optional"
    return presence


def _presence(owner: _Message, field: _Field) -> str:
    syntax = owner.file.syntax
    if syntax == "proto3":
        return "optional" if field.proto3_optional else "implicit"
    if syntax == "editions":
        chain = (*owner.features, field.options.features)
        resolved = [f.field_presence for f in chain if f.HasField("field_presence")]
        presence = resolved[-1] if resolved else FeatureSet.EXPLICIT
        if presence == FeatureSet.IMPLICIT:
            return "implicit"
        return "required" if presence == FeatureSet.LEGACY_REQUIRED else "optional"
    return "required" if field.label == _Field.LABEL_REQUIRED else "optional"


def _declaration(owner: _Message, field: _Field, shape: _Shape) -> str:
    """Render the field roughly as it reads in a .proto file, e.g. ``uint32 attempt = 1``."""
    if shape.cardinality == "map":
        return f"{shape.type_text} {field.name} = {field.number}"
    if field.label == _Field.LABEL_REPEATED:
        label = "repeated "
    elif field.label == _Field.LABEL_REQUIRED:
        label = "required "
    elif field.proto3_optional or owner.file.syntax in ("", "proto2"):
        label = "optional "
    else:
        label = ""
    text = f"{label}{shape.type_text} {field.name} = {field.number}"
    if owner.file.syntax == "editions" and field.label != _Field.LABEL_REPEATED:
        # Editions carry presence in (possibly inherited) features, not in a label.
        text += f" [features.field_presence = {_EDITION_PRESENCE[shape.cardinality]}]"
    return text


def _type_text(field: _Field) -> str:
    if field.type in (_Field.TYPE_MESSAGE, _Field.TYPE_ENUM):
        return _type_name(field)
    if field.type == _Field.TYPE_GROUP:
        return f"group {_type_name(field)}"
    return _Field.Type.Name(field.type).removeprefix("TYPE_").lower()


def _type_name(field: _Field) -> str:
    return field.type_name.lstrip(".")


def _element(field: _Field) -> tuple[_Kind | None, str | None]:
    if field.type in (_Field.TYPE_MESSAGE, _Field.TYPE_GROUP):
        return "message", _type_name(field)
    if field.type == _Field.TYPE_ENUM:
        return "enum", _type_name(field)
    return None, None


def _entry_fields(entry: DescriptorProto) -> tuple[_Field, _Field]:
    by_number = {field.number: field for field in entry.field}
    return by_number[1], by_number[2]


def _json_name(field: _Field) -> str:
    if field.HasField("json_name"):
        return field.json_name
    # Same derivation as protoc's ToJsonName, for descriptor sets built without protoc.
    parts = field.name.split("_")
    return parts[0] + "".join(part[:1].upper() + part[1:] for part in parts[1:])


def _oneof(owner: _Message, field: _Field) -> str | None:
    if not field.HasField("oneof_index") or field.proto3_optional:
        return None
    return owner.proto.oneof_decl[field.oneof_index].name


def _in_oneof(text: str, oneof: str | None) -> str:
    return f"{text} in oneof {oneof}" if oneof else text


def _oneof_words(oneof: str | None) -> str:
    return f"oneof {oneof}" if oneof else "outside any oneof"


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _key(violation: Violation) -> tuple[str, str, str, str]:
    return violation.rule, violation.path, violation.old, violation.new


def _unique(violations: Iterable[Violation]) -> list[Violation]:
    found: dict[tuple[str, str, str, str], Violation] = {}
    for violation in violations:
        found.setdefault(_key(violation), violation)
    return list(found.values())


def _sorted(violations: Iterable[Violation]) -> list[Violation]:
    return sorted(violations, key=lambda violation: (violation.path, violation.rule))

"""Field catalogues and value-free JSON rejection reasons for proto3 event messages."""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
from dataclasses import dataclass

from google.protobuf import descriptor_pb2, duration_pb2, field_mask_pb2, json_format, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

_FD = FieldDescriptor

_TYPE_NAMES = {
    _FD.TYPE_DOUBLE: "double",
    _FD.TYPE_FLOAT: "float",
    _FD.TYPE_INT64: "int64",
    _FD.TYPE_UINT64: "uint64",
    _FD.TYPE_INT32: "int32",
    _FD.TYPE_FIXED64: "fixed64",
    _FD.TYPE_FIXED32: "fixed32",
    _FD.TYPE_BOOL: "bool",
    _FD.TYPE_STRING: "string",
    _FD.TYPE_GROUP: "group",
    _FD.TYPE_MESSAGE: "message",
    _FD.TYPE_BYTES: "bytes",
    _FD.TYPE_UINT32: "uint32",
    _FD.TYPE_ENUM: "enum",
    _FD.TYPE_SFIXED32: "sfixed32",
    _FD.TYPE_SFIXED64: "sfixed64",
    _FD.TYPE_SINT32: "sint32",
    _FD.TYPE_SINT64: "sint64",
}

_INT32_RANGE = (-(2**31), 2**31 - 1)
_INT64_RANGE = (-(2**63), 2**63 - 1)
_INT_RANGES = {
    _FD.TYPE_INT32: _INT32_RANGE,
    _FD.TYPE_SINT32: _INT32_RANGE,
    _FD.TYPE_SFIXED32: _INT32_RANGE,
    _FD.TYPE_UINT32: (0, 2**32 - 1),
    _FD.TYPE_FIXED32: (0, 2**32 - 1),
    _FD.TYPE_INT64: _INT64_RANGE,
    _FD.TYPE_SINT64: _INT64_RANGE,
    _FD.TYPE_SFIXED64: _INT64_RANGE,
    _FD.TYPE_UINT64: (0, 2**64 - 1),
    _FD.TYPE_FIXED64: (0, 2**64 - 1),
}

# Largest finite float32; json_format rejects JSON floats beyond it for `float` fields.
_FLOAT32_MAX = 3.4028234663852886e38
_FLOAT_WORDS = frozenset({"NaN", "Infinity", "-Infinity"})

# json_format.ParseDict's default max_recursion_depth: deeper nesting is rejected.
_MAX_DEPTH = 100

_WKT_PREFIX = "google.protobuf."
_WRAPPERS_FILE = "google/protobuf/wrappers.proto"

# Unknown keys are echoed in paths only when they look like field names; anything else
# (an e-mail address, a card number, free text) could be personal data.
_SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# ... and even then not when a part of it looks generated: a long run of digits, a long
# part mixing letters and digits (sk_live_4eC39HqLyjWDarjtT1zdp7dc).
_GENERATED_PART = re.compile(r"\d{5,}|(?=[A-Za-z]*\d)[A-Za-z0-9]{12,}")
_REDACTED_KEY = "<redacted>"
_EXTENSION_KEY = re.compile(r"\[[a-zA-Z0-9._]*\]")

_STRING_TYPES = {
    "google.protobuf.Timestamp": (timestamp_pb2.Timestamp, "an RFC 3339 timestamp string"),
    "google.protobuf.Duration": (duration_pb2.Duration, 'a duration string such as "1.5s"'),
    "google.protobuf.FieldMask": (field_mask_pb2.FieldMask, "a comma-separated field mask"),
}


@dataclass(frozen=True)
class FieldInfo:
    """One field path of an event message, as listed by ``field_catalogue``."""

    path: str
    name: str
    number: int
    type: str
    type_name: str
    label: str
    oneof: str
    enum_values: tuple[tuple[str, int], ...]
    json_name: str
    depth: int


@dataclass(frozen=True)
class ValidationIssue:
    """Why a JSON event was rejected; ``field`` and ``message`` never carry submitted values."""

    code: str
    field: str
    message: str


# --------------------------------------------------------------------------- catalogue


def field_catalogue(descriptor: Descriptor) -> list[FieldInfo]:
    """List every field path of ``descriptor`` depth-first in declaration order.

    Nested messages (including repeated ones and map values) are expanded; well-known
    types are leaves, and a message type already on the current path is not re-entered,
    so recursive schemas terminate. ``depth`` is 0 for the event's own fields.
    """
    catalogue: list[FieldInfo] = []
    _catalogue_into(descriptor, "", 0, (descriptor.full_name,), catalogue)
    return catalogue


def _catalogue_into(
    descriptor: Descriptor,
    prefix: str,
    depth: int,
    ancestry: tuple[str, ...],
    out: list[FieldInfo],
) -> None:
    optional_names = _proto3_optional_names(descriptor)
    for field in descriptor.fields:
        path = f"{prefix}.{field.name}" if prefix else field.name
        out.append(_field_info(field, path, depth, field.name in optional_names))
        nested = _expandable_type(_value_field(field))
        if nested is not None and nested.full_name not in ancestry:
            _catalogue_into(nested, path, depth + 1, (*ancestry, nested.full_name), out)


def _field_info(field: FieldDescriptor, path: str, depth: int, proto3_optional: bool) -> FieldInfo:
    value_field = _value_field(field)
    enum_type = value_field.enum_type if value_field.cpp_type == _FD.CPPTYPE_ENUM else None
    oneof = field.containing_oneof
    return FieldInfo(
        path=path,
        name=field.name,
        number=field.number,
        type=_type_label(field),
        type_name=_type_name(value_field),
        label=_label(field, proto3_optional),
        oneof="" if proto3_optional or oneof is None else oneof.name,
        enum_values=tuple((v.name, v.number) for v in enum_type.values) if enum_type else (),
        json_name=field.json_name,
        depth=depth,
    )


def _is_map(field: FieldDescriptor) -> bool:
    return (
        field.is_repeated
        and field.cpp_type == _FD.CPPTYPE_MESSAGE
        and field.message_type.GetOptions().map_entry
    )


def _value_field(field: FieldDescriptor) -> FieldDescriptor:
    """The field describing element values: the map entry's ``value`` for maps, else itself."""
    return field.message_type.fields_by_name["value"] if _is_map(field) else field


def _expandable_type(field: FieldDescriptor) -> Descriptor | None:
    if field.cpp_type != _FD.CPPTYPE_MESSAGE:
        return None
    message_type = field.message_type
    return None if message_type.full_name.startswith(_WKT_PREFIX) else message_type


def _type_name(field: FieldDescriptor) -> str:
    if field.cpp_type == _FD.CPPTYPE_MESSAGE:
        return field.message_type.full_name
    if field.cpp_type == _FD.CPPTYPE_ENUM:
        return field.enum_type.full_name
    return ""


def _scalar_or_type_name(field: FieldDescriptor) -> str:
    return _type_name(field) or _TYPE_NAMES[field.type]


def _type_label(field: FieldDescriptor) -> str:
    if _is_map(field):
        entry = field.message_type.fields_by_name
        return f"map<{_TYPE_NAMES[entry['key'].type]}, {_scalar_or_type_name(entry['value'])}>"
    return _TYPE_NAMES[field.type]


def _label(field: FieldDescriptor, proto3_optional: bool) -> str:
    if _is_map(field):
        return "map"
    if field.is_repeated:
        return "repeated"
    if proto3_optional:
        return "proto3_optional"
    return "required" if field.is_required else "optional"


@functools.lru_cache(maxsize=1024)
def _proto3_optional_names(descriptor: Descriptor) -> frozenset[str]:
    # The runtime descriptor does not say which oneofs are synthetic; the proto form does.
    proto = descriptor_pb2.DescriptorProto()
    descriptor.CopyToProto(proto)
    return frozenset(f.name for f in proto.field if f.proto3_optional)


# --------------------------------------------------------------------------- validation


def validate_json(
    descriptor: Descriptor, message_class: type, data: object
) -> tuple[Message | None, ValidationIssue | None]:
    """Parse proto3 JSON ``data`` into ``message_class``; on failure say why without values."""
    if not isinstance(data, dict):
        return None, _not_an_object()
    try:
        message = json_format.ParseDict(data, message_class(), ignore_unknown_fields=False)
    except (json_format.Error, ValueError, TypeError, OverflowError, KeyError, AttributeError):
        # json_format lets some conversion errors escape unwrapped (e.g. OverflowError for
        # 1e400-sized integers); all of them are rejections of the input, not crashes.
        return None, locate_json_error(descriptor, data)
    return message, None


def locate_json_error(descriptor: Descriptor, data: object) -> ValidationIssue:
    """Find the first problem json_format would hit in ``data``, described without values.

    Keys are visited in the order json_format visits them, so the issue normally
    matches the error ParseDict raised.
    """
    if not isinstance(data, dict):
        return _not_an_object()
    issue = _check_fields(descriptor, data, "", 1)
    return issue or ValidationIssue("invalid_event", "", "event does not match the schema")


def _not_an_object() -> ValidationIssue:
    return ValidationIssue("not_an_object", "", "expected a JSON object")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _safe_key(key: object) -> str:
    if isinstance(key, str) and _SAFE_KEY.fullmatch(key) and not _GENERATED_PART.search(key):
        return key
    return _REDACTED_KEY


def _lookup_field(descriptor: Descriptor, key: object) -> FieldDescriptor | None:
    if not isinstance(key, str):
        return None
    # json_format tries the JSON name first, then the proto name.
    field = _fields_by_json_name(descriptor).get(key) or descriptor.fields_by_name.get(key)
    if field is None and descriptor.is_extendable and _EXTENSION_KEY.fullmatch(key):
        field = _lookup_extension(descriptor, key[1:-1])
    return field


@functools.lru_cache(maxsize=1024)
def _fields_by_json_name(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    return {f.json_name: f for f in descriptor.fields}


def _lookup_extension(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    try:
        extension = descriptor.file.pool.FindExtensionByName(name)
    except KeyError:
        return None
    return extension if extension.containing_type.full_name == descriptor.full_name else None


def _check_fields(
    descriptor: Descriptor, obj: dict, path: str, depth: int
) -> ValidationIssue | None:
    seen_oneofs: dict[str, str] = {}
    for key, value in obj.items():
        field = _lookup_field(descriptor, key)
        if field is None:
            return ValidationIssue("unknown_field", _join(path, _safe_key(key)), "unknown field")
        field_path = _join(path, field.name)
        oneof = field.containing_oneof
        # As in json_format, null never conflicts: it only clears the member.
        if oneof is not None and value is not None:
            if oneof.name in seen_oneofs:
                return _oneof_conflict(descriptor, field, seen_oneofs[oneof.name], field_path)
            seen_oneofs[oneof.name] = field.name
        if value is None:
            if _null_breaks_json_format(field):
                return ValidationIssue(
                    "invalid_value", field_path, "null is not accepted here; omit the field"
                )
            continue
        issue = _check_field_value(field, value, field_path, depth)
        if issue is not None:
            return issue
    return None


def _null_breaks_json_format(field: FieldDescriptor) -> bool:
    # json_format turns null into Value.null_value / NullValue 0 without checking for a
    # repeated field and then crashes, so null can't clear such a field.
    if not field.is_repeated or _is_map(field):
        return False
    return _type_name(field) in ("google.protobuf.Value", "google.protobuf.NullValue")


def _oneof_conflict(
    descriptor: Descriptor, field: FieldDescriptor, first: str, path: str
) -> ValidationIssue:
    if field.name in _proto3_optional_names(descriptor):
        # A proto3 `optional` field sits in a synthetic oneof whose name means nothing
        # to clients; the only way to hit it is naming the field twice.
        message = "field given twice (by proto name and JSON name)"
    else:
        message = f"oneof '{field.containing_oneof.name}' already set by '{first}'"
    return ValidationIssue("oneof_conflict", path, message)


def _check_field_value(
    field: FieldDescriptor, value: object, path: str, depth: int
) -> ValidationIssue | None:
    if _is_map(field):
        return _check_map(field, value, path, depth)
    if field.is_repeated:
        return _check_repeated(field, value, path, depth)
    if field.cpp_type == _FD.CPPTYPE_MESSAGE:
        return _check_message_value(field.message_type, value, path, depth + 1)
    return _check_scalar(field, value, path)


def _check_repeated(
    field: FieldDescriptor, value: object, path: str, depth: int
) -> ValidationIssue | None:
    if not isinstance(value, list | tuple):
        return ValidationIssue("wrong_type", path, "expected an array")
    is_message = field.cpp_type == _FD.CPPTYPE_MESSAGE
    for index, item in enumerate(value):
        item_path = f"{path}[{index}]"
        if item is None and not (
            is_message and field.message_type.full_name == "google.protobuf.Value"
        ):
            return ValidationIssue("invalid_value", item_path, "null is not allowed in an array")
        if is_message:
            issue = _check_message_value(field.message_type, item, item_path, depth + 1)
        else:
            issue = _check_scalar(field, item, item_path)
        if issue is not None:
            return issue
    return None


def _check_map(
    field: FieldDescriptor, value: object, path: str, depth: int
) -> ValidationIssue | None:
    # Map keys are client-chosen and may be personal data, so every map problem is
    # reported against the map field itself, never against a key.
    if not isinstance(value, dict):
        return ValidationIssue("wrong_type", path, "expected an object")
    key_field = field.message_type.fields_by_name["key"]
    value_field = field.message_type.fields_by_name["value"]
    for key, item in value.items():
        issue = _check_map_key(key_field, key, path)
        if issue is None and value_field.cpp_type == _FD.CPPTYPE_MESSAGE:
            issue = _check_message_value(value_field.message_type, item, path, depth + 1)
        elif issue is None:
            issue = _check_scalar(value_field, item, path)
        if issue is not None:
            return issue
    return None


def _check_map_key(key_field: FieldDescriptor, key: object, path: str) -> ValidationIssue | None:
    if key_field.cpp_type == _FD.CPPTYPE_BOOL:
        if key in ("true", "false"):
            return None
        return ValidationIssue("wrong_type", path, 'map keys must be "true" or "false"')
    issue = _check_scalar(key_field, key, path)
    if issue is None:
        return None
    return ValidationIssue(issue.code, path, f"invalid map key: {issue.message}")


# --------------------------------------------------------------------------- messages


def _check_message_value(
    descriptor: Descriptor, value: object, path: str, depth: int
) -> ValidationIssue | None:
    if depth > _MAX_DEPTH:
        return _too_deep(path)
    full_name = descriptor.full_name
    if descriptor.file.name == _WRAPPERS_FILE:
        return _check_scalar(descriptor.fields_by_name["value"], value, path)
    if full_name in _STRING_TYPES:
        return _check_string_wkt(full_name, value, path)
    if full_name == "google.protobuf.Struct":
        return _check_struct(value, path, depth)
    if full_name == "google.protobuf.ListValue":
        return _check_list_value(value, path, depth)
    if full_name == "google.protobuf.Value":
        return _check_value(value, path, depth)
    if full_name == "google.protobuf.Any":
        return _check_any(value, path)
    if isinstance(value, dict):
        return _check_fields(descriptor, value, path, depth)
    # json_format iterates a message's JSON like a dict, so an empty array or string
    # slips through as an empty message; anything else fails.
    if isinstance(value, str | list | tuple) and not value:
        return None
    return ValidationIssue("wrong_type", path, "expected an object")


def _check_string_wkt(full_name: str, value: object, path: str) -> ValidationIssue | None:
    message_class, expected = _STRING_TYPES[full_name]
    if not isinstance(value, str):
        return ValidationIssue("wrong_type", path, f"expected {expected}")
    try:
        message_class().FromJsonString(value)
    except (ValueError, TypeError, OverflowError):
        return ValidationIssue("invalid_value", path, f"expected {expected}")
    return None


def _too_deep(path: str) -> ValidationIssue:
    return ValidationIssue("invalid_value", path, "message nesting is too deep")


def _check_struct(value: object, path: str, depth: int) -> ValidationIssue | None:
    if depth > _MAX_DEPTH:
        return _too_deep(path)
    if not isinstance(value, dict):
        return ValidationIssue("wrong_type", path, "expected an object")
    for key, item in value.items():
        if not isinstance(key, str):
            return ValidationIssue("wrong_type", path, "object keys must be strings")
        issue = _check_value(item, path, depth + 1)
        if issue is not None:
            return issue
    return None


def _check_list_value(value: object, path: str, depth: int) -> ValidationIssue | None:
    if depth > _MAX_DEPTH:
        return _too_deep(path)
    if not isinstance(value, list | tuple):
        return ValidationIssue("wrong_type", path, "expected an array")
    for item in value:
        issue = _check_value(item, path, depth + 1)
        if issue is not None:
            return issue
    return None


def _check_value(value: object, path: str, depth: int) -> ValidationIssue | None:
    # Struct contents are free-form, so issues stay on the Struct/Value field's path.
    if depth > _MAX_DEPTH:
        return _too_deep(path)
    if isinstance(value, dict):
        return _check_struct(value, path, depth + 1)
    if isinstance(value, list | tuple):
        return _check_list_value(value, path, depth + 1)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return _check_utf8(value, path)
    if isinstance(value, float):
        return None
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            return ValidationIssue("out_of_range", path, "number out of range for double")
        return None
    return ValidationIssue("wrong_type", path, "expected a JSON value")


def _check_any(value: object, path: str) -> ValidationIssue | None:
    if isinstance(value, dict) and not value:
        return None
    if not isinstance(value, dict):
        return ValidationIssue("wrong_type", path, "expected an object")
    if not isinstance(value.get("@type"), str):
        return ValidationIssue("invalid_value", path, "Any requires an '@type' string")
    # The packed type resolves against a pool we cannot see; json_format checks the rest.
    return None


# --------------------------------------------------------------------------- scalars


def _check_scalar(field: FieldDescriptor, value: object, path: str) -> ValidationIssue | None:
    cpp_type = field.cpp_type
    if cpp_type in (_FD.CPPTYPE_INT32, _FD.CPPTYPE_INT64, _FD.CPPTYPE_UINT32, _FD.CPPTYPE_UINT64):
        return _check_integer(field, value, path)
    if cpp_type in (_FD.CPPTYPE_FLOAT, _FD.CPPTYPE_DOUBLE):
        return _check_float(field, value, path)
    if cpp_type == _FD.CPPTYPE_BOOL:
        return None if isinstance(value, bool) else _wrong(path, "expected true or false")
    if cpp_type == _FD.CPPTYPE_ENUM:
        return _check_enum(field, value, path)
    if field.type == _FD.TYPE_BYTES:
        return _check_bytes(value, path)
    if not isinstance(value, str):
        return _wrong(path, "expected a string")
    return _check_utf8(value, path)


def _wrong(path: str, message: str) -> ValidationIssue:
    return ValidationIssue("wrong_type", path, message)


def _check_utf8(value: str, path: str) -> ValidationIssue | None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return ValidationIssue("invalid_value", path, "string contains an unpaired surrogate")
    return None


def _parse_integer(value: object) -> int | None:
    """Mirror json_format's integer conversion; None when it would refuse the value."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    if isinstance(value, str) and " " in value:
        return None
    try:
        return int(value)
    except TypeError:
        return None
    except ValueError:
        pass
    # json_format also takes integral floats written as strings, such as "1e3".
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def _check_integer(field: FieldDescriptor, value: object, path: str) -> ValidationIssue | None:
    number = _parse_integer(value)
    if number is None:
        return _wrong(path, "expected an integer")
    low, high = _INT_RANGES[field.type]
    if not low <= number <= high:
        message = f"integer out of range for {_TYPE_NAMES[field.type]}"
        return ValidationIssue("out_of_range", path, message)
    return None


def _check_float(field: FieldDescriptor, value: object, path: str) -> ValidationIssue | None:
    type_name = _TYPE_NAMES[field.type]
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return ValidationIssue(
                "invalid_value", path, 'non-finite numbers must be quoted, e.g. "NaN"'
            )
        if field.type == _FD.TYPE_FLOAT and abs(value) > _FLOAT32_MAX:
            return ValidationIssue("out_of_range", path, "number out of range for float")
    if value == "nan":
        return ValidationIssue("invalid_value", path, 'not-a-number must be written "NaN"')
    try:
        float(value)
    except OverflowError:
        return ValidationIssue("out_of_range", path, f"number out of range for {type_name}")
    except TypeError:
        return _wrong(path, "expected a number")
    except ValueError:
        if value not in _FLOAT_WORDS:
            return _wrong(path, "expected a number")
    return None


def _check_enum(field: FieldDescriptor, value: object, path: str) -> ValidationIssue | None:
    enum_type = field.enum_type
    if isinstance(value, dict | list | tuple):
        return _wrong(path, "expected an enum name or number")
    if isinstance(value, str) and value in enum_type.values_by_name:
        return None
    try:
        number = int(value)
    except ValueError:
        if isinstance(value, str):
            return ValidationIssue(
                "unknown_enum_value", path, f"unknown enum name for {enum_type.full_name}"
            )
        return _wrong(path, "expected an enum name or number")
    except TypeError:
        return _wrong(path, "expected an enum name or number")
    except OverflowError:
        return ValidationIssue("out_of_range", path, "integer out of range for enum")
    if number in enum_type.values_by_number:
        return None
    if enum_type.is_closed:
        return ValidationIssue(
            "unknown_enum_value", path, f"unknown enum number for {enum_type.full_name}"
        )
    low, high = _INT32_RANGE
    if not low <= number <= high:
        return ValidationIssue("out_of_range", path, "integer out of range for enum")
    return None


def _check_bytes(value: object, path: str) -> ValidationIssue | None:
    if isinstance(value, str):
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError:
            return ValidationIssue("invalid_value", path, "expected base64-encoded bytes")
    elif isinstance(value, bytes | bytearray):
        encoded = bytes(value)
    else:
        return _wrong(path, "expected a base64 string")
    # Same lenient decode as json_format: URL-safe alphabet, padding optional.
    try:
        base64.urlsafe_b64decode(encoded + b"=" * (4 - len(encoded) % 4))
    except (binascii.Error, ValueError):
        return ValidationIssue("invalid_value", path, "expected base64-encoded bytes")
    return None

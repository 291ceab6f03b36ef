"""Fast proto3 JSON decoding: build messages via the C constructor, else defer to ParseDict."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

__all__ = ["compile_json_parser"]

# Returned by element converters when the fast path cannot prove ParseDict's result.
_FAIL: Any = object()

# ParseDict counts every message level (well-known types included) against a limit of
# 100; staying well below it means depth can never be the reason ParseDict fails.
_MAX_DEPTH = 64

# Any surrogate code point makes ParseDict fail (unpaired: its own check; paired: the
# UTF-8 encode in the setter), so a string containing one is never fast-pathed.
_HAS_SURROGATE = re.compile("[\ud800-\udfff]").search

_FLOAT32_MAX = float.fromhex("0x1.fffffep+127")

_T = FieldDescriptor
_INT_RANGES: dict[int, tuple[int, int]] = {
    _T.TYPE_INT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _T.TYPE_UINT32: (0, 2**32 - 1),
    _T.TYPE_FIXED32: (0, 2**32 - 1),
    _T.TYPE_INT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _T.TYPE_UINT64: (0, 2**64 - 1),
    _T.TYPE_FIXED64: (0, 2**64 - 1),
}
_INT64_TYPES = frozenset(
    {_T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64, _T.TYPE_UINT64, _T.TYPE_FIXED64}
)
_TIMESTAMP = "google.protobuf.Timestamp"

# Kinds of a singular field's spec; the hot loop dispatches on these small ints instead
# of calling a converter, because most event fields are strings, ints and enums.
_K_STR = 0
_K_BOOL = 1
_K_INT = 2  # payload (lo, hi); ints only
_K_INT64 = 3  # payload (lo, hi); ints or decimal strings (proto3 JSON quotes 64-bit ints)
_K_ENUM = 4  # payload {value name: number}
_K_MSG = 5  # payload build(data, depth) -> kwargs | None
_K_CONV = 6  # payload conv(value) -> value | _FAIL
_K_DEPTH = 7  # payload conv(value, depth) -> value | _FAIL (repeated and map fields)

_Spec = tuple[str, int, Any, str | None]
_Build = Callable[[Any, int], "dict[str, Any] | None"]


def compile_json_parser(
    descriptor: Descriptor, message_class: type[Message]
) -> Callable[[dict], Message | None]:
    """Return ``parse(data)``: the message ``ParseDict`` would build from ``data``, or None.

    None means "not proven": the input uses something the fast path does not cover or
    would make ``ParseDict`` raise; the caller then runs ``ParseDict`` itself. A returned
    message always serialises identically to ``ParseDict(data, message_class())``.
    """
    build = _message_builder(descriptor, {})

    def parse(data: dict) -> Message | None:
        kwargs = build(data, 1)
        if kwargs is None:
            return None
        try:
            return message_class(**kwargs)
        except Exception:
            # The constructor re-checks ranges and encodings; whatever it rejects,
            # ParseDict rejects too (or handles differently), so defer to it.
            return None

    return parse


def _fail_always(data: Any, depth: int) -> None:
    return None


def _message_builder(descriptor: Descriptor, cache: dict[str, _Build]) -> _Build:
    """Compile ``data -> constructor kwargs`` for one message type (memoised for recursion)."""
    full_name = descriptor.full_name
    if full_name in cache:
        return cache[full_name]
    if _is_special_json_type(descriptor):
        # Well-known types with their own JSON form (Struct, Any, wrappers...) are ParseDict's.
        cache[full_name] = _fail_always
        return _fail_always

    keys: dict[str, FieldDescriptor] = {}
    # ParseDict looks a key up by json_name first, then by field name.
    for field in descriptor.fields:
        keys.setdefault(field.name, field)
    for field in descriptor.fields:
        keys[field.json_name] = field
    oneof_names = {oneof.name for oneof in descriptor.oneofs}
    if oneof_names & keys.keys():
        # ParseDict records oneof names alongside keys and rejects a key it has "seen";
        # a key spelled like a oneof would need that bookkeeping, so never fast-path it.
        cache[full_name] = _fail_always
        return _fail_always

    table: dict[str, _Spec] = {}
    lookup = table.get
    fail = _FAIL
    has_surrogate = _HAS_SURROGATE

    def build(data: Any, depth: int) -> dict[str, Any] | None:
        if type(data) is not dict or depth > _MAX_DEPTH:
            return None
        kwargs: dict[str, Any] = {}
        seen_oneofs = None
        for key, value in data.items():
            spec = lookup(key)
            if spec is None:
                return None
            name, kind, payload, oneof = spec
            if kind == 0:  # _K_STR
                if type(value) is not str or not (value.isascii() or not has_surrogate(value)):
                    return None
            elif kind == 2:  # _K_INT
                if type(value) is not int or not payload[0] <= value <= payload[1]:
                    return None
            elif kind == 4:  # _K_ENUM
                if type(value) is not str:
                    return None
                value = payload.get(value)
                if value is None:
                    return None
            elif kind == 3:  # _K_INT64
                if type(value) is not int:
                    value = _convert_int64(value, payload)
                    if value is fail:
                        return None
                elif not payload[0] <= value <= payload[1]:
                    return None
            elif kind == 1:  # _K_BOOL
                if type(value) is not bool:
                    return None
            elif kind == 5:  # _K_MSG
                value = payload(value, depth + 1)
                if value is None:
                    return None
            else:
                value = payload(value) if kind == 6 else payload(value, depth + 1)
                if value is fail:
                    return None
            # Both spellings of one field (name and json_name): ParseDict merges or
            # raises depending on the type, so leave that to it.
            if name in kwargs:
                return None
            if oneof is not None:
                if seen_oneofs is None:
                    seen_oneofs = {oneof}
                elif oneof in seen_oneofs:
                    return None
                else:
                    seen_oneofs.add(oneof)
            kwargs[name] = value
        return kwargs

    # Registered before the fields compile so recursive message types find it.
    cache[full_name] = build

    for key, field in keys.items():
        spec = _field_spec(field, cache)
        if spec is None:
            continue  # unsupported type: the key stays unknown, so its presence defers
        kind, payload = spec
        oneof = field.containing_oneof
        # Single-member oneofs (proto3 optional) cannot conflict beyond the duplicate
        # field check, so only real multi-member oneofs are tracked per event.
        oneof_name = oneof.name if oneof is not None and len(oneof.fields) > 1 else None
        table[key] = (field.name, kind, payload, oneof_name)
    return build


def _is_special_json_type(descriptor: Descriptor) -> bool:
    return (
        descriptor.full_name.startswith("google.protobuf.")
        or descriptor.file.name == "google/protobuf/wrappers.proto"
    )


def _field_spec(field: FieldDescriptor, cache: dict[str, _Build]) -> tuple[int, Any] | None:
    """Return (kind, payload) for a field's JSON value, or None when not fast-pathed."""
    message_type = field.message_type
    if message_type is not None and message_type.GetOptions().map_entry:
        convert_map = _map_converter(field, cache)
        return None if convert_map is None else (_K_DEPTH, convert_map)
    if field.is_repeated:
        convert_list = _repeated_converter(field, cache)
        return None if convert_list is None else (_K_DEPTH, convert_list)
    if field.type == _T.TYPE_STRING:
        return _K_STR, None
    if field.type == _T.TYPE_BOOL:
        return _K_BOOL, None
    if field.type in _INT64_TYPES:
        return _K_INT64, _INT_RANGES[field.type]
    if field.type in _INT_RANGES:
        return _K_INT, _INT_RANGES[field.type]
    if field.type == _T.TYPE_ENUM:
        return _K_ENUM, {value.name: value.number for value in field.enum_type.values}
    if field.type == _T.TYPE_MESSAGE:
        if message_type.full_name == _TIMESTAMP:
            return _K_CONV, _convert_timestamp
        build = _message_builder(message_type, cache)
        return None if build is _fail_always else (_K_MSG, build)
    convert = _scalar_converter(field)
    return None if convert is None else (_K_CONV, convert)


def _scalar_converter(field: FieldDescriptor) -> Callable[[Any], Any] | None:
    """Return ``value -> converted | _FAIL`` for a non-message field type (element-wise)."""
    field_type = field.type
    if field_type == _T.TYPE_STRING:
        return _convert_string
    if field_type == _T.TYPE_BOOL:
        return _convert_bool
    if field_type in _INT64_TYPES:
        bounds = _INT_RANGES[field_type]
        return lambda value: _convert_int64(value, bounds)
    if field_type in _INT_RANGES:
        lo, hi = _INT_RANGES[field_type]
        return lambda value: value if type(value) is int and lo <= value <= hi else _FAIL
    if field_type == _T.TYPE_ENUM:
        numbers = {value.name: value.number for value in field.enum_type.values}
        return lambda value: numbers.get(value, _FAIL) if type(value) is str else _FAIL
    if field_type == _T.TYPE_DOUBLE:
        return _convert_double
    if field_type == _T.TYPE_FLOAT:
        return _convert_float
    if field_type == _T.TYPE_BYTES:
        return _convert_bytes
    return None  # groups and anything newer


def _element_converter(
    field: FieldDescriptor, cache: dict[str, _Build]
) -> tuple[bool, Callable[..., Any]] | None:
    """Return (takes_depth, convert) for one element of a repeated or map field."""
    message_type = field.message_type
    if field.type == _T.TYPE_MESSAGE and message_type is not None:
        if message_type.full_name == _TIMESTAMP:
            return False, _convert_timestamp
        build = _message_builder(message_type, cache)
        if build is _fail_always:
            return None

        def convert_message(value: Any, depth: int) -> Any:
            kwargs = build(value, depth)
            return _FAIL if kwargs is None else kwargs

        return True, convert_message
    convert = _scalar_converter(field)
    return None if convert is None else (False, convert)


def _repeated_converter(
    field: FieldDescriptor, cache: dict[str, _Build]
) -> Callable[[Any, int], Any] | None:
    element = _element_converter(field, cache)
    if element is None:
        return None
    takes_depth, convert = element

    def convert_list(value: Any, depth: int) -> Any:
        if type(value) is not list:
            return _FAIL
        if takes_depth:
            out = [convert(item, depth) for item in value]
        else:
            out = [convert(item) for item in value]
        # A null element makes ParseDict raise; it fails every converter too.
        return _FAIL if _FAIL in out else out

    return convert_list


def _map_converter(
    field: FieldDescriptor, cache: dict[str, _Build]
) -> Callable[[Any, int], Any] | None:
    entry = field.message_type
    key_field = entry.fields_by_name["key"]
    element = _element_converter(entry.fields_by_name["value"], cache)
    if element is None:
        return None
    takes_depth, convert = element
    key_type = key_field.type
    if key_type == _T.TYPE_STRING:
        convert_key = _convert_string
    elif key_type == _T.TYPE_BOOL:
        # JSON object keys are strings; ParseDict accepts exactly "true" and "false".
        def convert_key(key: Any) -> Any:
            return True if key == "true" else False if key == "false" else _FAIL
    elif key_type in _INT_RANGES:
        bounds = _INT_RANGES[key_type]

        def convert_key(key: Any) -> Any:
            return _convert_int64(key, bounds) if type(key) is str else _FAIL
    else:
        return None

    def convert_map(value: Any, depth: int) -> Any:
        if type(value) is not dict:
            return _FAIL
        out = {}
        for key, item in value.items():
            converted_key = convert_key(key)
            converted = convert(item, depth) if takes_depth else convert(item)
            if converted_key is _FAIL or converted is _FAIL:
                return _FAIL
            out[converted_key] = converted
        # Two keys naming one entry ("1" and "01"): ParseDict merges message values into
        # the first entry rather than replacing it, so defer.
        return out if len(out) == len(value) else _FAIL

    return convert_map


def _convert_string(value: Any) -> Any:
    if type(value) is str and (value.isascii() or not _HAS_SURROGATE(value)):
        return value
    return _FAIL


def _convert_bool(value: Any) -> Any:
    return value if type(value) is bool else _FAIL


def _convert_int64(value: Any, bounds: tuple[int, int]) -> Any:
    """Accept an int or a plain decimal string (no sign other than '-', no spaces) in range."""
    if type(value) is int:
        number = value
    elif type(value) is str and 0 < len(value) <= 21 and value.isascii():
        # isdigit() on ASCII text means [0-9]; int() alone would also take "+1", " 1", "1_0".
        digits = value[1:] if value[0] == "-" else value
        if not digits.isdigit():
            return _FAIL
        number = int(value)
    else:
        return _FAIL
    return number if bounds[0] <= number <= bounds[1] else _FAIL


def _convert_double(value: Any) -> Any:
    if type(value) is float:
        # NaN and infinities must be quoted in proto3 JSON; ParseDict rejects bare ones.
        return value if value - value == 0.0 else _FAIL
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return _FAIL
    return _FAIL


def _convert_float(value: Any) -> Any:
    value = _convert_double(value)
    if value is _FAIL or not -_FLOAT32_MAX <= value <= _FLOAT32_MAX:
        return _FAIL
    return value


def _convert_bytes(value: Any) -> Any:
    if type(value) is not str:
        return _FAIL
    try:
        # Exactly json_format's decoding: pad (even when already padded) and decode leniently.
        encoded = value.encode("utf-8")
        return base64.urlsafe_b64decode(encoded + b"=" * (4 - len(encoded) % 4))
    except Exception:
        return _FAIL


def _convert_timestamp(value: Any) -> Any:
    if type(value) is not str:
        return _FAIL
    stamp = timestamp_pb2.Timestamp()
    try:
        # The same parser ParseDict runs, so seconds and nanos match by construction.
        stamp.FromJsonString(value)
    except Exception:
        return _FAIL
    return {"seconds": stamp.seconds, "nanos": stamp.nanos}

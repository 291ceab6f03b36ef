"""Fast message -> dict rendering: ``MessageToDict(preserving_proto_field_name=True)``, compiled.

``json_format.MessageToDict`` decides every field's conversion per value, through
several generic calls; on a typical event that costs more than validating it. Here the
decisions are taken once per message type: each field gets a converter (or none, when
the value already is its JSON form), and rendering is a loop over ``ListFields()``.
Anything unusual (extensions, closed-enum numbers without a name, well-known types,
which are left to ``json_format`` itself) makes the renderer defer to ``MessageToDict``
for the whole message, so the result is always exactly ``MessageToDict``'s.
"""

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.internal import type_checkers
from google.protobuf.message import Message

__all__ = ["compile_dict_renderer"]

_T = FieldDescriptor
_INT64_CPP_TYPES = frozenset({_T.CPPTYPE_INT64, _T.CPPTYPE_UINT64})
_WELL_KNOWN_PREFIX = "google.protobuf."
_TIMESTAMP = "google.protobuf.Timestamp"

# Converter of one value (an element for repeated and map fields); None means identity.
_Convert = Callable[[Any], Any] | None
_Render = Callable[[Message], dict[str, Any]]


class _Defer(Exception):
    """Raised inside a render when only MessageToDict can say what the answer is."""


def compile_dict_renderer(descriptor: Descriptor) -> Callable[[Message], Any]:
    """Return ``render(message)``, equal to ``MessageToDict`` with proto field names.

    The renderer never mutates the message. Whatever it does not cover it leaves to
    ``MessageToDict`` (including raising what ``MessageToDict`` raises).
    """
    reference = functools.partial(json_format.MessageToDict, preserving_proto_field_name=True)
    if _is_special(descriptor):
        return reference
    build = _message_renderer(descriptor, {}, _printer())

    def render(message: Message) -> Any:
        try:
            return build(message)
        except (_Defer, KeyError, ValueError, TypeError):
            return reference(message)

    return render


def _printer() -> Any:
    # Used only while compiling, to ask json_format itself how each enum value prints
    # (name, or a JSON name option where the runtime supports one).
    return json_format._Printer(preserving_proto_field_name=True)


def _is_special(descriptor: Descriptor) -> bool:
    """Well-known types (Timestamp, Struct, Any, wrappers...) have their own JSON forms."""
    return (
        descriptor.full_name.startswith(_WELL_KNOWN_PREFIX)
        or descriptor.file.name == "google/protobuf/wrappers.proto"
    )


def _message_renderer(descriptor: Descriptor, cache: dict[str, _Render], printer: Any) -> _Render:
    full_name = descriptor.full_name
    if full_name in cache:
        return cache[full_name]
    # field descriptor -> (output name, kind, converter); kinds: 0 singular, 1 repeated, 2 map.
    table: dict[FieldDescriptor, tuple[str, int, _Convert, Callable[[Any], str] | None]] = {}
    lookup = table.__getitem__  # KeyError (an extension, say) defers the whole message

    def render(message: Message) -> dict[str, Any]:
        js: dict[str, Any] = {}
        for field, value in message.ListFields():
            name, kind, convert, convert_key = lookup(field)
            if kind == 0:
                js[name] = value if convert is None else convert(value)
            elif kind == 1:
                js[name] = list(value) if convert is None else [convert(item) for item in value]
            elif convert_key is None:
                if convert is None:
                    js[name] = {key: value[key] for key in value}
                else:
                    js[name] = {key: convert(value[key]) for key in value}
            else:
                js[name] = {
                    convert_key(key): value[key] if convert is None else convert(value[key])
                    for key in value
                }
        return js

    # Registered before the fields compile so recursive message types find it.
    cache[full_name] = render
    for field in descriptor.fields:
        message_type = field.message_type
        if message_type is not None and message_type.GetOptions().map_entry:
            key_field = message_type.fields_by_name["key"]
            value_field = message_type.fields_by_name["value"]
            table[field] = (
                field.name,
                2,
                _value_converter(value_field, cache, printer),
                _key_converter(key_field),
            )
        else:
            kind = 1 if field.is_repeated else 0
            table[field] = (field.name, kind, _value_converter(field, cache, printer), None)
    return render


def _key_converter(key_field: FieldDescriptor) -> Callable[[Any], str] | None:
    if key_field.type == _T.TYPE_STRING:
        return None  # str(key) of a str is the key itself
    if key_field.type == _T.TYPE_BOOL:
        return _bool_key
    return str


def _bool_key(key: Any) -> str:
    return "true" if key else "false"


def _value_converter(field: FieldDescriptor, cache: dict[str, _Render], printer: Any) -> _Convert:
    """Converter of one element of ``field``, as json_format's ``_FieldToJsonObject``."""
    cpp_type = field.cpp_type
    if cpp_type == _T.CPPTYPE_MESSAGE:
        message_type = field.message_type
        if message_type.full_name == _TIMESTAMP:
            return _timestamp
        if _is_special(message_type):
            return functools.partial(json_format.MessageToDict, preserving_proto_field_name=True)
        return _message_renderer(message_type, cache, printer)
    if cpp_type == _T.CPPTYPE_ENUM:
        return _enum_converter(field, printer)
    if cpp_type == _T.CPPTYPE_STRING:
        return _bytes if field.type == _T.TYPE_BYTES else None
    if cpp_type in _INT64_CPP_TYPES:
        return str
    if cpp_type == _T.CPPTYPE_DOUBLE:
        return _double
    if cpp_type == _T.CPPTYPE_FLOAT:
        return _float
    # bool, 32-bit integers: the value as it is.
    return None


def _enum_converter(field: FieldDescriptor, printer: Any) -> Callable[[int], Any]:
    enum_type = field.enum_type
    if enum_type.full_name == "google.protobuf.NullValue":
        return _null
    to_json = printer._FieldToJsonObject
    names = {value.number: to_json(field, value.number) for value in enum_type.values}
    if enum_type.is_closed:
        # An unnamed number in a closed enum makes MessageToDict raise: KeyError defers to it.
        return names.__getitem__

    def convert(number: int) -> Any:
        return names.get(number, number)

    return convert


def _null(number: int) -> None:
    return None


def _timestamp(stamp: Message) -> str:
    return stamp.ToJsonString()


def _bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("utf-8")


def _double(value: float) -> Any:
    if value - value == 0.0:  # finite
        return value
    if math.isnan(value):
        return "NaN"
    return "-Infinity" if value < 0 else "Infinity"


def _float(value: float) -> Any:
    if value - value == 0.0:
        return type_checkers.ToShortestFloat(value)
    return _double(value)

"""The compiled renderer returns exactly MessageToDict's dict (proto field names), always."""

from __future__ import annotations

import functools
import math

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.fastdict import compile_dict_renderer
from governance.protoc import compile_protos
from governance.schemas import load_schema
from tests.governance.test_fastjson import (
    EVENT_PAYLOADS,
    _event,
    _everything,
    _message,
    _reference,
    _telemetry,
)

EXTENDED_PROTO = """
syntax = "proto2";
package fastdict.v1;
message Extended {
  optional string name = 1;
  extensions 100 to 199;
}
extend Extended { optional int32 level = 100; }
message Holder { optional Extended inner = 1; optional int32 count = 2; }
"""


def _reference_dict(message):
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _typed(value):
    """``value`` with every type spelled out, so 1, 1.0 and True never compare equal."""
    if isinstance(value, dict):
        return ("dict", [(_typed(k), _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(item) for item in value])
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    if isinstance(value, float):
        return ("float", value.hex())
    return (type(value).__name__, value)


def _assert_same(render, message) -> None:
    before = message.SerializeToString(deterministic=True)
    try:
        expected = ("ok", _typed(_reference_dict(message)))
    except Exception as exc:  # MessageToDict refuses: the renderer must refuse alike
        expected = ("raises", type(exc).__name__)
    try:
        got = ("ok", _typed(render(message)))
    except Exception as exc:
        got = ("raises", type(exc).__name__)
    assert got == expected
    assert message.SerializeToString(deterministic=True) == before  # never mutated


@functools.cache
def _everything_renderer():
    schema, _ = _everything()
    return compile_dict_renderer(schema.descriptor)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.deferred(lambda: _message(_everything()[0].descriptor, valid=True)))
def test_renderer_equals_message_to_dict_on_generated_messages(data):
    """Every scalar type, enums, nesting, repeated, maps of each key kind, oneofs, proto3
    optional, Timestamps and Structs: the renderer's dict is MessageToDict's, types and
    key order included."""
    schema, _ = _everything()
    message = _reference(schema, data)
    if message is None:
        return
    _assert_same(_everything_renderer(), message)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    blob=st.binary(max_size=64),
)
def test_renderer_equals_message_to_dict_on_arbitrary_wire_bytes(blob):
    """Messages parsed from arbitrary bytes (odd enum numbers, NaN floats, unknown fields)
    render as MessageToDict renders them."""
    schema, _ = _everything()
    message = schema.message_class()
    try:
        message.ParseFromString(blob)
    except Exception:
        return
    _assert_same(_everything_renderer(), message)


@pytest.mark.parametrize(
    "assign",
    [
        {"f_double": float("nan")},
        {"f_double": float("inf")},
        {"f_double": float("-inf")},
        {"f_double": -0.0},
        {"f_float": float("nan")},
        {"f_float": float("-inf")},
        {"f_float": 0.1},
        {"f_float": 3.4028234e38},
        {"f_int64": -(2**63)},
        {"f_uint64": 2**64 - 1},
        {"f_bytes": b"\x00\xff\xfe"},
        {"f_string": "é😀"},
        {"color": 7},  # a number with no name in an open enum
        {"maybe_color": 0},
        {"choice_color": 2},
    ],
)
def test_special_scalars_render_like_message_to_dict(assign):
    """NaN and infinities become strings, floats their shortest form, 64-bit integers
    strings, bytes base64, unnamed enum numbers stay numbers."""
    schema, _ = _everything()
    message = schema.message_class()
    for name, value in assign.items():
        setattr(message, name, value)
    _assert_same(_everything_renderer(), message)


def test_repeated_and_map_specials_render_like_message_to_dict():
    """Repeated floats with NaN, maps keyed by bool and integers, maps of messages."""
    schema, _ = _everything()
    message = schema.message_class()
    message.r_float.extend([float("nan"), 0.1, float("-inf")])
    message.r_int64.extend([-(2**63), 0, 2**63 - 1])
    message.r_bytes.extend([b"", b"\x01"])
    message.m_by_bool[True] = 7
    message.m_by_bool[False] = 1
    message.m_by_int64[-5] = "x"
    message.m_by_uint32[4].num = 3
    message.m_inner["a"].child.colors.extend([1, 9])
    message.m_stamps[-1].seconds = 5
    message.r_stamps.add().nanos = 1000
    message.inner.child.child.label_text = "deep"
    _assert_same(_everything_renderer(), message)


def test_out_of_range_timestamp_raises_like_message_to_dict():
    """A Timestamp MessageToDict refuses to print is refused alike (it defers to it)."""
    schema, _ = _everything()
    message = schema.message_class()
    message.occurred_at.seconds = 2**40
    _assert_same(_everything_renderer(), message)


@pytest.mark.parametrize("kind", sorted(EVENT_PAYLOADS))
def test_client_telemetry_events_render_like_message_to_dict(kind):
    """Each client telemetry fixture event renders to MessageToDict's dict."""
    schema, parse = _telemetry()
    message = parse(_event(kind))
    assert message is not None
    render = compile_dict_renderer(schema.descriptor)
    _assert_same(render, message)
    assert render(message)[kind] == _reference_dict(message)[kind]


def test_extensions_defer_to_message_to_dict():
    """A message carrying an extension (no table entry) is rendered by MessageToDict."""
    file_set = compile_protos({"fastdict_ext.proto": EXTENDED_PROTO}, include_platform_protos=False)
    schema = load_schema(file_set.SerializeToString(), "fastdict.v1.Holder")
    extended = schema.pool.FindMessageTypeByName("fastdict.v1.Extended")
    level = schema.pool.FindExtensionByName("fastdict.v1.level")
    message = schema.message_class()
    message.inner.name = "n"
    message.inner.Extensions[level] = 3
    message.count = 2
    render = compile_dict_renderer(schema.descriptor)
    assert extended.full_name == "fastdict.v1.Extended"
    _assert_same(render, message)
    assert render(message)["inner"]["[fastdict.v1.level]"] == 3


def test_plain_messages_never_defer(monkeypatch):
    """Client telemetry events (no extensions, no well-known types) never call MessageToDict."""
    calls = []
    original = json_format.MessageToDict

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(json_format, "MessageToDict", counting)
    schema, parse = _telemetry()
    render = compile_dict_renderer(schema.descriptor)
    for kind in sorted(EVENT_PAYLOADS):
        render(parse(_event(kind)))
    assert calls == []

"""OTLP AnyValues and times as the plain values a schema's fields take. Pure."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

NANOS = 1_000_000_000


def any_value_plain(value: AnyValue) -> Any:
    """The Python value of an AnyValue (kvlists as dicts, arrays as lists, bytes as base64)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind == "array_value":
        return [any_value_plain(item) for item in value.array_value.values]
    return {item.key: any_value_plain(item.value) for item in value.kvlist_value.values}


def plain_text(value: Any) -> str:
    """A plain value as the string a string field or a string map keeps."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def rfc3339_nanos(nanos: int) -> str | None:
    """The proto3 JSON Timestamp of ``nanos`` since the epoch, or None if not representable."""
    seconds, fraction = divmod(nanos, NANOS)
    try:
        moment = datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"


_URL_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#@]*@")
_PARAMETER_VALUE = re.compile(r"=[^&#;]*")
REDACTED = "redacted"


def url_parameters_redacted(text: str, *, whole_query: bool = False) -> str:
    """A URL (or, with ``whole_query``, a bare query string) with every query and fragment
    parameter's value and any user:password@ replaced by ``redacted``; names, host and
    path kept. Query strings carry tokens, e-mail addresses and keys no scanner knows the
    shape of (``?api_key=...``), so the semantic-convention url fields never keep them."""
    if whole_query:
        return _PARAMETER_VALUE.sub(f"={REDACTED}", text)
    text = _URL_USERINFO.sub(rf"\g<1>{REDACTED}@", text)
    cut = min((i for i in (text.find("?"), text.find("#")) if i >= 0), default=-1)
    if cut < 0:
        return text
    return text[:cut] + _PARAMETER_VALUE.sub(f"={REDACTED}", text[cut:])

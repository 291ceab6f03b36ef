"""OTLP export requests from bytes and answers to bytes: binary protobuf or the OTLP JSON
mapping (hex trace and span ids, lowerCamelCase names, enums as integers). Pure."""

from __future__ import annotations

import base64
import json
from enum import Enum
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from ..codes import BatchCode
from ..pipeline import BatchError

# The bytes fields the OTLP JSON mapping writes in hex rather than base64.
HEX_ID_KEYS = frozenset({"traceId", "spanId", "trace_id", "span_id"})


class OtlpEncoding(Enum):
    """How a request (and so its answer) is encoded."""

    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"


def otlp_decode(body: bytes, encoding: OtlpEncoding, message_class: type[Message]) -> Message:
    """Parse ``body`` into ``message_class``; refuse the whole body (BatchError) if it cannot be.

    Error messages name the message type and, for JSON, where it broke, never a value.
    """
    message = message_class()
    name = message_class.DESCRIPTOR.name
    if encoding is OtlpEncoding.PROTOBUF:
        try:
            message.ParseFromString(body)
        except (DecodeError, RecursionError):
            raise BatchError(
                BatchCode.MALFORMED_PROTOBUF, f"request body is not a binary OTLP {name}"
            ) from None
        return message
    try:
        document = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BatchError(BatchCode.INVALID_ENCODING, "request body is not UTF-8") from None
    except (ValueError, RecursionError):
        raise BatchError(BatchCode.MALFORMED_JSON, "request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise BatchError(BatchCode.NOT_AN_OBJECT, "request body must be a JSON object")
    try:
        json_format.ParseDict(_base64_ids(document), message, ignore_unknown_fields=True)
    except Exception:  # ParseError, and TypeError/ValueError on odd input
        # The library's message quotes the offending value: never pass it on.
        raise BatchError(
            BatchCode.MALFORMED_JSON,
            f"request body is not an OTLP {name} in the JSON mapping "
            f"(a field has the wrong type or an unknown enum value)",
        ) from None
    return message


def _base64_ids(value: Any) -> Any:
    """The document with hex trace/span ids rewritten as the base64 that ParseDict expects."""
    if isinstance(value, dict):
        converted = {}
        for key, item in value.items():
            if key in HEX_ID_KEYS and isinstance(item, str):
                converted[key] = _hex_to_base64(key, item)
            else:
                converted[key] = _base64_ids(item)
        return converted
    if isinstance(value, list):
        return [_base64_ids(item) for item in value]
    return value


def _hex_to_base64(key: str, text: str) -> str:
    try:
        return base64.b64encode(bytes.fromhex(text)).decode()
    except ValueError:
        raise BatchError(
            BatchCode.MALFORMED_JSON, f"'{key}' must be hex digits", field=key
        ) from None


def otlp_encode(message: Message, encoding: OtlpEncoding) -> bytes:
    """The answer ``message`` in the encoding of the request."""
    if encoding is OtlpEncoding.PROTOBUF:
        return message.SerializeToString()
    return json.dumps(json_format.MessageToDict(message), separators=(",", ":")).encode()

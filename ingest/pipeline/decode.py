"""Decode a request body into raw items: JSON or binary protobuf, nothing per event yet.

Pure: no database, no HTTP. What refuses the whole body raises ``BatchError``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from google.protobuf.message import DecodeError

from governance.platform_protos import event_batch_class
from telemetry_platform.conf import telemetry_settings

from ..codes import BatchCode
from .types import BatchError, RawItem


def decode_json_batch(body: bytes, *, default_schema: str = "") -> list[RawItem]:
    """Decode ``{"events": [...]}``: self-describing items, or bare bodies of ``default_schema``.

    A top-level ``"schema"`` key works like ``?schema=``, so a client's existing
    fixture files post unchanged.
    """
    try:
        document = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BatchError(BatchCode.INVALID_ENCODING, "request body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BatchError(
            BatchCode.MALFORMED_JSON,
            f"request body is not valid JSON (line {exc.lineno}, column {exc.colno})",
        ) from None
    except RecursionError:
        raise BatchError(BatchCode.MALFORMED_JSON, "request body is nested too deeply") from None
    except ValueError:
        # Python refuses to convert integer literals beyond sys.get_int_max_str_digits().
        raise BatchError(
            BatchCode.NUMBER_TOO_LONG,
            f"request body holds a number of more than {sys.get_int_max_str_digits()} digits",
        ) from None
    if not isinstance(document, dict):
        raise BatchError(BatchCode.NOT_AN_OBJECT, "request body must be a JSON object")
    if "events" not in document:
        raise BatchError(
            BatchCode.MISSING_EVENTS, "request body has no 'events' array", field="events"
        )
    events = document["events"]
    if not isinstance(events, list):
        raise BatchError(BatchCode.EVENTS_NOT_A_LIST, "'events' must be an array", field="events")
    top_schema = document.get("schema", "")
    if not isinstance(top_schema, str):
        raise BatchError(BatchCode.INVALID_SCHEMA_NAME, "'schema' must be a string", field="schema")
    bare_schema = default_schema or top_schema
    _check_batch_size(len(events))
    return [_json_item(item, bare_schema) for item in events]


def _json_item(item: Any, bare_schema: str) -> RawItem:
    if bare_schema:
        return RawItem(schema=bare_schema, body=item)
    if isinstance(item, dict) and set(item) == {"schema", "event"}:
        return RawItem(schema=item["schema"], body=item["event"])
    # Not self-describing: rejected per event, the rest of the batch goes on.
    return RawItem(schema="", body=item)


def decode_protobuf_batch(body: bytes, *, default_schema: str = "") -> list[RawItem]:
    """Decode a binary ``telemetry.v1.EventBatch``; items without a schema take ``default_schema``.

    Each item's ``event`` stays bytes here: it is parsed per event against its own
    schema, so one bad event does not spoil the batch.
    """
    batch = event_batch_class()()
    try:
        batch.ParseFromString(body)
    except DecodeError:
        raise BatchError(
            BatchCode.MALFORMED_PROTOBUF, "request body is not a telemetry.v1.EventBatch"
        ) from None
    _check_batch_size(len(batch.events))
    return [RawItem(schema=item.schema or default_schema, body=item.event) for item in batch.events]


def _check_batch_size(count: int) -> None:
    limit = telemetry_settings.MAX_EVENTS_PER_BATCH
    if count > limit:
        raise BatchError(
            BatchCode.TOO_MANY_EVENTS,
            f"batch has {count} events; at most {limit} are accepted per request",
            field="events",
        )
    if count == 0:
        raise BatchError(BatchCode.EMPTY_BATCH, "'events' is empty", field="events")

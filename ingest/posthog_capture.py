"""PostHog's capture format decoded into raw items of ``posthog.capture.v1`` (pure, no HTTP).

posthog-js posts one event object, an array of them, or ``{"batch": [...]}``, as JSON, as
gzip (``text/plain``, ``compression=gzip-js``) or as ``data=<base64 JSON>`` form bodies
(``compression=base64``, what its beacons send). Its token (our publishable key) is in
each event's ``properties.token`` or at the top (``api_key``/``token``).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from governance.defaults import POSTHOG_CAPTURE_SCHEMA

from .codes import BatchCode
from .pipeline import BatchError, RawItem

# Properties with a field of their own in telemetry.v1.PostHogCaptureEvent.
MAPPED = {
    "distinct_id": "distinct_id",
    "$device_id": "device_id",
    "$session_id": "session_id",
    "$current_url": "current_url",
    "$ip": "ip",
    "$lib": "lib",
    "$lib_version": "lib_version",
}
PERSON_KEYS = ("$set", "$set_once")
DROPPED = ("token",)
SURFACES = {"web": "CLIENT_SURFACE_WEB"}


class CaptureCode:
    """Codes for refused capture bodies (besides the ingest batch codes)."""

    UNSUPPORTED_COMPRESSION = "unsupported_compression"
    MALFORMED_BASE64 = "malformed_base64"
    MIXED_TOKENS = "mixed_tokens"


@dataclass(frozen=True)
class Capture:
    """A decoded capture request: its token and the raw items of its events."""

    token: str
    items: list[RawItem]


def capture_body_json(body: bytes, *, compression: str, media_type: str) -> Any:
    """The JSON document of a capture body; ``body`` is already inflated when it was gzip."""
    if compression == "base64" or media_type == "application/x-www-form-urlencoded":
        data = parse_qs(body.decode("latin-1")).get("data", [""])[0]
        try:
            body = base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise BatchError(
                CaptureCode.MALFORMED_BASE64, "the data field is not base64", field="data"
            ) from None
    elif compression not in ("", "gzip-js", "gzip"):
        raise BatchError(
            CaptureCode.UNSUPPORTED_COMPRESSION,
            "compression must be gzip-js, gzip or base64",
            field="compression",
        )
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BatchError(BatchCode.INVALID_ENCODING, "request body is not UTF-8") from None
    except (ValueError, RecursionError):
        raise BatchError(BatchCode.MALFORMED_JSON, "request body is not valid JSON") from None


def capture_decode(document: Any, *, received_at: datetime, max_events: int) -> Capture:
    """The token and raw items of a capture document; refuses a body of several tokens."""
    top_token = ""
    if isinstance(document, dict) and "batch" in document:
        top_token = document.get("api_key") or document.get("token") or ""
        events = document["batch"]
    elif isinstance(document, list):
        events = document
    elif isinstance(document, dict):
        events = [document]
        top_token = document.get("api_key") or ""
    else:
        raise BatchError(BatchCode.NOT_AN_OBJECT, "a capture body is an event, a list or a batch")
    if not isinstance(events, list):
        raise BatchError(BatchCode.EVENTS_NOT_A_LIST, "'batch' must be an array", field="batch")
    if not events:
        raise BatchError(BatchCode.EMPTY_BATCH, "the capture body holds no event")
    if len(events) > max_events:
        raise BatchError(
            BatchCode.TOO_MANY_EVENTS,
            f"batch has {len(events)} events; at most {max_events} are accepted per request",
        )
    tokens = {top_token} if isinstance(top_token, str) and top_token else set()
    items = []
    for event in events:
        body, token = capture_event_map(event, received_at=received_at)
        if token:
            tokens.add(token)
        items.append(RawItem(schema=POSTHOG_CAPTURE_SCHEMA, body=body))
    if len(tokens) > 1:
        raise BatchError(CaptureCode.MIXED_TOKENS, "the events of one request carry one token")
    return Capture(token=next(iter(tokens), ""), items=items)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def capture_event_map(event: Any, *, received_at: datetime) -> tuple[Any, str]:
    """One PostHog event as a PostHogCaptureEvent JSON body, and the token it carried.

    Not an object: passed on as is, for prepare to reject per event (not_an_object).
    """
    if not isinstance(event, dict):
        return event, ""
    properties = dict(event.get("properties") or {})
    token = properties.pop("token", "")
    body: dict[str, Any] = {
        "uuid": _text(event.get("uuid") or ""),
        "event": _text(event.get("event") or ""),
        "timestamp": event.get("timestamp") or received_at.isoformat().replace("+00:00", "Z"),
    }
    if "distinct_id" in event and "distinct_id" not in properties:
        properties["distinct_id"] = event["distinct_id"]
    for name, field in MAPPED.items():
        value = properties.pop(name, None)
        if value not in (None, ""):
            body[field] = _text(value)
    if body.get("lib"):
        body["surface"] = SURFACES.get(body["lib"], body["lib"])
    person: dict[str, str] = {}
    for key in PERSON_KEYS:
        for source in (event.get(key), properties.pop(key, None)):
            if isinstance(source, dict):
                person.update({str(k): _text(v) for k, v in source.items()})
    if person:
        body["person_properties"] = person
    if properties:
        body["properties"] = {str(key): _text(value) for key, value in properties.items()}
    return body, token if isinstance(token, str) else ""

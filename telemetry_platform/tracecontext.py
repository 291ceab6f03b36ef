"""W3C Trace Context (traceparent / tracestate) header validation."""

from __future__ import annotations

import re
from dataclasses import dataclass

TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
TRACESTATE_KEY = re.compile(
    r"^([a-z0-9][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})$"
)
TRACESTATE_VALUE = re.compile(
    r"^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$"
)
MAX_TRACESTATE_MEMBERS = 32
MAX_TRACESTATE_LENGTH = 512


class TraceContextError(ValueError):
    """The header is present but malformed; the message says which rule it breaks."""


@dataclass(frozen=True)
class TraceParent:
    version: str
    trace_id: str
    parent_id: str
    flags: str


def parse_traceparent(header: str) -> TraceParent:
    """Parse and check a ``traceparent`` (version, 32-hex trace id, 16-hex span id, flags)."""
    match = TRACEPARENT.match(header.strip())
    if not match:
        raise TraceContextError(
            "traceparent must be VERSION-TRACEID-PARENTID-FLAGS in lower-case hex (2-32-16-2)"
        )
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff":
        raise TraceContextError("traceparent version ff is invalid")
    if version == "00" and rest:
        raise TraceContextError("traceparent version 00 has exactly four fields")
    if trace_id == "0" * 32:
        raise TraceContextError("traceparent trace id must not be all zeros")
    if parent_id == "0" * 16:
        raise TraceContextError("traceparent parent id must not be all zeros")
    return TraceParent(version, trace_id, parent_id, flags)


def check_tracestate(header: str) -> None:
    """Check a ``tracestate`` header: at most 32 ``key=value`` members, 512 characters."""
    if len(header) > MAX_TRACESTATE_LENGTH:
        raise TraceContextError(f"tracestate is longer than {MAX_TRACESTATE_LENGTH} characters")
    members = [member.strip() for member in header.split(",") if member.strip()]
    if len(members) > MAX_TRACESTATE_MEMBERS:
        raise TraceContextError(f"tracestate has more than {MAX_TRACESTATE_MEMBERS} members")
    seen = set()
    for position, member in enumerate(members, start=1):
        key, sep, value = member.partition("=")
        if not sep or not TRACESTATE_KEY.match(key) or not TRACESTATE_VALUE.match(value):
            raise TraceContextError(f"tracestate member {position} is not a valid key=value")
        if key in seen:
            raise TraceContextError(f"tracestate member {position} repeats a key")
        seen.add(key)

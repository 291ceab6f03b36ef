"""The platform's own protobuf messages (the binary batch), compiled once per process."""

from __future__ import annotations

from functools import lru_cache

from google.protobuf.message import Message

from .protoc import PLATFORM_PROTO_ROOT, compile_protos_serialized
from .schemas import load_schema

BATCH_PROTO = "telemetry/v1/batch.proto"
BATCH_MESSAGE = "telemetry.v1.EventBatch"


@lru_cache(maxsize=1)
def event_batch_class() -> type[Message]:
    """Return the message class of ``telemetry.v1.EventBatch``."""
    source = (PLATFORM_PROTO_ROOT / BATCH_PROTO).read_text()
    serialized = compile_protos_serialized({BATCH_PROTO: source})
    return load_schema(serialized, BATCH_MESSAGE).message_class

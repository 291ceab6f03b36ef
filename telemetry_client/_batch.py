"""The binary batch message ``telemetry.v1.EventBatch``, built from a descriptor literal.

The library must not import the platform (nor run protoc), so the two tiny messages
of ``proto/telemetry/v1/batch.proto`` are declared here as a ``FileDescriptorProto``:

    message BatchItem  { string schema = 1; bytes event = 2; }
    message EventBatch { repeated BatchItem events = 1; }

They live in a private descriptor pool under a file name of their own, so they can
never clash with another copy of the same messages in the process (the platform's
server compiles its own when it runs in the same interpreter, e.g. in tests).
"""

from __future__ import annotations

from functools import lru_cache

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

_FILE_NAME = "telemetry_client/telemetry/v1/batch.proto"
_PACKAGE = "telemetry.v1"

_Field = descriptor_pb2.FieldDescriptorProto


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    file_proto = descriptor_pb2.FileDescriptorProto(
        name=_FILE_NAME, package=_PACKAGE, syntax="proto3"
    )
    item = file_proto.message_type.add(name="BatchItem")
    item.field.add(name="schema", number=1, type=_Field.TYPE_STRING, label=_Field.LABEL_OPTIONAL)
    item.field.add(name="event", number=2, type=_Field.TYPE_BYTES, label=_Field.LABEL_OPTIONAL)
    batch = file_proto.message_type.add(name="EventBatch")
    batch.field.add(
        name="events",
        number=1,
        type=_Field.TYPE_MESSAGE,
        label=_Field.LABEL_REPEATED,
        type_name=f".{_PACKAGE}.BatchItem",
    )
    return file_proto


@lru_cache(maxsize=1)
def event_batch_class() -> type[Message]:
    """Return the ``telemetry.v1.EventBatch`` message class (built once per process)."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_descriptor())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.EventBatch"))


def encode_event_batch(items: list[tuple[str, bytes]]) -> bytes:
    """Serialise ``(schema, event bytes)`` pairs as a binary ``EventBatch``."""
    batch = event_batch_class()()
    for schema, event in items:
        batch.events.add(schema=schema, event=event)
    return batch.SerializeToString()


def item_size(schema: str, event: bytes) -> int:
    """Upper bound of the bytes one item adds to an encoded batch.

    Tag + length of the item (at most 6 bytes for anything under 4 GiB) plus the
    item's own two tagged, length-prefixed fields (at most 6 bytes each).
    """
    return len(schema.encode()) + len(event) + 18

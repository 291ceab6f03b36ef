"""Pure helpers over compiled schemas: descriptor pools, message classes and field roles."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from .choices import FieldRole

OPTIONS_PACKAGE = "telemetry.v1"
WELL_KNOWN_PREFIX = "google.protobuf."
TIMESTAMP_TYPE = "google.protobuf.Timestamp"

# Conventional field names per role, used when a field carries no (telemetry.v1.role) option.
CONVENTIONAL_ROLE_NAMES: dict[str, tuple[str, ...]] = {
    FieldRole.EVENT_ID: ("event_id",),
    FieldRole.OCCURRED_AT: ("occurred_at", "occurred_at_unix_ms", "occurred_at_ms"),
    FieldRole.SOURCE: ("source",),
    FieldRole.SURFACE: ("surface",),
    FieldRole.CLIENT_BUILD_ID: ("client_build_id",),
    FieldRole.APP_VERSION: ("app_version",),
    FieldRole.PROTOCOL_VERSION: ("protocol_version",),
    FieldRole.REQUEST_ID: ("request_id",),
    FieldRole.TRACEPARENT: ("traceparent",),
    FieldRole.TRACESTATE: ("tracestate",),
    FieldRole.SESSION_ID: ("session_id",),
    FieldRole.DEVICE_ID: ("device_id",),
    FieldRole.ACTOR: ("actor_scope_hash", "actor_hash", "user_id"),
    FieldRole.TOPIC: ("topic",),
    FieldRole.RUN_ID: ("run_id",),
    FieldRole.WORKER_ID: ("worker_id",),
}
# Option enum names are FIELD_ROLE_<ROLE>; map them back to our role values.
OPTION_ROLE_NAMES = {f"FIELD_ROLE_{role.upper()}": role for role in FieldRole.values}
INTEGER_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)


class SchemaDefinitionError(Exception):
    """A schema cannot be used as an event schema; ``errors`` says why, one line each."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


@dataclass(frozen=True)
class CompiledSchema:
    """A loaded descriptor set: its pool, the event message and the message class."""

    pool: descriptor_pool.DescriptorPool
    descriptor: Descriptor
    message_class: type[Message]
    field_options_class: type[Message] | None


def load_schema(descriptor_set: bytes, message_name: str) -> CompiledSchema:
    """Load a serialised FileDescriptorSet into a fresh pool and return the event message."""
    file_set = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
    pool = descriptor_pool.DescriptorPool()
    for file_proto in file_set.file:
        pool.Add(file_proto)
    try:
        descriptor = pool.FindMessageTypeByName(message_name)
    except KeyError:
        available = sorted(_message_names(file_set))
        raise SchemaDefinitionError(
            [f"message {message_name!r} is not defined; defined: {', '.join(available) or 'none'}"]
        ) from None
    classes = message_factory.GetMessageClassesForFiles([f.name for f in file_set.file], pool)
    return CompiledSchema(
        pool=pool,
        descriptor=descriptor,
        message_class=message_factory.GetMessageClass(descriptor),
        field_options_class=classes.get("google.protobuf.FieldOptions"),
    )


def _message_names(file_set: descriptor_pb2.FileDescriptorSet) -> Iterator[str]:
    for file_proto in file_set.file:
        if file_proto.package.startswith("google.protobuf"):
            continue
        prefix = f"{file_proto.package}." if file_proto.package else ""
        for message in file_proto.message_type:
            yield prefix + message.name


def iter_field_paths(
    descriptor: Descriptor, prefix: str = ""
) -> Iterator[tuple[str, FieldDescriptor]]:
    """Yield (dotted path, field) for every field, recursing into nested non-well-known messages."""
    seen = {descriptor.full_name}
    yield from _walk(descriptor, prefix, seen)


def _walk(
    descriptor: Descriptor, prefix: str, seen: set[str]
) -> Iterator[tuple[str, FieldDescriptor]]:
    for field in descriptor.fields:
        path = f"{prefix}{field.name}"
        yield path, field
        nested = field.message_type
        if (
            nested is None
            or field.is_repeated
            or nested.full_name.startswith(WELL_KNOWN_PREFIX)
            or nested.full_name in seen
        ):
            continue
        yield from _walk(nested, f"{path}.", seen | {nested.full_name})


def field_option(
    compiled: CompiledSchema, field: FieldDescriptor, name: str
) -> Message | int | None:
    """Return the value of the platform option ``telemetry.v1.<name>`` on ``field``, or None.

    Options of a dynamically loaded pool arrive as unknown fields of the default
    FieldOptions; they must be re-parsed through the pool's own FieldOptions class.
    """
    if compiled.field_options_class is None:
        return None
    try:
        extension = compiled.pool.FindExtensionByName(f"{OPTIONS_PACKAGE}.{name}")
    except KeyError:
        return None
    options = compiled.field_options_class.FromString(field.GetOptions().SerializeToString())
    if not options.HasExtension(extension):
        return None
    return options.Extensions[extension]


def derive_roles(
    compiled: CompiledSchema, explicit: dict[str, str] | None = None
) -> dict[str, str]:
    """Return role -> field path: explicit choices, then field options, then conventional names."""
    paths = dict(iter_field_paths(compiled.descriptor))
    roles: dict[str, str] = {}
    errors = []
    for role, path in (explicit or {}).items():
        if role not in FieldRole.values:
            errors.append(f"unknown role {role!r}; roles: {', '.join(FieldRole.values)}")
        elif path not in paths:
            errors.append(f"role {role}: no field {path!r} in {compiled.descriptor.full_name}")
        else:
            roles[str(role)] = path
    if errors:
        raise SchemaDefinitionError(errors)
    for path, field in paths.items():
        option = field_option(compiled, field, "role")
        if option:
            role = _option_role(compiled, int(option))
            if role:
                roles.setdefault(str(role), path)
    for role, names in CONVENTIONAL_ROLE_NAMES.items():
        if role in roles:
            continue
        # Shallowest path wins, so an envelope's own field beats a payload's.
        candidates = sorted(
            (path for path, field in paths.items() if field.name in names),
            key=lambda p: (p.count("."), names.index(p.rsplit(".", 1)[-1])),
        )
        if candidates:
            roles[str(role)] = candidates[0]
    _check_role_types(paths, roles)
    return roles


def _option_role(compiled: CompiledSchema, number: int) -> str | None:
    enum = compiled.pool.FindEnumTypeByName(f"{OPTIONS_PACKAGE}.FieldRole")
    value = enum.values_by_number.get(number)
    return OPTION_ROLE_NAMES.get(value.name) if value else None


def _check_role_types(paths: dict[str, FieldDescriptor], roles: dict[str, str]) -> None:
    errors = []
    occurred = roles.get(FieldRole.OCCURRED_AT)
    if occurred is None:
        errors.append(
            "no occurred-at field: name a field occurred_at (google.protobuf.Timestamp) or "
            "occurred_at_unix_ms (int64), mark one with [(telemetry.v1.role) = "
            "FIELD_ROLE_OCCURRED_AT], or pass --role occurred_at=FIELD_PATH"
        )
    else:
        field = paths[occurred]
        is_timestamp = (
            field.message_type is not None and field.message_type.full_name == TIMESTAMP_TYPE
        )
        if not (is_timestamp or field.type in INTEGER_TYPES):
            errors.append(
                f"occurred-at field {occurred!r} must be google.protobuf.Timestamp or an "
                "integer of unix milliseconds"
            )
    for role, path in roles.items():
        if role == FieldRole.OCCURRED_AT:
            continue
        field = paths[path]
        if field.is_repeated or field.message_type is not None:
            errors.append(f"role {role}: field {path!r} must be a single scalar value")
    if errors:
        raise SchemaDefinitionError(errors)


def is_map_field(field: FieldDescriptor) -> bool:
    """Return True for ``map<K, V>`` fields."""
    return (
        field.message_type is not None
        and field.is_repeated
        and field.message_type.GetOptions().map_entry
    )


def leaf_fields(descriptor: Descriptor) -> list[tuple[str, FieldDescriptor]]:
    """Every path that holds values: scalars, enums, well-known types, maps of scalars.

    Containers (nested messages, repeated messages, maps of messages) are walked
    through, never listed: a policy classifies values, not their envelopes.
    """
    leaves: list[tuple[str, FieldDescriptor]] = []
    _leaves_into(descriptor, "", (descriptor.full_name,), leaves)
    return leaves


def _leaves_into(
    descriptor: Descriptor,
    prefix: str,
    ancestry: tuple[str, ...],
    out: list[tuple[str, FieldDescriptor]],
) -> None:
    for field in descriptor.fields:
        path = f"{prefix}{field.name}"
        nested = field.message_type
        if is_map_field(field):
            value_type = nested.fields_by_name["value"].message_type
            if value_type is None or value_type.full_name.startswith(WELL_KNOWN_PREFIX):
                out.append((path, field))
            elif value_type.full_name not in ancestry:
                _leaves_into(value_type, f"{path}.", (*ancestry, value_type.full_name), out)
            continue
        if nested is None or nested.full_name.startswith(WELL_KNOWN_PREFIX):
            out.append((path, field))
        elif nested.full_name not in ancestry:
            _leaves_into(nested, f"{path}.", (*ancestry, nested.full_name), out)

"""Compares two descriptor sets rule by rule (buf's breaking rules) and returns the violations.

Every message, enum, extension and service defined in the checked files is compared, not
only what the event message reaches: messages, enums and extensions are paired by fully
qualified name, fields and enum values by number, files by path. Which rules apply is the
rule set's business (``rules.py``); this module evaluates them all and filters.

Paths: a field of a type the event message reaches is named by its dotted path from the
event (``reconnect.reason_code``, as field policies name it); an enum value by the path of
the field using the enum plus the value (``surface.CLIENT_SURFACE_IOS``); anything the
event does not reach by its fully qualified name; types by fully qualified name; files by
path. ``file`` and ``line`` locate the new declaration (or, for a deletion, its parent) in
the new sources, for annotations. The module works on the descriptor protos alone, so it
needs neither Django nor a descriptor pool.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from google.protobuf.descriptor_pb2 import (
    DescriptorProto,
    EnumDescriptorProto,
    FeatureSet,
    FieldDescriptorProto,
    FieldOptions,
    FileDescriptorProto,
    FileDescriptorSet,
    ServiceDescriptorProto,
)

from .rules import _FILE_OPTION_RULES, EVENT_MESSAGE_RULE, RuleSet

_Field = FieldDescriptorProto
_Kind = Literal["message", "enum"]

_CARDINALITY_WORDS = {
    "map": "a map",
    "repeated": "repeated",
    "required": "required",
    "optional": "singular with explicit presence",
    "implicit": "singular with implicit presence",
}
_EDITION_PRESENCE = {"implicit": "IMPLICIT", "optional": "EXPLICIT", "required": "LEGACY_REQUIRED"}

# Scalar types that may replace each other (docs of FIELD_WIRE_JSON_COMPATIBLE_TYPE and
# FIELD_WIRE_COMPATIBLE_TYPE); string -> bytes is wire-compatible one way only.
_WIRE_JSON_GROUPS = (
    {"int32", "uint32"},
    {"int64", "uint64"},
    {"fixed32", "sfixed32"},
    {"fixed64", "sfixed64"},
)
_WIRE_GROUPS = (
    {"int32", "uint32", "int64", "uint64", "bool"},
    {"sint32", "sint64"},
    {"fixed32", "sfixed32"},
    {"fixed64", "sfixed64"},
)

_FILE_OPTIONS = {rule: rule.removeprefix("FILE_SAME_").lower() for rule in _FILE_OPTION_RULES}

_ZERO_DEFAULTS = {"bool": "false", "string": "", "bytes": ""}

# FileDescriptorProto / DescriptorProto / EnumDescriptorProto field numbers, for
# source_code_info paths.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE, _FILE_EXTENSION, _FILE_PACKAGE = 4, 5, 6, 7, 2
_MSG_FIELD, _MSG_NESTED, _MSG_ENUM, _MSG_EXTENSION = 2, 3, 4, 6
_ENUM_VALUE, _SERVICE_METHOD = 2, 2


@dataclass(frozen=True)
class Violation:
    """One incompatibility between the new schema and an earlier revision."""

    rule: str
    path: str
    old: str
    new: str
    message: str
    against_version: int | None = None
    file: str = ""
    line: int = 0

    def describe(self) -> str:
        """One line naming the rule, the path, the old and new declarations and why."""
        against = f" (against v{self.against_version})" if self.against_version else ""
        return (
            f"{self.rule} at {self.path}{against}: {self.old or '(absent)'} -> "
            f"{self.new or '(absent)'}. {self.message}"
        )


@dataclass(eq=False)
class _Message:
    name: str
    proto: DescriptorProto
    file: FileDescriptorProto
    # Feature sets from the file inwards; editions resolve features from the nearest one.
    features: tuple[FeatureSet, ...]
    source: tuple[int, ...]
    parent: str | None


@dataclass(eq=False)
class _Enum:
    name: str
    proto: EnumDescriptorProto
    file: FileDescriptorProto
    features: tuple[FeatureSet, ...]
    source: tuple[int, ...]
    parent: str | None


@dataclass(eq=False)
class _Extension:
    name: str
    proto: _Field
    file: FileDescriptorProto
    features: tuple[FeatureSet, ...]
    source: tuple[int, ...]


@dataclass(eq=False)
class _Service:
    name: str
    proto: ServiceDescriptorProto
    file: FileDescriptorProto
    source: tuple[int, ...]


@dataclass(frozen=True)
class _Shape:
    """What a field means on the wire and in JSON, independent of its name and number."""

    cardinality: str
    scalar: str  # int32, string, message, group, enum, ... (map: the value's)
    type_name: str  # message or enum name, "" for scalars
    type_text: str


@dataclass
class _Image:
    """The files of one descriptor set, indexed by fully qualified name."""

    descriptor_set: FileDescriptorSet
    checked: Collection[str] | None
    files: dict[str, FileDescriptorProto] = field(default_factory=dict)
    messages: dict[str, _Message] = field(default_factory=dict)
    enums: dict[str, _Enum] = field(default_factory=dict)
    extensions: dict[str, _Extension] = field(default_factory=dict)
    services: dict[str, _Service] = field(default_factory=dict)
    lines: dict[str, dict[tuple[int, ...], int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.all_messages: dict[str, _Message] = {}
        self.all_enums: dict[str, _Enum] = {}
        for file in self.descriptor_set.file:
            own = self.checked is None or file.name in self.checked
            if own:
                self.files[file.name] = file
                self.lines[file.name] = {
                    tuple(loc.path): loc.span[0] + 1
                    for loc in file.source_code_info.location
                    if loc.span
                }
            prefix = f"{file.package}." if file.package else ""
            features = (file.options.features,)
            self._index(file, own, prefix, features, (), None, file.message_type, file.enum_type)
            for i, ext in enumerate(file.extension):
                if own:
                    name = prefix + ext.name
                    self.extensions[name] = _Extension(
                        name, ext, file, features, (_FILE_EXTENSION, i)
                    )
            if own:
                for i, service in enumerate(file.service):
                    name = prefix + service.name
                    self.services[name] = _Service(name, service, file, (_FILE_SERVICE, i))

    def _index(
        self,
        file: FileDescriptorProto,
        own: bool,
        prefix: str,
        features: tuple[FeatureSet, ...],
        source: tuple[int, ...],
        parent: str | None,
        messages: Iterable[DescriptorProto],
        enums: Iterable[EnumDescriptorProto],
    ) -> None:
        enum_tag = _MSG_ENUM if source else _FILE_ENUM
        message_tag = _MSG_NESTED if source else _FILE_MESSAGE
        for i, enum in enumerate(enums):
            chain = (*features, enum.options.features)
            entry = _Enum(prefix + enum.name, enum, file, chain, (*source, enum_tag, i), parent)
            self.all_enums[entry.name] = entry
            if own:
                self.enums[entry.name] = entry
        for i, message in enumerate(messages):
            name = prefix + message.name
            chain = (*features, message.options.features)
            here = (*source, message_tag, i)
            entry = _Message(name, message, file, chain, here, parent)
            self.all_messages[name] = entry
            if own:
                self.messages[name] = entry
                for k, ext in enumerate(message.extension):
                    ext_name = f"{name}.{ext.name}"
                    self.extensions[ext_name] = _Extension(
                        ext_name, ext, file, chain, (*here, _MSG_EXTENSION, k)
                    )
            self._index(
                file, own, f"{name}.", chain, here, name, message.nested_type, message.enum_type
            )

    def line(self, file: str, source: tuple[int, ...]) -> int:
        """The 1-based line of the declaration at ``source``, or of its nearest ancestor."""
        lines = self.lines.get(file, {})
        while source:
            if source in lines:
                return lines[source]
            source = source[:-1]
        return lines.get((_FILE_PACKAGE,), 1) if lines else 0

    def map_entry(self, owner_features: tuple[FeatureSet, ...], field_: _Field) -> _Message | None:
        if field_.label != _Field.LABEL_REPEATED or field_.type != _Field.TYPE_MESSAGE:
            return None
        entry = self.all_messages.get(_type_name(field_))
        if entry is None or not entry.proto.options.map_entry:
            return None
        return entry

    def shape(
        self,
        file: FileDescriptorProto,
        features: tuple[FeatureSet, ...],
        f: _Field,
        *,
        extension: bool = False,
    ) -> _Shape:
        entry = self.map_entry(features, f)
        if entry is not None:
            by_number = {x.number: x for x in entry.proto.field}
            key, value = by_number[1], by_number[2]
            value_scalar = _scalar(value, entry.features)
            text = f"map<{_type_text(key, entry.features)}, {_type_text(value, entry.features)}>"
            return _Shape("map", value_scalar, _type_name(value), text)
        cardinality = _cardinality(file, features, f, extension=extension)
        return _Shape(cardinality, _scalar(f, features), _type_name(f), _type_text(f, features))


def check_compatibility(
    *,
    old: FileDescriptorSet,
    new: FileDescriptorSet,
    message: str,
    old_message: str | None = None,
    rule_set: RuleSet | None = None,
    old_files: Collection[str] | None = None,
    new_files: Collection[str] | None = None,
) -> list[Violation]:
    """Return every way ``new`` breaks ``old`` under ``rule_set``, sorted by path then rule.

    ``message`` is the fully qualified event message of the new revision; ``old_message``
    names the old revision's event when it differed (by default the same name).
    ``old_files``/``new_files`` name the revision's own files (the sources, not their
    imports); by default every file in the set is checked.
    """
    rule_set = rule_set or RuleSet()
    old_image, new_image = _Image(old, old_files), _Image(new, new_files)
    old_name, new_name = (old_message or message).lstrip("."), message.lstrip(".")
    if old_name not in old_image.all_messages:
        raise ValueError(f"{old_name} is not a message in the old descriptor set")
    if old_name != new_name or new_name not in new_image.all_messages:
        return [_event_replaced(old_name, new_name, new_image)]
    checker = _Checker(old_image, new_image, old_name)
    kept = []
    for violation, package in checker.run():
        if not rule_set.ignores(violation.rule, violation.file, package):
            kept.append(violation)
    return _sorted(_unique(kept))


def check_against_history(
    *,
    history: Sequence[tuple[int, FileDescriptorSet]],
    new: FileDescriptorSet,
    message: str,
    old_messages: Mapping[int, str] | None = None,
    rule_set: RuleSet | None = None,
    old_files: Mapping[int, Collection[str]] | None = None,
    new_files: Collection[str] | None = None,
) -> list[Violation]:
    """Check ``new`` against every earlier revision, tagging each violation with its version.

    A violation found against several versions with the same old and new state is reported
    once, against the earliest of them. ``old_messages`` and ``old_files`` map a version to
    its event message name and its own files where those differ from the defaults.
    """
    found: dict[tuple[str, str, str, str], Violation] = {}
    for version, descriptor_set in sorted(history, key=lambda item: item[0]):
        violations = check_compatibility(
            old=descriptor_set,
            new=new,
            message=message,
            old_message=(old_messages or {}).get(version),
            rule_set=rule_set,
            old_files=(old_files or {}).get(version),
            new_files=new_files,
        )
        for violation in violations:
            found.setdefault(_key(violation), replace(violation, against_version=version))
    return _sorted(found.values())


class _Checker:
    """Evaluates every rule; yields (violation, package of the file it concerns)."""

    def __init__(self, old: _Image, new: _Image, event: str) -> None:
        self.old, self.new = old, new
        self.paths = _event_paths(old, event)
        for name, path in _event_paths(new, event).items():
            self.paths.setdefault(name, path)

    # -- helpers ----------------------------------------------------------------------

    def _at(self, file: FileDescriptorProto | None, source: tuple[int, ...]) -> tuple[str, int]:
        if file is None:
            return "", 0
        return file.name, self.new.line(file.name, source)

    def _violation(
        self,
        rule: str,
        path: str,
        old: str,
        new: str,
        message: str,
        file: FileDescriptorProto | None,
        source: tuple[int, ...],
        package: str,
    ) -> tuple[Violation, str]:
        name, line = self._at(file, source)
        return Violation(rule, path, old, new, message, file=name, line=line), package

    def _member_path(self, owner: str, member: str) -> str:
        prefix = self.paths.get(owner)
        if prefix is None:
            return f"{owner}.{member}"
        return f"{prefix}.{member}" if prefix else member

    # -- run --------------------------------------------------------------------------

    def run(self) -> Iterator[tuple[Violation, str]]:
        yield from self._files()
        yield from self._packages()
        for name, old in self.old.messages.items():
            new = self.new.messages.get(name)
            # A map's entry message is compared as the map field that owns it.
            if new is not None and not (old.proto.options.map_entry or new.proto.options.map_entry):
                yield from self._message(old, new)
        for name, old in self.old.enums.items():
            new = self.new.enums.get(name)
            if new is not None:
                yield from self._enum(old, new)
        for name, old in self.old.extensions.items():
            new = self.new.extensions.get(name)
            if new is not None:
                path = self.paths.get(name, name)
                yield from self._field_pair(
                    old.proto,
                    new.proto,
                    old.features,
                    new.features,
                    old.file,
                    new.file,
                    new.source,
                    path,
                    name,
                    extension=True,
                )
        for name, old in self.old.services.items():
            new = self.new.services.get(name)
            if new is not None:
                yield from self._service(old, new)

    # -- files and packages -----------------------------------------------------------

    def _files(self) -> Iterator[tuple[Violation, str]]:
        for path, old in self.old.files.items():
            new = self.new.files.get(path)
            if new is None:
                yield self._violation(
                    "FILE_NO_DELETE",
                    path,
                    f"file {path}",
                    "",
                    f"The file {path} was deleted.",
                    None,
                    (),
                    old.package,
                )
                continue
            here = (new, (_FILE_PACKAGE,), old.package)
            if old.package != new.package:
                yield self._violation(
                    "FILE_SAME_PACKAGE",
                    path,
                    f"package {old.package};",
                    f"package {new.package};",
                    f"The package of {path} changed from {old.package!r} to {new.package!r}.",
                    *here,
                )
            old_syntax, new_syntax = _syntax_text(old), _syntax_text(new)
            if old_syntax != new_syntax:
                yield self._violation(
                    "FILE_SAME_SYNTAX",
                    path,
                    old_syntax,
                    new_syntax,
                    f"The syntax of {path} changed.",
                    new,
                    (12,),
                    old.package,
                )
            for rule, option in _FILE_OPTIONS.items():
                before, after = getattr(old.options, option), getattr(new.options, option)
                if before != after:
                    yield self._violation(
                        rule,
                        path,
                        f"option {option} = {_option_text(before)};",
                        f"option {option} = {_option_text(after)};",
                        f"The {option} option of {path} changed; generated code changes.",
                        new,
                        (8,),
                        old.package,
                    )
            yield from self._file_types(old, new)

    def _file_types(
        self, old: FileDescriptorProto, new: FileDescriptorProto
    ) -> Iterator[tuple[Violation, str]]:
        """MESSAGE/ENUM/EXTENSION/SERVICE_NO_DELETE: per file, topmost deletions only."""
        kinds = (
            ("MESSAGE_NO_DELETE", "message", self.old.messages, self.new.messages),
            ("ENUM_NO_DELETE", "enum", self.old.enums, self.new.enums),
            ("EXTENSION_NO_DELETE", "extension", self.old.extensions, self.new.extensions),
            ("SERVICE_NO_DELETE", "service", self.old.services, self.new.services),
        )
        for rule, keyword, old_index, new_index in kinds:
            for name, entry in old_index.items():
                if entry.file.name != old.name or _is_map_entry(entry):
                    continue
                present = new_index.get(name)
                if present is not None and present.file.name == new.name:
                    continue
                parent = getattr(entry, "parent", None)
                if (
                    parent
                    and parent in self.old.messages
                    and (
                        self.new.messages.get(parent) is None
                        or self.new.messages[parent].file.name != new.name
                    )
                ):
                    continue  # reported with its parent
                source = self.new.messages[parent].source if parent in self.new.messages else ()
                yield self._violation(
                    rule,
                    name,
                    f"{keyword} {name}",
                    "",
                    f"The {keyword} {name} was deleted from {old.name}.",
                    new,
                    source or (_FILE_PACKAGE,),
                    old.package,
                )

    def _packages(self) -> Iterator[tuple[Violation, str]]:
        old_packages = _by_package(self.old)
        new_packages = _by_package(self.new)
        for package, kinds in old_packages.items():
            if package not in new_packages:
                yield self._violation(
                    "PACKAGE_NO_DELETE",
                    package or "(no package)",
                    f"package {package}",
                    "",
                    f"The package {package!r} no longer exists.",
                    None,
                    (),
                    package,
                )
                continue
            some_file = next(iter(new_packages[package]["file"]))
            for kind, rule in (
                ("message", "PACKAGE_MESSAGE_NO_DELETE"),
                ("enum", "PACKAGE_ENUM_NO_DELETE"),
                ("extension", "PACKAGE_EXTENSION_NO_DELETE"),
                ("service", "PACKAGE_SERVICE_NO_DELETE"),
            ):
                for name in sorted(kinds[kind] - new_packages[package][kind]):
                    parent = name.rsplit(".", 1)[0]
                    if (
                        kind in ("message", "enum")
                        and parent in kinds["message"]
                        and (parent not in new_packages[package]["message"])
                    ):
                        continue
                    yield self._violation(
                        rule,
                        name,
                        f"{kind} {name}",
                        "",
                        f"The {kind} {name} was deleted from package {package!r}.",
                        self.new.files[some_file],
                        (_FILE_PACKAGE,),
                        package,
                    )

    # -- messages -----------------------------------------------------------------------

    def _message(self, old: _Message, new: _Message) -> Iterator[tuple[Violation, str]]:
        package, name = old.file.package, old.name
        here = (new.file, new.source, package)
        new_fields = {f.number: f for f in new.proto.field}
        for f in old.proto.field:
            path = self._member_path(name, f.name)
            if f.number in new_fields:
                target = new_fields[f.number]
                index = list(new.proto.field).index(target)
                yield from self._field_pair(
                    f,
                    target,
                    old.features,
                    new.features,
                    old.file,
                    new.file,
                    (*new.source, _MSG_FIELD, index),
                    path,
                    name,
                    old_owner=old,
                    new_owner=new,
                )
            else:
                yield from self._field_deleted(old, new, f, path)
        yield from self._reserved(
            "RESERVED_MESSAGE_NO_DELETE",
            "message",
            name,
            old.proto,
            new.proto,
            inclusive=False,
            here=here,
        )
        old_ext = _merge(old.proto.extension_range, inclusive=False)
        new_ext = _merge(new.proto.extension_range, inclusive=False)
        for start, end in old_ext:
            if not _covered(start, end, new_ext):
                yield self._violation(
                    "EXTENSION_MESSAGE_NO_DELETE",
                    name,
                    f"extensions {_range_text(start, end)}",
                    "",
                    f"The extension range {_range_text(start, end)} of {name} was deleted.",
                    *here,
                )
        old_oneofs, new_oneofs = _real_oneofs(old.proto), _real_oneofs(new.proto)
        for oneof in sorted(old_oneofs - new_oneofs):
            yield self._violation(
                "ONEOF_NO_DELETE",
                self._member_path(name, oneof),
                f"oneof {oneof}",
                "",
                f"The oneof {oneof} of {name} was deleted.",
                *here,
            )
        old_required = _required(old, self.old)
        new_required = _required(new, self.new)
        for number in sorted(old_required.keys() ^ new_required.keys()):
            before, after = old_required.get(number, ""), new_required.get(number, "")
            change = "is no longer" if before else "became"
            yield self._violation(
                "MESSAGE_SAME_REQUIRED_FIELDS",
                name,
                before,
                after,
                f"Field {number} of {name} {change} required; messages "
                "written by one side fail to parse on the other.",
                *here,
            )
        old_json, new_json = (
            _json_format(old.file, old.features),
            _json_format(new.file, new.features),
        )
        if old_json != new_json:
            yield self._violation(
                "MESSAGE_SAME_JSON_FORMAT",
                name,
                f"json_format = {old_json}",
                f"json_format = {new_json}",
                f"The message {name} changed its JSON support.",
                *here,
            )
        if (
            not old.proto.options.no_standard_descriptor_accessor
            and new.proto.options.no_standard_descriptor_accessor
        ):
            yield self._violation(
                "MESSAGE_NO_REMOVE_STANDARD_DESCRIPTOR_ACCESSOR",
                name,
                "no_standard_descriptor_accessor = false",
                "no_standard_descriptor_accessor = true",
                f"The message {name} no longer has the standard descriptor accessor.",
                *here,
            )

    def _field_deleted(
        self, old: _Message, new: _Message, f: _Field, path: str
    ) -> Iterator[tuple[Violation, str]]:
        old_text = _declaration(old.file, f, self.old.shape(old.file, old.features, f))
        here = (new.file, new.source, old.file.package)
        what = f"Field {f.name} = {f.number} of {old.name} was deleted"
        number_reserved = _covered(
            f.number, f.number + 1, _merge(new.proto.reserved_range, inclusive=False)
        )
        name_reserved = f.name in new.proto.reserved_name
        reserved = ", ".join(
            ([str(f.number)] if number_reserved else [])
            + ([f'"{f.name}"'] if name_reserved else [])
        )
        reserved_text = f"reserved {reserved}" if reserved else ""
        yield self._violation(
            "FIELD_NO_DELETE",
            path,
            old_text,
            reserved_text,
            f"{what}; deprecate it instead, generated code refers to it.",
            *here,
        )
        if not number_reserved:
            yield self._violation(
                "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED",
                path,
                old_text,
                reserved_text,
                f"{what} without reserving {f.number}; the wire format "
                "identifies fields by number.",
                *here,
            )
        if not name_reserved:
            yield self._violation(
                "FIELD_NO_DELETE_UNLESS_NAME_RESERVED",
                path,
                old_text,
                reserved_text,
                f'{what} without reserving "{f.name}"; proto3 JSON identifies fields by name.',
                *here,
            )

    def _field_pair(
        self,
        old: _Field,
        new: _Field,
        old_features: tuple[FeatureSet, ...],
        new_features: tuple[FeatureSet, ...],
        old_file: FileDescriptorProto,
        new_file: FileDescriptorProto,
        source: tuple[int, ...],
        path: str,
        owner: str,
        *,
        extension: bool = False,
        old_owner: _Message | None = None,
        new_owner: _Message | None = None,
    ) -> Iterator[tuple[Violation, str]]:
        where = f"field {old.number} of {owner}" if not extension else f"extension {owner}"
        here = (new_file, source, old_file.package)
        field_features = (*old_features, old.options.features)
        new_field_features = (*new_features, new.options.features)
        old_shape = self.old.shape(old_file, old_features, old, extension=extension)
        new_shape = self.new.shape(new_file, new_features, new, extension=extension)
        old_text = _declaration(old_file, old, old_shape)
        new_text = _declaration(new_file, new, new_shape)
        if old.name != new.name:
            yield self._violation(
                "FIELD_SAME_NAME",
                path,
                old_text,
                new_text,
                f"The name of {where} changed from {old.name} to {new.name};"
                " JSON written with field names would no longer parse.",
                *here,
            )
        if _json_name(old) != _json_name(new):
            yield self._violation(
                "FIELD_SAME_JSON_NAME",
                path,
                f'{old_text} [json_name = "{_json_name(old)}"]',
                f'{new_text} [json_name = "{_json_name(new)}"]',
                f"The JSON name of {where} changed from {_json_name(old)} to "
                f"{_json_name(new)}; JSON events written earlier would no "
                "longer parse.",
                *here,
            )
        yield from self._cardinality(where, path, old_shape, new_shape, old_text, new_text, here)
        yield from self._type(where, path, old_shape, new_shape, old_text, new_text, here)
        if old_owner is not None and new_owner is not None:
            old_oneof, new_oneof = _oneof(old_owner.proto, old), _oneof(new_owner.proto, new)
            if old_oneof != new_oneof:
                yield self._violation(
                    "FIELD_SAME_ONEOF",
                    path,
                    _in_oneof(old_text, old_oneof),
                    _in_oneof(new_text, new_oneof),
                    f"{_upper_first(where)} moved from "
                    f"{_oneof_words(old_oneof)} to {_oneof_words(new_oneof)}; "
                    "which fields may be set together would change.",
                    *here,
                )
        if old_shape.scalar == new_shape.scalar and old_shape.cardinality not in (
            "repeated",
            "map",
        ):
            before = _default(old, old_shape, self.old)
            after = _default(new, new_shape, self.new)
            if before != after:
                yield self._violation(
                    "FIELD_SAME_DEFAULT",
                    path,
                    f"{old_text} [default = {before}]",
                    f"{new_text} [default = {after}]",
                    f"The default of {where} changed; an unset field reads "
                    "differently on either side.",
                    *here,
                )
        if old.options.jstype != new.options.jstype:
            names = FieldOptions.JSType.Name
            yield self._violation(
                "FIELD_SAME_JSTYPE",
                path,
                f"{old_text} [jstype = {names(old.options.jstype)}]",
                f"{new_text} [jstype = {names(new.options.jstype)}]",
                f"The jstype of {where} changed.",
                *here,
            )
        if (
            old_shape.scalar in ("string", "bytes")
            and old_shape.scalar == new_shape.scalar
            and old.options.ctype != new.options.ctype
        ):
            names = FieldOptions.CType.Name
            yield self._violation(
                "FIELD_SAME_CPP_STRING_TYPE",
                path,
                f"{old_text} [ctype = {names(old.options.ctype)}]",
                f"{new_text} [ctype = {names(new.options.ctype)}]",
                f"The C++ string type of {where} changed.",
                *here,
            )
        if old_shape.scalar == "string" and new_shape.scalar == "string":
            before = _utf8(old_file, field_features)
            after = _utf8(new_file, new_field_features)
            if before != after:
                yield self._violation(
                    "FIELD_SAME_UTF8_VALIDATION",
                    path,
                    f"{old_text} [utf8_validation = {before}]",
                    f"{new_text} [utf8_validation = {after}]",
                    f"The UTF-8 validation of {where} changed.",
                    *here,
                )
            if "editions" not in (old_file.syntax, new_file.syntax):
                before_java = old_file.options.java_string_check_utf8
                after_java = new_file.options.java_string_check_utf8
                if before_java != after_java:
                    yield self._violation(
                        "FIELD_SAME_JAVA_UTF8_VALIDATION",
                        path,
                        f"{old_text} [java_string_check_utf8 = {_option_text(before_java)}]",
                        f"{new_text} [java_string_check_utf8 = {_option_text(after_java)}]",
                        f"The Java UTF-8 validation of {where} changed.",
                        *here,
                    )

    def _cardinality(
        self,
        where: str,
        path: str,
        old: _Shape,
        new: _Shape,
        old_text: str,
        new_text: str,
        here: tuple,
    ) -> Iterator[tuple[Violation, str]]:
        if old.cardinality == new.cardinality:
            return
        message = (
            f"{_upper_first(where)} changed from {_CARDINALITY_WORDS[old.cardinality]} to "
            f"{_CARDINALITY_WORDS[new.cardinality]}."
        )
        yield self._violation("FIELD_SAME_CARDINALITY", path, old_text, new_text, message, *here)
        presence_only = {old.cardinality, new.cardinality} <= {"optional", "implicit"}
        if not presence_only:
            yield self._violation(
                "FIELD_WIRE_JSON_COMPATIBLE_CARDINALITY",
                path,
                old_text,
                new_text,
                message + " Its JSON encoding changes.",
                *here,
            )
        if not presence_only and {old.cardinality, new.cardinality} != {"repeated", "map"}:
            yield self._violation(
                "FIELD_WIRE_COMPATIBLE_CARDINALITY",
                path,
                old_text,
                new_text,
                message + " Its wire encoding changes.",
                *here,
            )

    def _type(
        self,
        where: str,
        path: str,
        old: _Shape,
        new: _Shape,
        old_text: str,
        new_text: str,
        here: tuple,
    ) -> Iterator[tuple[Violation, str]]:
        if old.type_text == new.type_text and old.scalar == new.scalar:
            return
        message = f"{_upper_first(where)} changed type from {old.type_text} to {new.type_text}."
        if (old.cardinality == "map") != (new.cardinality == "map"):
            # A map against a non-map is reported as a cardinality change; only WIRE, which
            # accepts repeated <-> map, still needs the entry to match the element message.
            if not self._entry_matches(old, new):
                yield self._violation(
                    "FIELD_WIRE_COMPATIBLE_TYPE", path, old_text, new_text, message, *here
                )
            return
        yield self._violation("FIELD_SAME_TYPE", path, old_text, new_text, message, *here)
        if not self._compatible(old, new, _WIRE_JSON_GROUPS, string_to_bytes=False):
            yield self._violation(
                "FIELD_WIRE_JSON_COMPATIBLE_TYPE",
                path,
                old_text,
                new_text,
                message + " Earlier events would not decode to the same values in binary or JSON.",
                *here,
            )
        if not self._compatible(old, new, _WIRE_GROUPS, string_to_bytes=True):
            yield self._violation(
                "FIELD_WIRE_COMPATIBLE_TYPE",
                path,
                old_text,
                new_text,
                message + " Earlier events would not decode to the same values.",
                *here,
            )

    def _compatible(
        self, old: _Shape, new: _Shape, groups: tuple[set[str], ...], *, string_to_bytes: bool
    ) -> bool:
        if old.scalar == "enum" and new.scalar == "enum":
            return self._enum_subset(old.type_name, new.type_name)
        if old.scalar != new.scalar:
            if string_to_bytes and (old.scalar, new.scalar) == ("string", "bytes"):
                return True
            return any(old.scalar in group and new.scalar in group for group in groups)
        # Same kind: messages and groups must name the same type; map keys the same too.
        return old.type_text == new.type_text

    def _enum_subset(self, old_name: str, new_name: str) -> bool:
        old, new = self.old.all_enums.get(old_name), self.new.all_enums.get(new_name)
        if old is None or new is None:
            return old_name == new_name
        if old_name.rsplit(".", 1)[-1] != new_name.rsplit(".", 1)[-1]:
            return False
        values = {(v.name, v.number) for v in new.proto.value}
        return all((v.name, v.number) in values for v in old.proto.value)

    def _entry_matches(self, old: _Shape, new: _Shape) -> bool:
        """repeated Element <-> map<K, V>: the element has the entry's key and value fields."""
        repeated, mapped = (old, new) if new.cardinality == "map" else (new, old)
        if repeated.scalar != "message":
            return False
        image = self.old if repeated is old else self.new
        element = image.all_messages.get(repeated.type_name)
        if element is None:
            return False
        fields = {f.number: f for f in element.proto.field}
        key, value = mapped.type_text.removeprefix("map<").removesuffix(">").split(", ", 1)
        return (
            set(fields) == {1, 2}
            and _type_text(fields[1], element.features) == key
            and _type_text(fields[2], element.features) == value
        )

    # -- enums --------------------------------------------------------------------------

    def _enum(self, old: _Enum, new: _Enum) -> Iterator[tuple[Violation, str]]:
        name, package = old.name, old.file.package
        here = (new.file, new.source, package)
        old_names: dict[int, list[str]] = {}
        for value in old.proto.value:
            old_names.setdefault(value.number, []).append(value.name)
        new_names: dict[int, list[str]] = {}
        new_index: dict[int, int] = {}
        for i, value in enumerate(new.proto.value):
            new_names.setdefault(value.number, []).append(value.name)
            new_index.setdefault(value.number, i)
        reserved = _merge(new.proto.reserved_range, inclusive=True)
        for number, names in old_names.items():
            path = self._member_path(name, names[0])
            old_text = f"{', '.join(names)} = {number}"
            if number not in new_names:
                number_reserved = _covered(number, number + 1, reserved)
                names_reserved = all(n in new.proto.reserved_name for n in names)
                what = f"Value {old_text} of enum {name} was deleted"
                shown = ", ".join(
                    ([str(number)] if number_reserved else [])
                    + [f'"{n}"' for n in names if n in new.proto.reserved_name]
                )
                new_text = f"reserved {shown}" if shown else ""
                yield self._violation(
                    "ENUM_VALUE_NO_DELETE",
                    path,
                    old_text,
                    new_text,
                    f"{what}; deprecate it instead, generated code refers to it.",
                    *here,
                )
                if not number_reserved:
                    yield self._violation(
                        "ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED",
                        path,
                        old_text,
                        new_text,
                        f"{what} without reserving {number}; the wire "
                        "format carries enum values by number.",
                        *here,
                    )
                if not names_reserved:
                    yield self._violation(
                        "ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED",
                        path,
                        old_text,
                        new_text,
                        f"{what} without reserving its name; proto3 JSON "
                        "writes enum values by name.",
                        *here,
                    )
            elif not set(names) <= set(new_names[number]):
                new_text = f"{', '.join(new_names[number])} = {number}"
                yield self._violation(
                    "ENUM_VALUE_SAME_NAME",
                    path,
                    old_text,
                    new_text,
                    f"Value {number} of enum {name} changed name from "
                    f"{', '.join(names)} to {', '.join(new_names[number])};"
                    " proto3 JSON writes enum values by name.",
                    new.file,
                    (*new.source, _ENUM_VALUE, new_index[number]),
                    package,
                )
        yield from self._reserved(
            "RESERVED_ENUM_NO_DELETE", "enum", name, old.proto, new.proto, inclusive=True, here=here
        )
        old_type, new_type = _enum_type(old.file, old.features), _enum_type(new.file, new.features)
        if old_type != new_type:
            yield self._violation(
                "ENUM_SAME_TYPE",
                name,
                f"enum_type = {old_type}",
                f"enum_type = {new_type}",
                f"The enum {name} changed between open and closed.",
                *here,
            )
        old_json, new_json = (
            _json_format(old.file, old.features),
            _json_format(new.file, new.features),
        )
        if old_json != new_json:
            yield self._violation(
                "ENUM_SAME_JSON_FORMAT",
                name,
                f"json_format = {old_json}",
                f"json_format = {new_json}",
                f"The enum {name} changed its JSON support.",
                *here,
            )

    def _reserved(
        self, rule: str, keyword: str, name: str, old, new, *, inclusive: bool, here: tuple
    ) -> Iterator[tuple[Violation, str]]:
        new_ranges = _merge(new.reserved_range, inclusive=inclusive)
        for start, end in _merge(old.reserved_range, inclusive=inclusive):
            if not _covered(start, end, new_ranges):
                text = f"reserved {_range_text(start, end)}"
                yield self._violation(
                    rule,
                    name,
                    text,
                    "",
                    f"The {keyword} {name} no longer reserves "
                    f"{_range_text(start, end)}; deleted numbers could be "
                    "reused.",
                    *here,
                )
        for reserved_name in old.reserved_name:
            if reserved_name not in new.reserved_name:
                yield self._violation(
                    rule,
                    name,
                    f'reserved "{reserved_name}"',
                    "",
                    f'The {keyword} {name} no longer reserves "'
                    f'{reserved_name}"; a deleted name could be reused.',
                    *here,
                )

    # -- services -----------------------------------------------------------------------

    def _service(self, old: _Service, new: _Service) -> Iterator[tuple[Violation, str]]:
        package = old.file.package
        methods = {m.name: (i, m) for i, m in enumerate(new.proto.method)}
        for method in old.proto.method:
            path = f"{old.name}.{method.name}"
            if method.name not in methods:
                yield self._violation(
                    "RPC_NO_DELETE",
                    path,
                    f"rpc {method.name}",
                    "",
                    f"The rpc {path} was deleted.",
                    new.file,
                    new.source,
                    package,
                )
                continue
            index, current = methods[method.name]
            here = (new.file, (*new.source, _SERVICE_METHOD, index), package)
            checks = (
                ("RPC_SAME_REQUEST_TYPE", method.input_type, current.input_type),
                ("RPC_SAME_RESPONSE_TYPE", method.output_type, current.output_type),
                ("RPC_SAME_CLIENT_STREAMING", method.client_streaming, current.client_streaming),
                ("RPC_SAME_SERVER_STREAMING", method.server_streaming, current.server_streaming),
                (
                    "RPC_SAME_IDEMPOTENCY_LEVEL",
                    method.options.idempotency_level,
                    current.options.idempotency_level,
                ),
            )
            for rule, before, after in checks:
                if before != after:
                    yield self._violation(
                        rule,
                        path,
                        f"rpc {method.name}: {before}",
                        f"rpc {method.name}: {after}",
                        f"The rpc {path} changed its signature.",
                        *here,
                    )


# -- descriptor helpers -------------------------------------------------------------------


def _event_paths(image: _Image, event: str) -> dict[str, str]:
    """Type name -> the shortest dotted field path from the event reaching it ("" = event)."""
    paths: dict[str, str] = {event: ""}
    queue = deque([event])
    while queue:
        owner = image.all_messages.get(queue.popleft())
        if owner is None:
            continue
        prefix = paths[owner.name]
        for f in owner.proto.field:
            path = f"{prefix}.{f.name}" if prefix else f.name
            entry = image.map_entry(owner.features, f)
            target = f
            if entry is not None:
                target = {x.number: x for x in entry.proto.field}[2]
            if target.type in (_Field.TYPE_MESSAGE, _Field.TYPE_GROUP, _Field.TYPE_ENUM):
                name = _type_name(target)
                if name not in paths:
                    paths[name] = path
                    if target.type != _Field.TYPE_ENUM:
                        queue.append(name)
    return paths


def _is_map_entry(entry: object) -> bool:
    proto = getattr(entry, "proto", None)
    return isinstance(proto, DescriptorProto) and proto.options.map_entry


def _required(owner: _Message, image: _Image) -> dict[int, str]:
    found = {}
    for f in owner.proto.field:
        shape = image.shape(owner.file, owner.features, f)
        if shape.cardinality == "required":
            found[f.number] = _declaration(owner.file, f, shape)
    return found


def _by_package(image: _Image) -> dict[str, dict[str, set[str]]]:
    packages: dict[str, dict[str, set[str]]] = {}

    def slot(package: str) -> dict[str, set[str]]:
        return packages.setdefault(
            package,
            {"file": set(), "message": set(), "enum": set(), "extension": set(), "service": set()},
        )

    for file in image.files.values():
        slot(file.package)["file"].add(file.name)
    for kind, index in (
        ("message", image.messages),
        ("enum", image.enums),
        ("extension", image.extensions),
        ("service", image.services),
    ):
        for name, entry in index.items():
            if not _is_map_entry(entry):
                slot(entry.file.package)[kind].add(name)
    return packages


def _resolved(features: Iterable[FeatureSet], name: str, default: int) -> int:
    values = [getattr(f, name) for f in features if f.HasField(name)]
    return values[-1] if values else default


def _syntax_text(file: FileDescriptorProto) -> str:
    if file.syntax == "editions":
        return f'edition = "{_edition_number(file)}";'
    return f'syntax = "{file.syntax or "proto2"}";'


def _edition_number(file: FileDescriptorProto) -> str:
    from google.protobuf.descriptor_pb2 import Edition

    return Edition.Name(file.edition).removeprefix("EDITION_")


def _option_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def _json_format(file: FileDescriptorProto, features: tuple[FeatureSet, ...]) -> str:
    if file.syntax == "editions":
        value = _resolved(features, "json_format", FeatureSet.ALLOW)
    else:
        value = FeatureSet.ALLOW if file.syntax == "proto3" else FeatureSet.LEGACY_BEST_EFFORT
    return FeatureSet.JsonFormat.Name(value)


def _enum_type(file: FileDescriptorProto, features: tuple[FeatureSet, ...]) -> str:
    if file.syntax == "editions":
        value = _resolved(features, "enum_type", FeatureSet.OPEN)
    else:
        value = FeatureSet.OPEN if file.syntax == "proto3" else FeatureSet.CLOSED
    return FeatureSet.EnumType.Name(value)


def _utf8(file: FileDescriptorProto, features: tuple[FeatureSet, ...]) -> str:
    if file.syntax == "editions":
        value = _resolved(features, "utf8_validation", FeatureSet.VERIFY)
    else:
        value = FeatureSet.VERIFY if file.syntax == "proto3" else FeatureSet.NONE
    return FeatureSet.Utf8Validation.Name(value)


def _delimited(field_: _Field, features: tuple[FeatureSet, ...]) -> bool:
    if field_.type == _Field.TYPE_GROUP:
        return True
    if field_.type != _Field.TYPE_MESSAGE:
        return False
    chain = (*features, field_.options.features)
    return _resolved(chain, "message_encoding", FeatureSet.LENGTH_PREFIXED) == FeatureSet.DELIMITED


def _scalar(field_: _Field, features: tuple[FeatureSet, ...]) -> str:
    """The field's kind on the wire: a group (proto2 or editions DELIMITED) is not a message."""
    if field_.type in (_Field.TYPE_MESSAGE, _Field.TYPE_GROUP):
        return "group" if _delimited(field_, features) else "message"
    return _Field.Type.Name(field_.type).removeprefix("TYPE_").lower()


def _type_text(field_: _Field, features: tuple[FeatureSet, ...]) -> str:
    scalar = _scalar(field_, features)
    if scalar in ("message", "enum"):
        return _type_name(field_)
    if scalar == "group":
        return f"group {_type_name(field_)}"
    return scalar


def _type_name(field_: _Field) -> str:
    return field_.type_name.lstrip(".")


def _cardinality(
    file: FileDescriptorProto, features: tuple[FeatureSet, ...], field_: _Field, *, extension: bool
) -> str:
    if field_.label == _Field.LABEL_REPEATED:
        return "repeated"
    # Oneof members, extensions and message fields always track presence, whatever the
    # syntax or the file's default presence says.
    if extension or (field_.HasField("oneof_index") and not field_.proto3_optional):
        return "optional"
    if field_.type in (_Field.TYPE_MESSAGE, _Field.TYPE_GROUP):
        return "optional"
    if file.syntax == "proto3":
        return "optional" if field_.proto3_optional else "implicit"
    if file.syntax == "editions":
        chain = (*features, field_.options.features)
        presence = _resolved(chain, "field_presence", FeatureSet.EXPLICIT)
        if presence == FeatureSet.IMPLICIT:
            return "implicit"
        return "required" if presence == FeatureSet.LEGACY_REQUIRED else "optional"
    return "required" if field_.label == _Field.LABEL_REQUIRED else "optional"


def _default(field_: _Field, shape: _Shape, image: _Image) -> str:
    if shape.scalar in ("message", "group"):
        return ""
    if field_.HasField("default_value"):
        value = field_.default_value
    elif shape.scalar == "enum":
        enum = image.all_enums.get(shape.type_name)
        value = enum.proto.value[0].name if enum is not None and enum.proto.value else ""
    else:
        value = _ZERO_DEFAULTS.get(shape.scalar, "0")
    if shape.scalar not in ("string", "bytes", "enum", "bool"):
        try:
            return repr(float(value))
        except ValueError:
            return value
    return value


def _declaration(file: FileDescriptorProto, field_: _Field, shape: _Shape) -> str:
    """Render the field roughly as it reads in a .proto file, e.g. ``uint32 attempt = 1``."""
    if shape.cardinality == "map":
        return f"{shape.type_text} {field_.name} = {field_.number}"
    if field_.label == _Field.LABEL_REPEATED:
        label = "repeated "
    elif field_.label == _Field.LABEL_REQUIRED:
        label = "required "
    elif field_.proto3_optional or file.syntax in ("", "proto2"):
        label = "optional "
    else:
        label = ""
    text = f"{label}{shape.type_text} {field_.name} = {field_.number}"
    if file.syntax == "editions" and field_.label != _Field.LABEL_REPEATED:
        options = [f"features.field_presence = {_EDITION_PRESENCE[shape.cardinality]}"]
        if shape.scalar == "group":
            options.append("features.message_encoding = DELIMITED")
        text += f" [{', '.join(options)}]"
    return text


def _json_name(field_: _Field) -> str:
    if field_.HasField("json_name"):
        return field_.json_name
    # Same derivation as protoc's ToJsonName, for descriptor sets built without protoc.
    parts = field_.name.split("_")
    return parts[0] + "".join(part[:1].upper() + part[1:] for part in parts[1:])


def _real_oneofs(message: DescriptorProto) -> set[str]:
    return {
        message.oneof_decl[f.oneof_index].name
        for f in message.field
        if f.HasField("oneof_index") and not f.proto3_optional
    }


def _oneof(message: DescriptorProto, field_: _Field) -> str | None:
    if not field_.HasField("oneof_index") or field_.proto3_optional:
        return None
    return message.oneof_decl[field_.oneof_index].name


def _merge(ranges: Iterable, *, inclusive: bool) -> list[tuple[int, int]]:
    """Ranges as sorted, merged half-open [start, end) pairs (enum ranges include their end)."""
    spans = sorted((r.start, r.end + 1 if inclusive else r.end) for r in ranges)
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _covered(start: int, end: int, merged: list[tuple[int, int]]) -> bool:
    return any(low <= start and end <= high for low, high in merged)


def _range_text(start: int, end: int) -> str:
    return str(start) if end == start + 1 else f"{start} to {end - 1}"


def _in_oneof(text: str, oneof: str | None) -> str:
    return f"{text} in oneof {oneof}" if oneof else text


def _oneof_words(oneof: str | None) -> str:
    return f"oneof {oneof}" if oneof else "outside any oneof"


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _event_replaced(old_name: str, new_name: str, new_image: _Image) -> Violation:
    if new_name in new_image.all_messages and new_name != old_name:
        return Violation(
            EVENT_MESSAGE_RULE,
            old_name,
            f"message {old_name}",
            f"message {new_name}",
            f"The event message changed from {old_name} to {new_name}; events written "
            "earlier could not be read as the new message.",
        )
    return Violation(
        EVENT_MESSAGE_RULE,
        old_name,
        f"message {old_name}",
        "",
        f"The event message {old_name} no longer exists in the new schema.",
    )


def _key(violation: Violation) -> tuple[str, str, str, str]:
    return violation.rule, violation.path, violation.old, violation.new


def _unique(violations: Iterable[Violation]) -> list[Violation]:
    found: dict[tuple[str, str, str, str], Violation] = {}
    for violation in violations:
        found.setdefault(_key(violation), violation)
    return list(found.values())


def _sorted(violations: Iterable[Violation]) -> list[Violation]:
    return sorted(violations, key=lambda violation: (violation.path, violation.rule))

"""buf's breaking-change rules with their categories, and the rule set a schema is checked with."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

FILE, PACKAGE, WIRE_JSON, WIRE = "FILE", "PACKAGE", "WIRE_JSON", "WIRE"
CATEGORIES = (FILE, PACKAGE, WIRE_JSON, WIRE)
DEFAULT_CATEGORY = WIRE_JSON

_FP = frozenset({FILE, PACKAGE})
_FPJ = frozenset({FILE, PACKAGE, WIRE_JSON})
_ALL = frozenset(CATEGORIES)

_FILE_OPTION_RULES = (
    "FILE_SAME_CC_ENABLE_ARENAS",
    "FILE_SAME_CC_GENERIC_SERVICES",
    "FILE_SAME_CSHARP_NAMESPACE",
    "FILE_SAME_GO_PACKAGE",
    "FILE_SAME_JAVA_GENERIC_SERVICES",
    "FILE_SAME_JAVA_MULTIPLE_FILES",
    "FILE_SAME_JAVA_OUTER_CLASSNAME",
    "FILE_SAME_JAVA_PACKAGE",
    "FILE_SAME_OBJC_CLASS_PREFIX",
    "FILE_SAME_OPTIMIZE_FOR",
    "FILE_SAME_PHP_CLASS_PREFIX",
    "FILE_SAME_PHP_METADATA_NAMESPACE",
    "FILE_SAME_PHP_NAMESPACE",
    "FILE_SAME_PY_GENERIC_SERVICES",
    "FILE_SAME_RUBY_PACKAGE",
    "FILE_SAME_SWIFT_PREFIX",
)

# buf v2's built-in breaking rules and the categories each belongs to, as ``buf config
# ls-breaking-rules --version v2`` lists them (CSR, a registry-side category, left out).
RULES: Mapping[str, frozenset[str]] = {
    "ENUM_NO_DELETE": frozenset({FILE}),
    "ENUM_SAME_JSON_FORMAT": _FPJ,
    "ENUM_SAME_TYPE": _FP,
    "ENUM_VALUE_NO_DELETE": _FP,
    "ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED": frozenset({WIRE_JSON}),
    "ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED": frozenset({WIRE_JSON, WIRE}),
    "ENUM_VALUE_SAME_NAME": _FPJ,
    "EXTENSION_MESSAGE_NO_DELETE": _FP,
    "EXTENSION_NO_DELETE": frozenset({FILE}),
    "FIELD_NO_DELETE": _FP,
    "FIELD_NO_DELETE_UNLESS_NAME_RESERVED": frozenset({WIRE_JSON}),
    "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED": frozenset({WIRE_JSON, WIRE}),
    "FIELD_SAME_CARDINALITY": _FP,
    "FIELD_SAME_CPP_STRING_TYPE": _FP,
    "FIELD_SAME_DEFAULT": _ALL,
    "FIELD_SAME_JAVA_UTF8_VALIDATION": _FP,
    "FIELD_SAME_JSON_NAME": _FPJ,
    "FIELD_SAME_JSTYPE": _FP,
    "FIELD_SAME_NAME": _FPJ,
    "FIELD_SAME_ONEOF": _ALL,
    "FIELD_SAME_TYPE": _FP,
    "FIELD_SAME_UTF8_VALIDATION": _FP,
    "FIELD_WIRE_COMPATIBLE_CARDINALITY": frozenset({WIRE}),
    "FIELD_WIRE_COMPATIBLE_TYPE": frozenset({WIRE}),
    "FIELD_WIRE_JSON_COMPATIBLE_CARDINALITY": frozenset({WIRE_JSON}),
    "FIELD_WIRE_JSON_COMPATIBLE_TYPE": frozenset({WIRE_JSON}),
    "FILE_NO_DELETE": frozenset({FILE}),
    **dict.fromkeys(_FILE_OPTION_RULES, _FP),
    "FILE_SAME_PACKAGE": _ALL,
    "FILE_SAME_SYNTAX": _FP,
    "MESSAGE_NO_DELETE": frozenset({FILE}),
    "MESSAGE_NO_REMOVE_STANDARD_DESCRIPTOR_ACCESSOR": _FP,
    "MESSAGE_SAME_JSON_FORMAT": _FPJ,
    "MESSAGE_SAME_REQUIRED_FIELDS": _ALL,
    "ONEOF_NO_DELETE": _FP,
    "PACKAGE_ENUM_NO_DELETE": frozenset({PACKAGE}),
    "PACKAGE_EXTENSION_NO_DELETE": frozenset({PACKAGE}),
    "PACKAGE_MESSAGE_NO_DELETE": frozenset({PACKAGE}),
    "PACKAGE_NO_DELETE": frozenset({PACKAGE}),
    "PACKAGE_SERVICE_NO_DELETE": frozenset({PACKAGE}),
    "RESERVED_ENUM_NO_DELETE": _ALL,
    "RESERVED_MESSAGE_NO_DELETE": _ALL,
    "RPC_NO_DELETE": _FP,
    "RPC_SAME_CLIENT_STREAMING": _ALL,
    "RPC_SAME_IDEMPOTENCY_LEVEL": _ALL,
    "RPC_SAME_REQUEST_TYPE": _ALL,
    "RPC_SAME_RESPONSE_TYPE": _ALL,
    "RPC_SAME_SERVER_STREAMING": _ALL,
    "SERVICE_NO_DELETE": frozenset({FILE}),
}

# The platform's one addition to every category: the event message itself may not go
# away (buf's FILE rule id), because ingest decodes every stored revision's events as it.
EVENT_MESSAGE_RULE = "MESSAGE_NO_DELETE"

# buf's unstable package versions: v1alpha1, v1beta2, v1test, v1p1beta1, ...
_UNSTABLE_VERSION = re.compile(r"^v\d+(?:p\d+)?(?:alpha\d*|beta\d*|test\w*)$")


def rules_in(category: str) -> frozenset[str]:
    """Every rule id buf puts in ``category``."""
    return frozenset(rule for rule, categories in RULES.items() if category in categories)


def is_unstable_package(package: str) -> bool:
    """True when the last component of ``package`` is an alpha, beta or test version."""
    return bool(package) and bool(_UNSTABLE_VERSION.match(package.rsplit(".", 1)[-1]))


def _under(file: str, paths: tuple[str, ...]) -> bool:
    return any(file == p or file.startswith(p.rstrip("/") + "/") for p in paths)


@dataclass(frozen=True)
class RuleSet:
    """Which rules apply, like the ``breaking`` section of a buf.yaml.

    ``use`` names categories or rule ids; ``ignore`` file paths or directories where no
    rule applies; ``ignore_only`` maps a rule id or category to the paths where it does
    not apply; ``ignore_unstable_packages`` skips files of alpha/beta/test packages.
    """

    use: tuple[str, ...] = (DEFAULT_CATEGORY,)
    ignore: tuple[str, ...] = ()
    ignore_only: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ignore_unstable_packages: bool = False

    def __post_init__(self) -> None:
        known = set(RULES) | set(CATEGORIES)
        unknown = sorted({*self.use, *self.ignore_only} - known)
        if unknown:
            raise ValueError(f"unknown breaking rules or categories: {', '.join(unknown)}")
        if not self.use:
            raise ValueError("a rule set uses at least one category or rule")

    @property
    def rules(self) -> frozenset[str]:
        """The rule ids this set checks."""
        chosen: set[str] = set()
        for name in self.use:
            chosen |= rules_in(name) if name in CATEGORIES else {name}
        return frozenset(chosen)

    def ignores(self, rule: str, file: str, package: str) -> bool:
        """Return True if a ``rule`` violation found in ``file`` (of ``package``) is ignored."""
        if rule not in self.rules:
            return True
        if self.ignore_unstable_packages and is_unstable_package(package):
            return True
        if file and _under(file, self.ignore):
            return True
        for name, paths in self.ignore_only.items():
            applies = rule == name or (name in CATEGORIES and name in RULES[rule])
            if applies and file and _under(file, tuple(paths)):
                return True
        return False

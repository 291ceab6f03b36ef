"""Schema compatibility: buf's breaking-change rules over descriptor sets (no Django)."""

from .engine import Violation, check_against_history, check_compatibility
from .rules import (
    CATEGORIES,
    DEFAULT_CATEGORY,
    EVENT_MESSAGE_RULE,
    RULES,
    RuleSet,
    is_unstable_package,
    rules_in,
)

__all__ = [
    "CATEGORIES",
    "DEFAULT_CATEGORY",
    "EVENT_MESSAGE_RULE",
    "RULES",
    "RuleSet",
    "Violation",
    "check_against_history",
    "check_compatibility",
    "is_unstable_package",
    "rules_in",
]

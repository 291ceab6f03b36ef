"""Content scanners: find personal data and secrets inside free text and redact it at ingest.

A package of topics; this module only re-exports: ``types`` (rules and findings),
``validators`` (Luhn, IBAN, addresses, credentials), ``builtin`` (the built-in rules),
``compiled`` (a compiled scanner's parts), ``gate`` (which rules can match a text),
``scan`` (compile and scan, with a per-value cost bound) and ``safety`` (refusing custom
patterns that could backtrack).
"""

from .builtin import BUILTIN_RULES, DEFAULT_SENSITIVE_KEY_PATTERN
from .compiled import CompiledScanner
from .safety import validate_custom_pattern
from .scan import (
    MAX_CANDIDATES_PER_TEXT,
    scan_findings,
    scan_text,
    scanner_compile,
    sensitive_key_matcher,
)
from .types import ACTIONS, SECRET_GROUP, Finding, ScanAction, ScannerRule
from .validators import IBAN_LENGTHS, iban_valid, luhn_valid

__all__ = [
    "ACTIONS",
    "BUILTIN_RULES",
    "DEFAULT_SENSITIVE_KEY_PATTERN",
    "IBAN_LENGTHS",
    "MAX_CANDIDATES_PER_TEXT",
    "SECRET_GROUP",
    "CompiledScanner",
    "Finding",
    "ScanAction",
    "ScannerRule",
    "iban_valid",
    "luhn_valid",
    "scan_findings",
    "scan_text",
    "scanner_compile",
    "sensitive_key_matcher",
    "validate_custom_pattern",
]

"""Redaction preview: a sample event before and after the policies, computed in memory."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from telemetry_platform.conf import telemetry_settings

from ..defaults import default_scanner_rules
from ..descriptors import validate_json
from ..models import ScannerRule, SchemaRevision
from ..redaction import PolicySpec, redact_message, redaction_plan_compile
from ..scanners import ScannerRule as ScanRule
from ..scanners import scanner_compile, sensitive_key_matcher
from ..schemas import load_schema
from ..selectors import field_policy_specs

CANDIDATE_NAME = "candidate"


@dataclass(frozen=True)
class PreviewResult:
    before: str
    after: str
    redactions: list[tuple[str, str]]
    error: str = ""


def redaction_preview(
    *,
    revision: SchemaRevision,
    sample: dict[str, Any],
    candidate_pattern: str = "",
    candidate_action: str = "replace",
    policies: Mapping[str, PolicySpec] | None = None,
) -> PreviewResult:
    """Validate ``sample`` against the revision and redact it; nothing is stored or logged.

    ``policies`` replaces the revision's field policies (a proposed change's preview).
    """
    compiled = load_schema(bytes(revision.descriptor_set), revision.message_name)
    before = json.dumps(sample, indent=2, sort_keys=True)
    message, issue = validate_json(compiled.descriptor, compiled.message_class, sample)
    if issue is not None:
        where = f" at {issue.field}" if issue.field else ""
        return PreviewResult(before, "", [], f"{issue.code}{where}: {issue.message}")
    rules = [*default_scanner_rules()]
    rules.extend(
        ScanRule(
            name=r.name,
            pattern=r.pattern,
            action=r.action,
            replacement=r.replacement,
            keep_chars=r.keep_chars,
        )
        for r in ScannerRule.objects.filter(enabled=True)
    )
    if candidate_pattern:
        rules.append(
            ScanRule(name=CANDIDATE_NAME, pattern=candidate_pattern, action=candidate_action)
        )
    key_id = telemetry_settings.HASH_KEY_ID
    key = telemetry_settings.HASH_KEYS[key_id]
    plan = redaction_plan_compile(
        compiled.descriptor,
        field_policy_specs(revision) if policies is None else policies,
        key_id=key_id,
        key=key,
        scanner=scanner_compile(rules, key_id=key_id, key=key),
        sensitive_key=sensitive_key_matcher(telemetry_settings.SENSITIVE_KEY_PATTERN),
        unclassified=telemetry_settings.UNCLASSIFIED_FIELDS,
        unhashed_pseudonym=telemetry_settings.UNHASHED_PSEUDONYM,
    )
    outcome = redact_message(plan, message)
    if outcome.rejection is not None:
        rejection = outcome.rejection
        return PreviewResult(
            before,
            "",
            outcome.redactions,
            f"{rejection.code} at {rejection.field}: {rejection.message}",
        )
    after = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return PreviewResult(before, json.dumps(after, indent=2, sort_keys=True), outcome.redactions)

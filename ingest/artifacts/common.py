"""What every artifact lane shares: parsed items, per-item answers, deterministic ids."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingest.pipeline import BatchError, RawItem


class ArtifactCode:
    """Codes of artifact-level problems (item rejections before the pipeline)."""

    MALFORMED_JSON = "malformed_json"
    INVALID_ENCODING = "invalid_encoding"
    NOT_AN_OBJECT = "body_not_an_object"
    MISSING_FIELD = "missing_field"
    INVALID_TIMESTAMP = "invalid_timestamp"
    MISSING_VALUE = "missing_value"
    NOT_NUMERIC = "not_numeric"
    NEGATIVE_COUNTER = "negative_counter"
    UNKNOWN_BUDGET = "unknown_budget"
    AMBIGUOUS_BUDGET = "ambiguous_budget"
    INVALID_BUDGET = "invalid_budget"
    UNKNOWN_SCHEMA = "unknown_schema"
    EMPTY_ARTIFACT = "empty_artifact"
    INVALID_VALUE = "invalid_value"


class ArtifactError(BatchError):
    """The artifact as a whole cannot be used (answered 400; nothing of it is stored)."""


@dataclass(frozen=True)
class ArtifactItem:
    """One event made from an artifact, and where in the artifact it came from."""

    ref: str
    item: RawItem
    line: int | None = None


@dataclass(frozen=True)
class ItemRejection:
    """A part of an artifact refused before the pipeline (e.g. a non-numeric value)."""

    ref: str
    code: str
    message: str
    line: int | None = None


@dataclass
class ParsedArtifact:
    """An artifact turned into pipeline items and refused parts, in artifact order."""

    entries: list[ArtifactItem | ItemRejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def items(self) -> list[ArtifactItem]:
        return [entry for entry in self.entries if isinstance(entry, ArtifactItem)]

    @property
    def rejections(self) -> list[ItemRejection]:
        return [entry for entry in self.entries if isinstance(entry, ItemRejection)]


@dataclass
class ItemResult:
    ref: str
    status: str
    line: int | None = None
    event_id: str = ""
    code: str = ""
    field: str = ""
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ref": self.ref, "status": self.status}
        if self.line is not None:
            data["line"] = self.line
        if self.event_id:
            data["event_id"] = self.event_id
        if self.status == "rejected":
            data.update(code=self.code, field=self.field, message=self.message)
        return data


@dataclass
class ArtifactReport:
    """The answer for one artifact: totals, one result per item (in artifact order)."""

    kind: str
    results: list[ItemResult]
    warnings: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def totals(self) -> dict[str, int]:
        counts = {"received": len(self.results), "accepted": 0, "duplicate": 0, "rejected": 0}
        for result in self.results:
            counts[result.status] += 1
        return counts

    @property
    def rejected(self) -> list[ItemResult]:
        return [result for result in self.results if result.status == "rejected"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            **self.facts,
            **self.totals(),
            "results": [result.as_dict() for result in self.results],
            "warnings": self.warnings,
        }


def deterministic_event_id(*parts: str) -> str:
    """``sha256:`` of the parts, so the same artifact item always gets the same event id."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"sha256:{digest}"


def json_document(content: bytes) -> Any:
    """Parse a whole JSON artifact; a truncated or broken file refuses the artifact (400)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ArtifactError(ArtifactCode.INVALID_ENCODING, "artifact is not UTF-8") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise ArtifactError(
            ArtifactCode.MALFORMED_JSON,
            f"artifact is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}",
        ) from None
    except (RecursionError, ValueError):
        raise ArtifactError(
            ArtifactCode.MALFORMED_JSON, "artifact is not valid JSON (NaN, Infinity or too deep)"
        ) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def number_or_none(value: Any) -> float | None:
    """The value as a finite float if it is a JSON number (not a boolean), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def describe_non_number(value: Any) -> tuple[str, str]:
    """The rejection code and message for a value that should have been a number."""
    if value is None:
        return ArtifactCode.MISSING_VALUE, "value is null"
    kind = {bool: "a boolean", str: "a string", list: "a list", dict: "an object"}.get(
        type(value), "not a finite number"
    )
    return ArtifactCode.NOT_NUMERIC, f"value is {kind}, not a number"


def parse_timestamp(value: Any, *, field_name: str) -> datetime:
    """An ISO 8601 timestamp (basic ``20260222T181254Z`` or extended form); naive means UTC."""
    if not isinstance(value, str) or not value.strip():
        raise ArtifactError(
            ArtifactCode.MISSING_FIELD if value in (None, "") else ArtifactCode.INVALID_TIMESTAMP,
            f"'{field_name}' must be an ISO 8601 timestamp",
            field=field_name,
        )
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ArtifactError(
            ArtifactCode.INVALID_TIMESTAMP,
            f"'{field_name}' is not an ISO 8601 timestamp",
            field=field_name,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def rfc3339(moment: datetime) -> str:
    """The proto3 JSON form of a Timestamp."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")

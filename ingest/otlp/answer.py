"""The OTLP answer of a mapped request: how many records were rejected, and why. Pure.

``error_message`` names each rejected record's path in the request, the code and the
field path, never a value: ``resourceLogs[0].scopeLogs[0].logRecords[3]: missing_field
at occurred_at``. The first MAX_LISTED are listed, then how many more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..pipeline import BatchResult, RawItem, Rejection

MAX_LISTED = 10


@dataclass(frozen=True)
class OtlpOutcome:
    """What became of a request's records: how many were rejected, and the message."""

    received: int
    rejected: int
    error_message: str


def outcome_of(
    mapped: Sequence[tuple[str, RawItem | Rejection]], result: BatchResult | None
) -> OtlpOutcome:
    """Fold the mapping's rejections and the pipeline's answers (for the raw items, in
    order) into one outcome; duplicates count as accepted (a retried export)."""
    answers = iter(result.results if result is not None else ())
    reasons: list[str] = []
    rejected_paths: set[str] = set()
    for path, item in mapped:
        if isinstance(item, Rejection):
            code, field = item.code, item.field
        else:
            answer = next(answers)
            if answer.status != "rejected":
                continue
            code, field = answer.code, answer.field
        if path in rejected_paths:
            continue  # one histogram point, several samples: one reason
        rejected_paths.add(path)
        reasons.append(f"{path}: {code}" + (f" at {field}" if field else ""))
    listed = "; ".join(reasons[:MAX_LISTED])
    if len(reasons) > MAX_LISTED:
        listed += f"; and {len(reasons) - MAX_LISTED} more"
    received = len({path for path, _ in mapped})
    message = f"{len(reasons)} of {received} rejected: {listed}" if reasons else ""
    return OtlpOutcome(received=received, rejected=len(reasons), error_message=message)

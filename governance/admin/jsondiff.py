"""A compact JSON diff for the admin: flattened paths, the changed ones highlighted.

Reviewers compare a stored event with the same event under a proposed policy; side-by-side
JSON blocks made them hunt for the difference. Pure: no models, no request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

ADDED, REMOVED, CHANGED, SAME = "added", "removed", "changed", "same"


@dataclass(frozen=True)
class JsonDiffRow:
    """One leaf path: its value before and after (``None``: absent) and how it changed."""

    path: str
    old: str | None
    new: str | None
    status: str


@dataclass(frozen=True)
class JsonDiff:
    changed: list[JsonDiffRow]
    unchanged: list[JsonDiffRow]


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Leaf paths (``a.b[0].c``) of a JSON value, each leaf as compact JSON text."""
    if isinstance(value, dict) and value:
        out: dict[str, str] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix or "(value)": json.dumps(value, ensure_ascii=False, sort_keys=True)}


def _parse(document: Any) -> Any:
    if isinstance(document, str):
        if not document.strip():
            return None
        try:
            return json.loads(document)
        except ValueError:
            return document
    return document


def json_diff(old: Any, new: Any) -> JsonDiff:
    """Every leaf path of ``old`` and ``new`` (JSON text or values), changed ones first."""
    before = _flatten(_parse(old)) if _parse(old) is not None else {}
    after = _flatten(_parse(new)) if _parse(new) is not None else {}
    changed, unchanged = [], []
    for path in sorted(set(before) | set(after)):
        a, b = before.get(path), after.get(path)
        if a == b:
            unchanged.append(JsonDiffRow(path, a, b, SAME))
        elif a is None:
            changed.append(JsonDiffRow(path, None, b, ADDED))
        elif b is None:
            changed.append(JsonDiffRow(path, a, None, REMOVED))
        else:
            changed.append(JsonDiffRow(path, a, b, CHANGED))
    return JsonDiff(changed, unchanged)

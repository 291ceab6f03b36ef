"""How audit search shows its results: counts that never contradict the rows, and a
summary of each event's attributes with the full-text terms marked (pure helpers)."""

from __future__ import annotations

import re
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Up to this many matches are counted exactly (a LIMIT query, never COUNT(*)); beyond
# it the page shows the planner's estimate as "about N".
EXACT_COUNT_LIMIT = 1000
SUMMARY_CHARS = 160
# The analyst's own searches: recorded, but hidden from the default view.
SEARCH_RECORD_NAME = "platform.audit.searched"


def match_count_text(*, exact: int | None, estimated: int) -> str:
    """ "1 event matches", "30 events match", or "about 12,000 events match"."""
    if exact is not None:
        return f"{exact:,} event{'s' if exact != 1 else ''} match{'es' if exact == 1 else ''}"
    count = max(estimated, EXACT_COUNT_LIMIT + 1)
    return f"about {count:,} events match"


def _terms(query: str) -> list[str]:
    return [term for term in re.findall(r"\w+", query or "") if len(term) > 1]


def _mark(text: str, terms: list[str]) -> str:
    escaped = escape(text)
    if not terms:
        return escaped
    pattern = re.compile("|".join(re.escape(escape(term)) for term in terms), re.IGNORECASE)
    return pattern.sub(lambda found: f"<mark>{found.group(0)}</mark>", escaped)


def attributes_summary(attributes: Any, query: str = "") -> SafeString:
    """``key: value`` pairs of the stored (already redacted) attributes, matching terms
    marked, cut to a line; attributes that matched the text search come first."""
    if not isinstance(attributes, dict) or not attributes:
        return mark_safe("")
    terms = _terms(query)
    lowered = [term.lower() for term in terms]

    def matched(item: tuple[str, Any]) -> bool:
        return any(term in str(item[1]).lower() for term in lowered)

    items = sorted(attributes.items(), key=lambda item: (not matched(item), item[0]))
    parts, used = [], 0
    for key, value in items:
        text = str(value)
        if used + len(key) + len(text) > SUMMARY_CHARS and parts:
            parts.append("…")
            break
        text = text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS] + "…"
        parts.append(f'<span class="attr"><b>{escape(key)}</b>: {_mark(text, terms)}</span>')
        used += len(key) + len(text)
    return mark_safe(" ".join(parts))  # noqa: S308 (every part escaped above)

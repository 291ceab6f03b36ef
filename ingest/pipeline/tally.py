"""Tally a batch's outcomes per (source, schema, status, code, field path, app version) and
hour: the rows the store upserts in the batch's transaction (violation reports, ingest
totals). Pure: counts and names only, never an event's values."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from governance.choices import FieldRole

from .types import IngestContext, PreparedEvent, Rejection

MAX_FIELD_PATH = 200
# A version string is kept only when it looks like one: anything else a client put in the
# field (free text, an e-mail) is not a version, and the tally never holds a value.
VERSION_RE = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6}){0,3}([-+][0-9A-Za-z.]{1,20})?")
_INDEX_RE = re.compile(r"\[[0-9]+\]")

TallyKey = tuple[str, str, str, str, str, str]  # (class, schema, status, code, field, version)


@dataclass(frozen=True, slots=True)
class TallyRow:
    """One counter of the hour: how many events of ``source`` ended so."""

    hour: datetime
    source: str
    event_class: str
    schema_name: str
    status: str
    code: str
    field_path: str
    app_version: str
    count: int

    def key(self) -> tuple:
        """The unique key of the row (upserts are ordered by it to avoid deadlocks)."""
        return (
            self.hour,
            self.source,
            self.event_class,
            self.schema_name,
            self.status,
            self.code,
            self.field_path,
            self.app_version,
        )


@dataclass(frozen=True)
class BatchTally:
    """What prepare decided for a batch: rejections by kind, prepared events per schema."""

    hour: datetime
    source: str
    rejected: tuple[tuple[TallyKey, int], ...]
    prepared: tuple[tuple[tuple[str, str], int], ...]  # ((class, schema), events incl. repeats)

    def rows(self, stored: Sequence[PreparedEvent], inserted: set[tuple]) -> list[TallyRow]:
        """The batch's rows once the store knows which of ``stored`` were new."""
        accepted: Counter = Counter()
        for event in stored:
            if event.key in inserted:
                accepted[(event.event_class, event.schema_name)] += 1
        rows = [TallyRow(self.hour, self.source, *key, count=count) for key, count in self.rejected]
        for (event_class, schema), total in self.prepared:
            new = accepted[(event_class, schema)]
            for status, count in (("accepted", new), ("duplicate", total - new)):
                if count:
                    rows.append(
                        TallyRow(
                            self.hour, self.source, event_class, schema, status, "", "", "", count
                        )
                    )
        return sorted(rows, key=TallyRow.key)


def hour_of(moment: datetime) -> datetime:
    """The start of ``moment``'s hour."""
    return moment.replace(minute=0, second=0, microsecond=0)


def field_path_key(field: str) -> str:
    """A rejection's field path as counted: list indices folded (``items[3]`` -> ``items[]``)."""
    return _INDEX_RE.sub("[]", field)[:MAX_FIELD_PATH]


def app_version_of(plan: Any, body: Any) -> str:
    """The app version a rejected event's body claims, when its schema has that role and the
    value looks like a version; else empty. Reads the raw body (the event did not validate)."""
    roles = getattr(plan, "roles", None)
    if not roles or not isinstance(body, dict):
        return ""
    path = roles.get(FieldRole.APP_VERSION)
    if not path:
        return ""
    value: Any = body
    for part in path.split("."):
        if not isinstance(value, dict):
            return ""
        # proto3 JSON accepts the lowerCamel name as well as the proto name.
        value = value.get(part, value.get(_camel(part)))
    if isinstance(value, str) and len(value) <= 40 and VERSION_RE.fullmatch(value):
        return value
    return ""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def batch_tally(
    context: IngestContext,
    outcomes: Sequence[PreparedEvent | Rejection],
    labels: Sequence[tuple[str, str]],
    versions: Sequence[str],
) -> BatchTally:
    """Tally ``outcomes`` (in batch order, with their metric labels and claimed versions)."""
    rejected: Counter = Counter()
    prepared: Counter = Counter()
    for outcome, (event_class, schema), version in zip(outcomes, labels, versions, strict=True):
        if type(outcome) is Rejection:
            rejected[
                (
                    event_class,
                    schema,
                    "rejected",
                    outcome.code,
                    field_path_key(outcome.field),
                    version,
                )
            ] += 1
        else:
            prepared[(outcome.event_class, outcome.schema_name)] += 1
    return BatchTally(
        hour=hour_of(context.received_at),
        source=context.source[:MAX_FIELD_PATH],
        rejected=tuple(sorted(rejected.items())),
        prepared=tuple(sorted(prepared.items())),
    )

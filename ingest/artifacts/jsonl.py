"""Generic JSONL artifacts (e.g. smoke-test ``events.jsonl``): one event of a schema per line."""

from __future__ import annotations

import json

from ingest.pipeline import RawItem

from .common import ArtifactCode, ArtifactItem, ItemRejection, ParsedArtifact


def jsonl_parse(content: bytes, *, schema: str) -> ParsedArtifact:
    """Turn each non-blank line into an event of ``schema``; refuse bad lines by line number.

    A line that is not UTF-8 or not JSON (a truncated last line, say) is rejected on its
    own; the pipeline then validates the others against the schema.
    """
    parsed = ParsedArtifact()
    for number, raw_line in enumerate(content.splitlines(), start=1):
        if not raw_line.strip():
            continue
        ref = f"line {number}"
        try:
            line = raw_line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            parsed.entries.append(
                ItemRejection(ref, ArtifactCode.INVALID_ENCODING, "line is not UTF-8", number)
            )
            continue
        try:
            body = json.loads(line, parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            parsed.entries.append(
                ItemRejection(
                    ref,
                    ArtifactCode.MALFORMED_JSON,
                    f"line is not valid JSON (column {exc.colno}): {exc.msg}",
                    number,
                )
            )
            continue
        except (RecursionError, ValueError):
            parsed.entries.append(
                ItemRejection(
                    ref,
                    ArtifactCode.MALFORMED_JSON,
                    "line is not valid JSON (NaN or too deep)",
                    number,
                )
            )
            continue
        parsed.entries.append(ArtifactItem(ref, RawItem(schema=schema, body=body), line=number))
    return parsed


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")

"""What audit verification reports: one problem of a chain or of a digest file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class ChainProblem:
    """One thing wrong with a chain (or a digest file), where and of which kind."""

    source: str
    day: date
    seq: int | None
    # altered | reordered | missing | truncated | beyond_head | unknown_chain | head_altered
    # | head_mismatch | deleted_chain | not_in_digest | digest_file
    kind: str
    detail: str

    def __str__(self) -> str:
        where = f" at link {self.seq}" if self.seq is not None else ""
        return f"{self.source} {self.day}{where}: {self.kind} ({self.detail})"



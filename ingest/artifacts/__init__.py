"""Artifact lanes: sign-off artifacts, diagnostics snapshots and JSONL files into the pipeline."""

from .common import ArtifactError, ArtifactReport
from .services import (
    ARTIFACT_KINDS,
    diagnostics_snapshot_ingest,
    jsonl_artifact_ingest,
    perf_signoff_ingest,
)

__all__ = [
    "ARTIFACT_KINDS",
    "ArtifactError",
    "ArtifactReport",
    "diagnostics_snapshot_ingest",
    "jsonl_artifact_ingest",
    "perf_signoff_ingest",
]

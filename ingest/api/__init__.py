"""HTTP API of ingest."""

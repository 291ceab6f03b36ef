"""Ingest: API keys, the event pipeline and the event store."""

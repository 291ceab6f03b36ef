"""HTTP API of audit search."""

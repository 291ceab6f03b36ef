"""HTTP API of governance: the schema registry."""

"""Schemas, field policies and retention: what may be collected and how long it is kept."""

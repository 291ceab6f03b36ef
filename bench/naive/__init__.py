"""Bench-only naive ingest baseline: a DRF ModelSerializer saving rows one by one."""

"""Benchmarks (run as scripts; a package so gunicorn can import bench.naive)."""

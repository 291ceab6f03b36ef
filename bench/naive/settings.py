"""The platform's settings plus the naive baseline route (bench only, never deployed)."""

from telemetry_platform.settings import *  # noqa: F403

ROOT_URLCONF = "bench.naive.urls"

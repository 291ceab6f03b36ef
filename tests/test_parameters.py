"""Every environment variable is declared once: the README's table is the declarations',
values are typed and checked, and settings.py and conf.py read them from there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from telemetry_platform.conf import DEFAULTS, telemetry_settings
from telemetry_platform.parameters import (
    BY_NAME,
    PARAMETERS,
    ParameterError,
    markdown_table,
    read_all,
)

README = Path(__file__).resolve().parents[1] / "README.md"
SOURCES = [
    path
    for directory in ("telemetry_platform", "governance", "ingest", "audit", "scripts")
    for path in (Path(__file__).resolve().parents[1] / directory).rglob("*.py")
] + [Path(__file__).resolve().parents[1] / name for name in ("Procfile", "Makefile")]


def readme_table() -> str:
    text = README.read_text()
    start = text.index("<!-- parameters:start")
    start = text.index("\n", start) + 1
    return text[start : text.index("<!-- parameters:end -->", start)].strip()


def test_the_readme_table_is_the_declarations():
    """The configuration table in the README is exactly what the declarations print."""
    assert readme_table() == markdown_table(), (
        "README's configuration table is out of date: "
        "python -m telemetry_platform.parameters prints the right one"
    )


def test_every_variable_the_code_reads_is_declared():
    """No module reads an environment variable that has no declaration (and README row)."""
    patterns = (
        r"environ\.get\(\s*\"([A-Z][A-Z0-9_]+)\"",
        r"getenv\(\s*\"([A-Z][A-Z0-9_]+)\"",
        r"\$\{([A-Z][A-Z0-9_]+)",
    )
    read = set()
    for path in SOURCES:
        text = path.read_text()
        for pattern in patterns:
            read |= set(re.findall(pattern, text))
    read -= {"DJANGO_SETTINGS_MODULE", "PYTHONWARNINGS"}
    assert read - set(BY_NAME) == set()


def test_every_platform_setting_is_declared_once_with_its_default():
    """conf.py's defaults are the declarations' defaults, and settings.py sets each of them."""
    declared = {p.name.removeprefix("TELEMETRY_") for p in PARAMETERS if p.name.startswith("TELEMETRY_")}
    assert set(DEFAULTS) == declared
    for name in declared:
        assert hasattr(settings, f"TELEMETRY_{name}"), name
    assert DEFAULTS["RETENTION_LIMITS"] == {"audit_event": (90, 3650), "*": (1, 3650)}
    assert telemetry_settings.HASH_KEY_ID == "k1"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be one of"),
        ({"TELEMETRY_PURGE_BATCH_SIZE": "0"}, "TELEMETRY_PURGE_BATCH_SIZE must be at least 1"),
        ({"TELEMETRY_MAX_BODY_BYTES": "5MB"}, "TELEMETRY_MAX_BODY_BYTES must be an integer"),
        ({"TELEMETRY_UNCLASSIFIED_FIELDS": "keep"}, "TELEMETRY_UNCLASSIFIED_FIELDS must be one of"),
        ({"TELEMETRY_HASH_KEYS": "k1"}, "TELEMETRY_HASH_KEYS must be id:secret"),
        ({"TELEMETRY_HASH_KEY_ID": "k9"}, "TELEMETRY_HASH_KEY_ID must name a key"),
        ({"TELEMETRY_RETENTION_LIMITS": '{"audit_event": [90]}'}, "must be a JSON object with"),
        ({"TELEMETRY_RETENTION_LIMITS": '{"*": [30, 7]}'}, "[minimum days, maximum days]"),
        ({"TELEMETRY_PERF_BUDGET_ALIASES": "[1]"}, "must be a JSON object of strings"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL must be"),
    ],
)
def test_bad_values_are_refused_by_name(environ, message):
    """A value a declaration refuses stops start-up with the variable's name, never its value."""
    with pytest.raises(ParameterError) as refused:
        read_all(environ)
    assert message in str(refused.value)
    for value in environ.values():
        if len(value) > 3:
            assert value not in str(refused.value)


def test_values_are_typed():
    """Each variable is parsed to its declared type; empty means the default."""
    values = read_all(
        {
            "DEBUG": "yes",
            "TELEMETRY_RATE_LIMIT_EVENTS_PER_SECOND": "12.5",
            "ALLOWED_HOSTS": "a.example, b.example,",
            "TELEMETRY_HASH_KEYS": "k1:one,k2:two",
            "TELEMETRY_HASH_KEY_ID": "k2",
            "TELEMETRY_MAX_EVENT_BYTES": "",
        }
    )
    assert values["DEBUG"] is True
    assert values["TELEMETRY_RATE_LIMIT_EVENTS_PER_SECOND"] == 12.5
    assert values["ALLOWED_HOSTS"] == ["a.example", "b.example"]
    assert values["TELEMETRY_HASH_KEYS"] == {"k1": "one", "k2": "two"}
    assert values["TELEMETRY_HASH_KEY_ID"] == "k2"
    assert values["TELEMETRY_MAX_EVENT_BYTES"] == 64 * 1024
    assert values["CELERY_RESULT_BACKEND"] == values["CELERY_BROKER_URL"]

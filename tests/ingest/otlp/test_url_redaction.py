"""url.full / url.query keep parameter names, never values (nor user:password@)."""

from __future__ import annotations

import pytest

from ingest.otlp.values import url_parameters_redacted


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://app.test/reset?email=ana.417@corp.test&api_key=sk_5f1e",
            "https://app.test/reset?email=redacted&api_key=redacted",
        ),
        (
            "https://svc:pw28621040x@hooks.example.com/cb",
            "https://redacted@hooks.example.com/cb",
        ),
        (
            "https://app.test/cb#access_token=eyJh.x.y&state=1",
            "https://app.test/cb#access_token=redacted&state=redacted",
        ),
        ("https://app.test/plain/path", "https://app.test/plain/path"),
        ("https://app.test/p?flag", "https://app.test/p?flag"),
    ],
)
def test_url_full_parameter_values_and_userinfo_are_redacted(url, expected):
    assert url_parameters_redacted(url) == expected


def test_a_bare_query_string_is_redacted_whole():
    assert url_parameters_redacted("q=ana@corp.test&page=2", whole_query=True) == (
        "q=redacted&page=redacted"
    )

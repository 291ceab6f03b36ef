"""The README's OTLP section states the rules the code follows (kept true by this test)."""

from __future__ import annotations

from tests.factories import REPO_ROOT


def test_the_readme_documents_the_exact_translation_rules():
    """The README's rule text names each rule the cases above test."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = " ".join(readme[readme.index("**Metric names.**") :][:2000].split())
    for rule in (
        "outside `[a-zA-Z0-9_:]` become `_` (repeats folded",
        "`s` -> `_seconds`",
        "`ms` -> `_milliseconds`",
        "`By` -> `_bytes`",
        "`1/s` -> `_per_second`",
        "`{...}` annotations dropped",
        "`1` on a gauge -> `_ratio`",
        "unless already the suffix",
        "end in `_total`",
        "never doubled",
        "leading digit",
    ):
        assert rule in section, rule

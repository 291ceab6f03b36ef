"""The architecture is a check: import-linter's contracts (pyproject.toml) hold for the
code, and a module that breaks one (a pure engine importing a model) fails `make lint`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("telemetry_platform", "governance", "ingest", "audit", "privacy")
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of the project's packages and contracts, to break without touching the real one."""
    target = tmp_path_factory.mktemp("checkout")
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    return target


def lint_imports(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=directory,
        env={"PYTHONPATH": str(directory), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_contracts_hold():
    """Layers, pure engines, pure pipeline steps and no cycles: every contract is kept."""
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " 0 broken." in result.stdout.split("Contracts:")[-1]


def test_a_pure_engine_importing_a_model_breaks_the_contract(checkout):
    """A throwaway import of a model in the redaction engine is reported, and fails lint."""
    engine = checkout / "governance" / "redaction.py"
    engine.write_text(engine.read_text() + "\nfrom governance.models import Schema  # noqa\n")
    result = lint_imports(checkout)
    assert result.returncode == 1
    assert "governance.redaction -> governance.models" in result.stdout


def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(checkout):
    """Governance importing the event store (ingest) is a layering violation."""
    module = checkout / "governance" / "hashing.py"
    module.write_text(module.read_text() + "\nimport ingest.models  # noqa\n")
    result = lint_imports(checkout)
    assert result.returncode == 1
    assert "governance is not allowed to import ingest" in result.stdout
    assert "governance.hashing -> ingest.models" in result.stdout

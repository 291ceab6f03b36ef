"""A plan directory: one ``<schema>.yaml`` per schema."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .document import PlanDocumentError, TelemetryPlan, plan_yaml_dump, plan_yaml_parse


def plan_file_name(schema: str) -> str:
    """The file a schema's plan is exported to (schema names are file-name safe)."""
    return f"{schema}.yaml"


def plan_directory_read(directory: Path) -> dict[str, TelemetryPlan]:
    """Every plan of the directory by schema; every file's problems at once, or none read."""
    if not directory.is_dir():
        raise PlanDocumentError([f"{directory}: no such directory"])
    plans: dict[str, TelemetryPlan] = {}
    found_in: dict[str, str] = {}
    errors = []
    paths = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not paths:
        errors.append(f"{directory}: no plan files (*.yaml)")
    for path in paths:
        try:
            plan = plan_yaml_parse(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            errors.append(f"{path.name}: not UTF-8 text")
            continue
        except PlanDocumentError as exc:
            errors.extend(f"{path.name}: {problem}" for problem in exc.errors)
            continue
        if plan.schema in plans:
            errors.append(
                f"{path.name}: {plan.schema} is already planned in {found_in[plan.schema]}"
            )
            continue
        plans[plan.schema], found_in[plan.schema] = plan, path.name
    if errors:
        raise PlanDocumentError(errors)
    return plans


def plan_directory_write(directory: Path, plans: Iterable[TelemetryPlan]) -> list[Path]:
    """Write each plan to its file in ``directory`` (created if missing); the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for plan in plans:
        path = directory / plan_file_name(plan.schema)
        path.write_text(plan_yaml_dump(plan), encoding="utf-8")
        written.append(path)
    return written

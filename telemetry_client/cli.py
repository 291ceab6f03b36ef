"""The ``telemetry-client`` command: ``schema-check`` runs the registry's breaking-change check.

``telemetry-client schema-check PATH --name NAME --url URL --key KEY`` sends every .proto
under PATH (a directory: the import root; or one file, named relative to ``--root``) to
``POST URL/api/v1/schemas/NAME/check`` and prints the answer. Exit status: 0 compatible,
1 breaking (violations printed), 2 unusable input (no sources, a compile error, an unknown
schema, a refused key, an unreachable server). ``--format github`` prints GitHub Actions
``::error file=...,line=...`` annotations on the new declarations.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

COMPATIBLE, BREAKING, UNUSABLE = 0, 1, 2
KEY_ENVIRONMENT = "TELEMETRY_SCHEMA_CHECK_KEY"


class UnusableInput(Exception):
    """The check could not be run; ``errors`` are printed, the exit status is 2."""

    def __init__(self, message: str, errors: Sequence[str] = ()) -> None:
        self.message = message
        self.errors = list(errors)
        super().__init__(message)


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    out = stdout or sys.stdout
    if args.command == "schema-check":
        return schema_check(args, out)
    parser.print_help(out)
    return UNUSABLE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="telemetry-client")
    commands = parser.add_subparsers(dest="command")
    check = commands.add_parser(
        "schema-check",
        help="check .proto changes against a registered schema (exit 0 ok, 1 breaking, 2 error)",
    )
    check.add_argument("path", help="a directory of .proto files (the import root) or one file")
    check.add_argument("--name", required=True, help="the registered schema's name")
    check.add_argument("--url", required=True, help="the platform's base URL (https://...)")
    check.add_argument(
        "--key", default=None, help=f"a schema_check API key (default: ${KEY_ENVIRONMENT})"
    )
    check.add_argument("--root", default=None, help="import root when PATH is a single file")
    check.add_argument("--message", default="", help="event message (default: the registered)")
    check.add_argument("--format", choices=("text", "json", "github"), default="text")
    check.add_argument("--timeout", type=float, default=30.0, help="seconds for the request")
    return parser


def schema_check(args: argparse.Namespace, out: TextIO) -> int:
    """Collect the sources, ask the registry, print the verdict; return the exit status."""
    root = Path(args.root or (args.path if Path(args.path).is_dir() else Path(args.path).parent))
    try:
        sources = collect_sources(Path(args.path), root)
        key = args.key or os.environ.get(KEY_ENVIRONMENT, "")
        if not key:
            raise UnusableInput(f"no API key: pass --key or set {KEY_ENVIRONMENT}")
        answer = request_check(
            args.url, args.name, sources, key=key, message=args.message, timeout=args.timeout
        )
    except UnusableInput as exc:
        _print_unusable(exc, root, args.format, out)
        return UNUSABLE
    violations = answer.get("violations", [])
    if args.format == "json":
        out.write(json.dumps(answer, indent=2, sort_keys=True) + "\n")
    elif args.format == "github":
        for violation in violations:
            out.write(github_annotation(violation, root) + "\n")
        if not violations:
            out.write(f"{args.name}: compatible ({answer.get('rule_set', {}).get('category')})\n")
    else:
        for violation in violations:
            out.write(text_line(violation, root) + "\n")
        category = answer.get("rule_set", {}).get("category", "")
        verdict = f"{len(violations)} breaking change(s)" if violations else "compatible"
        out.write(f"{args.name}: {verdict} under {category}\n")
    return BREAKING if violations else COMPATIBLE


def collect_sources(path: Path, root: Path) -> dict[str, str]:
    """Every .proto under ``path`` (or ``path`` itself), named relative to ``root``."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.proto") if p.is_file())
    elif path.is_file():
        files = [path]
    else:
        raise UnusableInput(f"{path}: no such file or directory")
    if not files:
        raise UnusableInput(f"{path}: no .proto files")
    sources = {}
    for file in files:
        try:
            name = file.resolve().relative_to(root.resolve()).as_posix()
        except ValueError as exc:
            raise UnusableInput(f"{file} is not under the import root {root}") from exc
        try:
            sources[name] = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UnusableInput(
                f"{file}: cannot be read as UTF-8 ({exc.__class__.__name__})"
            ) from exc
    return sources


def request_check(
    url: str, name: str, sources: dict[str, str], *, key: str, message: str, timeout: float
) -> dict[str, Any]:
    """POST the sources to the check endpoint; the parsed answer, or UnusableInput."""
    endpoint = f"{url.rstrip('/')}/api/v1/schemas/{urllib.parse.quote(name, safe='')}/check"
    if urllib.parse.urlsplit(endpoint).scheme not in ("http", "https"):
        raise UnusableInput(f"--url must be http or https, not {url!r}")
    body = json.dumps({"proto_files": sources, "message": message}).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        endpoint,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": f"Bearer {key}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise _refusal(exc) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise UnusableInput(f"cannot reach {endpoint}: {exc.__class__.__name__}") from exc
    except ValueError as exc:
        raise UnusableInput(f"{endpoint} did not answer JSON") from exc


def _refusal(exc: urllib.error.HTTPError) -> UnusableInput:
    try:
        error = json.loads(exc.read().decode("utf-8")).get("error", {})
    except (ValueError, AttributeError):
        error = {}
    code = error.get("code") or f"http_{exc.code}"
    message = error.get("message") or exc.reason
    return UnusableInput(f"HTTP {exc.code} {code}: {message}", error.get("errors") or [])


def text_line(violation: dict[str, Any], root: Path) -> str:
    """``file:line: RULE at path (against vN): old -> new. message``."""
    where = _location(violation, root)
    against = violation.get("against_version")
    return (
        f"{where}{violation['rule']} at {violation['path']}"
        + (f" (against v{against})" if against else "")
        + f": {violation.get('old') or '(absent)'} -> {violation.get('new') or '(absent)'}. "
        + violation.get("message", "")
    )


def github_annotation(violation: dict[str, Any], root: Path) -> str:
    """A GitHub Actions error annotation on the new declaration."""
    properties = [f"title={_escape_property(violation['rule'])}"]
    if violation.get("file"):
        properties.insert(0, f"file={_escape_property(_repo_path(violation['file'], root))}")
        if violation.get("line"):
            properties.insert(1, f"line={int(violation['line'])}")
    against = violation.get("against_version")
    message = (
        f"{violation['path']}: {violation.get('old') or '(absent)'} -> "
        f"{violation.get('new') or '(absent)'}"
        + (f" (against v{against})" if against else "")
        + f". {violation.get('message', '')}"
    )
    return f"::error {','.join(properties)}::{_escape_data(message)}"


def _print_unusable(exc: UnusableInput, root: Path, output: str, out: TextIO) -> None:
    if output == "json":
        out.write(json.dumps({"error": exc.message, "errors": exc.errors}, indent=2) + "\n")
        return
    if output == "github":
        for error in exc.errors or [exc.message]:
            out.write(_compile_error_annotation(error, root, exc.message) + "\n")
        return
    out.write(f"schema-check: {exc.message}\n")
    for error in exc.errors:
        out.write(f"  {error}\n")


def _compile_error_annotation(error: str, root: Path, fallback: str) -> str:
    """protoc's ``file:line:col: message`` becomes an annotation on that line."""
    parts = error.split(":", 3)
    if len(parts) == 4 and parts[1].strip().isdigit() and parts[0].endswith(".proto"):
        file, line, _, message = parts
        location = f"file={_escape_property(_repo_path(file, root))},line={int(line)},"
        return f"::error {location}title=proto_compile_error::{_escape_data(message.strip())}"
    text = error if error != fallback else fallback
    return f"::error title=schema-check::{_escape_data(text)}"


def _location(violation: dict[str, Any], root: Path) -> str:
    if not violation.get("file"):
        return ""
    line = violation.get("line")
    return f"{_repo_path(violation['file'], root)}:{line}: " if line else f"{violation['file']}: "


def _repo_path(name: str, root: Path) -> str:
    """The source's path as the repository (the working directory) names it."""
    path = root / name
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

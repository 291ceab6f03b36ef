"""Scanner worst cases: adversarial 64 KiB values per built-in scanner, before and after.

Each row is one value of 65,536 characters built to make one scanner work hard: digit
runs with separators for cards, IBANs and SSNs; runs of almost-addresses for IPv4 and
IPv6; local-part runs and many "@" for e-mail; scheme words, near-miss tokens and URL
shapes for the secret scanners; plus a plain log line repeated as the ordinary case.
Every value is scanned by the whole default scanner set (``default_scanner_rules``:
what ingest runs), so a row is the cost a client can make one value cost.

"before" is ``governance/scanners.py`` as of ``--baseline`` (a git revision; default the
commit before the worst-case work), loaded from git next to the current module; "after"
is the working tree. Times are the best of ``--repeats`` runs (the set of remembered
clean values is emptied before each run, so nothing is served from it), one core. The
result columns say what the current scanners did with the value: findings, and whether
the per-value candidate bound was hit (then the rest of the value is redacted).

The target (every "after" under 10 ms) sets the exit status. Prints the table and
writes ``bench/results/scanners.json``.

Run: /work/main/.venv/bin/python bench/scanners.py [--repeats N] [--baseline REV]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import support  # noqa: E402 (needs the repo on sys.path)
from governance import scanners as current  # noqa: E402
from governance.defaults import default_scanner_rules  # noqa: E402

SIZE = 64 * 1024
TARGET_MS = 10.0
REPEATS = 5
# governance/scanners.py before the worst-case work (bounded candidates, linear rules).
BASELINE = "6f3dbbc"
KEY_ID = "k1"
KEY = "bench-hash-key"  # a benchmark key, not a secret


def fill(unit: str, head: str = "", tail: str = "") -> str:
    """``head`` + ``unit`` repeated + ``tail``, exactly SIZE characters."""
    body = SIZE - len(head) - len(tail)
    return head + (unit * (body // len(unit) + 1))[:body] + tail


BEGIN_KEY = "-----BEGIN PRIVATE KEY-----"
ZEROS = "0" * 8

# (scanner aimed at, what the value is, the value)
CASES: tuple[tuple[str, str, str], ...] = (
    ("(none)", "a log line, repeated", fill("GET /api/v1/events?page=2 200 Mozilla/5.0 (X11) ")),
    ("credit_card", "'1 ' repeated", fill("1 ")),
    ("credit_card", "'1-' repeated", fill("1-")),
    ("credit_card", "'4111 1111 1111 1112 ' (Luhn fails)", fill("4111 1111 1111 1112 ")),
    ("credit_card", "'4111 1111 1111 1111 ' (valid cards)", fill("4111 1111 1111 1111 ")),
    ("iban", "'DE00 ' repeated", fill("DE00 ")),
    ("iban", "'GB82 WEST ' repeated", fill("GB82 WEST ")),
    ("iban", "'DE0012345678901234567' (one short, compact)", fill("DE0012345678901234567 ")),
    ("iban", "'DE89 3704 0044 0532 0130 00 ' (valid)", fill("DE89 3704 0044 0532 0130 00 ")),
    ("email", "'a.' run, then '@'", fill("a.", tail="@")),
    ("email", "'a-' run after one '@'", fill("a-", head="a@")),
    ("email", "'a@' repeated", fill("a@")),
    ("email", "'a@a.' repeated", fill("a@a.")),
    ("email", "'a@b.cc ' (many addresses)", fill("a@b.cc ")),
    ("us_ssn", "'123-45-' repeated", fill("123-45-")),
    ("us_ssn", "'123-45-6789 ' (many SSNs)", fill("123-45-6789 ")),
    ("ipv4", "'1.' repeated", fill("1.")),
    ("ipv4", "'1.1.1.1.1 ' (versions)", fill("1.1.1.1.1 ")),
    ("ipv4", "'1.1.1.1 ' (many addresses)", fill("1.1.1.1 ")),
    ("ipv6", "':' repeated", fill(":")),
    ("ipv6", "'1:' repeated", fill("1:")),
    ("ipv6", "'1:1:1:1:1:1:1:g ' (7 groups)", fill("1:1:1:1:1:1:1:g ")),
    ("ipv6", "'1:1:1:1:1:1:1:1g ' (8 groups, glued)", fill("1:1:1:1:1:1:1:1g ")),
    ("ipv6", "'1:1:1:1:1:1::g ' (gap, glued)", fill("1:1:1:1:1:1::g ")),
    ("ipv6", "'1:1:1:1:1:1:1:12345:' (bad 8th group)", fill("1:1:1:1:1:1:1:12345:")),
    ("ipv6", "'a::' repeated", fill("a::")),
    ("ipv6", "'1::1 ' (many addresses)", fill("1::1 ")),
    ("ipv6", "'1:1::1.1.1.' repeated", fill("1:1::1.1.1.")),
    ("jwt", "' eyJ' repeated", fill(" eyJ")),
    ("jwt", "'eyJaaaa.a.a ' (many tokens)", fill("eyJaaaa.a.a ")),
    ("api_key", "'sk_live_' repeated", fill("sk_live_")),
    ("api_key", "' AKIA' repeated", fill(" AKIA")),
    ("api_key", "' xoxb-' repeated", fill(" xoxb-")),
    ("bearer_token", "'bearer ' repeated", fill("bearer ")),
    ("bearer_token", "'basic ' repeated", fill("basic ")),
    ("bearer_token", "'authorization: ' repeated", fill("authorization: ")),
    ("bearer_token", "'bearer' then spaces and tabs", fill(" \t", head="bearer")),
    ("url_password", "'a://b:c@ ' (many URLs)", fill("a://b:c@ ")),
    ("url_password", "'a://' then ':' run, '@'", fill(":", head="a://", tail="@")),
    ("private_key", "'-----BEGIN ' repeated", fill("-----BEGIN ")),
    ("private_key", "a BEGIN line, then '-----END ' run", fill("-----END ", head=BEGIN_KEY)),
    ("uuid", "'00000000-0000-0000-0000-00000000000 '", fill(f"{ZEROS}-0000-0000-0000-{ZEROS}000 ")),
    ("(several)", "'a@b.cc 1.1.1.1 ' (two rules' findings)", fill("a@b.cc 1.1.1.1 ")),
)  # fmt: skip


def baseline_load(revision: str) -> ModuleType:
    """governance/scanners.py at ``revision``, imported as a sibling of the current one."""
    source = subprocess.run(  # noqa: S603 (fixed argv)
        ["git", "show", f"{revision}:governance/scanners.py"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    directory = Path(tempfile.mkdtemp(prefix="scanners-baseline-"))
    path = directory / "scanners_baseline.py"
    path.write_text(source, encoding="utf-8")
    name = "governance._scanners_baseline"  # a governance submodule: ".hashing" resolves
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def rules_for(module: ModuleType) -> tuple:
    """The default rule set, built from ``module``'s built-ins and ScannerRule."""
    names = {rule.name for rule in current.BUILTIN_RULES}
    extra = [
        module.ScannerRule(
            **{field.name: getattr(rule, field.name) for field in dataclasses.fields(rule)}
        )
        for rule in default_scanner_rules()
        if rule.name not in names
    ]
    return (*module.BUILTIN_RULES, *extra)


def best_ms(scan: Callable[[], object], clear: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        clear()
        started = time.perf_counter()
        scan()
        times.append((time.perf_counter() - started) * 1000)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--baseline", default=BASELINE, help="git revision for 'before'")
    args = parser.parse_args()

    pinning = support.pin_to_one_core()
    baseline = baseline_load(args.baseline)
    before = baseline.scanner_compile(rules_for(baseline), key_id=KEY_ID, key=KEY)
    after = current.scanner_compile(default_scanner_rules(), key_id=KEY_ID, key=KEY)

    rows = []
    for scanner_name, description, text in CASES:
        assert len(text) == SIZE, description
        ms_before = best_ms(
            lambda text=text: baseline.scan_text(before, text), before.cleared.clear, args.repeats
        )
        ms_after = best_ms(
            lambda text=text: current.scan_text(after, text), after.cleared.clear, args.repeats
        )
        findings = current.scan_findings(after, text)
        tail = bound_hit(after, text)
        redacted = sum(finding.end - finding.start for finding in findings)
        rows.append(
            {
                "scanner": scanner_name,
                "input": description,
                "size": len(text),
                "ms_before": round(ms_before, 2),
                "ms_after": round(ms_after, 2),
                "findings_after": len(findings),
                "redacted_chars_after": redacted,
                "candidate_bound_hit": tail,
            }
        )

    machine = {
        "cpu_model": support.cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pinning": pinning,
    }
    print(f"machine: {machine['cpu_model']} | {machine['platform']} | python {machine['python']}")
    print(
        f"{pinning}; best of {args.repeats}; before = {args.baseline}, after = working tree; "
        f"candidate bound {current.MAX_CANDIDATES_PER_TEXT} per value"
    )
    print()
    header = (
        f"{'scanner':<13} {'input':<44} {'size':>6} {'ms before':>10} {'ms after':>9}  "
        "after: findings (bound hit)"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        hit = " (bound hit: rest redacted)" if row["candidate_bound_hit"] else ""
        note = f"{row['findings_after']}{hit}"
        print(
            f"{row['scanner']:<13} {row['input']:<44} {row['size']:>6} "
            f"{row['ms_before']:>10.1f} {row['ms_after']:>9.1f}  {note}"
        )
    worst = max(rows, key=lambda row: row["ms_after"])
    passed = worst["ms_after"] < TARGET_MS
    print(
        f"\nworst after: {worst['ms_after']:.1f} ms ({worst['scanner']}, {worst['input']}); "
        f"target < {TARGET_MS:g} ms per 64 KiB value: {'PASS' if passed else 'FAIL'}"
    )

    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path = out_dir / "scanners.json"
    report = {
        "benchmark": "scanners",
        "size": SIZE,
        "repeats": args.repeats,
        "baseline": args.baseline,
        "candidate_bound": current.MAX_CANDIDATES_PER_TEXT,
        "machine": machine,
        "rows": rows,
        "target": {"ms": TARGET_MS, "passed": passed},
    }
    out_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out_path.relative_to(ROOT)}")
    return 0 if passed else 1


def bound_hit(scanner: current.CompiledScanner, text: str) -> bool:
    """Whether the per-value candidate bound changed the result: compared with a scan
    whose bound is out of reach (the module constant is read at each scan)."""
    bounded = current.scan_findings(scanner, text)
    saved = current.MAX_CANDIDATES_PER_TEXT
    current.MAX_CANDIDATES_PER_TEXT = 10**9
    try:
        unbounded = current.scan_findings(scanner, text)
    finally:
        current.MAX_CANDIDATES_PER_TEXT = saved
    return bounded != unbounded


if __name__ == "__main__":
    sys.exit(main())

"""bench/admin_home.py: the governance home's render time with millions of events stored.

    .venv/bin/python -m bench.admin_home [--events 10000000] [--quick] [--wait-quiet 60]
        [--renders 40] [--keep-db] [--reuse]

Builds its own database (``tgp_bench_home``, Redis db 4), migrates and bootstraps it,
COPY-loads ``--events`` client_diagnostic events over the last 30 days into their day
partitions, writes the hourly tallies those events would have produced (per source,
schema, status, code, field path and app version, as the store upserts them) and runs
ANALYZE. Then, in this process, a logged-in Django test client renders the home warm:
the platform admin's (every section) and an approver's, interleaved with the violation
list, ``--renders`` times each; it prints p50/p95 and writes bench/results/admin_home.json.

It also captures one render's SQL and fails if any statement reads ``ingest_event``: the
home must use the tallies and pg_class estimates, never count the event table. The
machine is shared: compare the rows of one run, and read the load average it records.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench import support
from bench.ingest_e2e import wait_quiet

DATABASE = "tgp_bench_home"
DATABASE_URL = f"{support.PG_SERVER}/{DATABASE}"
REDIS_URL = "redis://127.0.0.1:6379/4"
RESULTS = support.ROOT / "bench" / "results" / "admin_home.json"
EVENT_CLASS = "client_diagnostic"
SCHEMA = "telemetry.client_diagnostic.v1"
DAYS = 30
SOURCES = ("web-shell", "ios", "android", "desktop", "control-service")
VERSIONS = ("1.2.0", "1.1.9", "4.1.0")
REJECTIONS = (
    ("wrong_type", "reconnect.attempt"),
    ("missing_required", "envelope.event_id"),
    ("unknown_field", "extra"),
    ("too_large", ""),
)
COPY_CHUNK = 20_000
EVENT_TABLE = re.compile(r'\bfrom\s+"?ingest_event"?(\s|$|\)|,)', re.IGNORECASE)


def django_setup() -> None:
    os.environ.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        CELERY_BROKER_URL=REDIS_URL,
        DJANGO_SETTINGS_MODULE="telemetry_platform.settings",
        DEBUG="false",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("DATABASE_REPLICA_URL", None)
    sys.path.insert(0, str(support.ROOT))
    import django

    django.setup()
    from django.test.utils import override_settings

    # The manifest storage needs collectstatic; hashed names are a dict lookup either way.
    override_settings(
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
    ).enable()


def schema_prepare() -> int:
    """Migrate, bootstrap, seed beat; the client_diagnostic revision id."""
    from django.core.management import call_command

    from governance.models import SchemaRevision
    from governance.services import default_configuration_load
    from telemetry_platform.beat import beat_schedule_seed

    call_command("migrate", verbosity=0)
    default_configuration_load()
    beat_schedule_seed()
    return SchemaRevision.objects.filter(schema__name=SCHEMA).latest("version").pk


def partitions_prepare(today: date) -> None:
    from ingest.retention import day_partition_create

    for back in range(DAYS + 1):
        day_partition_create(EVENT_CLASS, today - timedelta(days=back))


def events_copy(events: int, revision_id: int, now: datetime) -> dict[str, float]:
    """COPY ``events`` rows spread evenly over the last 30 days (the load's shape does not
    matter to the home, which never reads them; their count and size do, to the planner)."""
    span = DAYS * 86400 - 60
    start = now.timestamp() - span
    step = span / max(events, 1)
    rng = random.Random(7)
    columns = "event_class, schema_revision_id, source, event_id, occurred_at, received_at, payload"
    started = time.perf_counter()
    with support.connect(DATABASE_URL) as conn, conn.cursor() as cursor:
        with cursor.copy(f"COPY ingest_event ({columns}) FROM STDIN") as copy:
            buffer = io.StringIO()
            for k in range(events):
                moment = datetime.fromtimestamp(start + k * step, UTC).isoformat()
                source = SOURCES[k % len(SOURCES)]
                payload = (
                    f'{{"name":"render.slow","duration_ms":{rng.randint(1, 900)},'
                    f'"envelope":{{"event_id":"e{k}"}}}}'
                )
                buffer.write(
                    f"{EVENT_CLASS}\t{revision_id}\t{source}\te{k}\t{moment}\t{moment}\t{payload}\n"
                )
                if k % COPY_CHUNK == COPY_CHUNK - 1:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
            copy.write(buffer.getvalue())
        copy_seconds = time.perf_counter() - started
        analyze_started = time.perf_counter()
        cursor.execute("ANALYZE ingest_event")
        analyze_seconds = time.perf_counter() - analyze_started
    return {"copy_seconds": round(copy_seconds, 1), "analyze_seconds": round(analyze_seconds, 1)}


def tallies_write(events: int, now: datetime) -> int:
    """The hourly tallies of that load: per hour, source, status, code/field, version."""
    from ingest.models import IngestTally
    from ingest.pipeline.tally import hour_of

    per_hour = events / (DAYS * 24) / len(SOURCES)
    rows = []
    current = hour_of(now)
    for back in range(DAYS * 24):
        hour = current - timedelta(hours=back)
        for source in SOURCES:
            for version in VERSIONS:
                share = per_hour / len(VERSIONS)
                common = {
                    "hour": hour,
                    "source": source,
                    "event_class": EVENT_CLASS,
                    "schema_name": SCHEMA,
                    "app_version": version,
                }
                rows.append(IngestTally(status="accepted", count=int(share * 0.95), **common))
                rows.append(IngestTally(status="duplicate", count=int(share * 0.01), **common))
                for code, field_path in REJECTIONS:
                    rows.append(
                        IngestTally(
                            status="rejected",
                            code=code,
                            field_path=field_path,
                            count=max(int(share * 0.01), 1),
                            **common,
                        )
                    )
    IngestTally.objects.bulk_create(rows, batch_size=5_000)
    with support.connect(DATABASE_URL) as conn:
        conn.execute("ANALYZE ingest_ingesttally")
    return len(rows)


def people() -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from governance.choices import ChangeKind
    from governance.roles import GOVERNANCE_APPROVER, GOVERNANCE_OWNER
    from governance.services import change_request_draft

    users = get_user_model().objects
    admin = users.create_superuser("bench-admin", password=None)
    owner = users.create_user("bench-owner", password=None, is_staff=True)
    owner.groups.add(Group.objects.get(name=GOVERNANCE_OWNER))
    approver = users.create_user("bench-approver", password=None, is_staff=True)
    approver.groups.add(Group.objects.get(name=GOVERNANCE_APPROVER))
    for days, event_class in ((45, "client_diagnostic"), (120, "service_metric")):
        change_request_draft(
            kind=ChangeKind.CLASS_RETENTION,
            target=f"event_class:{event_class}",
            payload={"retention_days": days},
            reason="bench",
            actor=owner,
        )
    return {"admin": admin, "approver": approver}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(round(share * (len(ordered) - 1)), len(ordered) - 1)]


def measure(users: dict[str, Any], renders: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Warm renders, interleaved (admin home, approver home, violation list) round by round."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    clients = {}
    for name, user in users.items():
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)
        clients[name] = client
    cases = (
        ("home (platform admin)", "admin", "/admin/"),
        ("home (approver)", "approver", "/admin/"),
        ("violation list 24h (admin)", "admin", "/admin/violations/"),
    )
    for _, who, url in cases:  # warm: plan caches, template loaders, leaf counts
        for _ in range(3):
            assert clients[who].get(url).status_code == 200
    timings: dict[str, list[float]] = {label: [] for label, _, _ in cases}
    for _ in range(renders):
        for label, who, url in cases:
            started = time.perf_counter()
            response = clients[who].get(url)
            timings[label].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
    with CaptureQueriesContext(connection) as captured:
        clients["admin"].get("/admin/")
    sqls = [query["sql"] for query in captured.captured_queries]
    offending = [sql for sql in sqls if EVENT_TABLE.search(sql)]
    queries = {"home_queries": len(sqls), "event_table_reads": offending}
    rows = [
        {
            "case": label,
            "renders": len(values),
            "p50_ms": round(statistics.median(values), 1),
            "p95_ms": round(percentile(values, 0.95), 1),
            "max_ms": round(max(values), 1),
        }
        for label, values in timings.items()
    ]
    return rows, queries


def estimate_now() -> int | None:
    from telemetry_platform.home import events_estimate

    return events_estimate()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--renders", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="200k events, 10 renders")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S")
    parser.add_argument("--keep-db", action="store_true", help="keep the bench database")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept, loaded database")
    args = parser.parse_args()
    if args.quick:
        args.events, args.renders = min(args.events, 200_000), min(args.renders, 10)
    machine = support.machine_facts()
    now = datetime.now(UTC)
    load: dict[str, Any] = {"events": args.events}
    if not args.reuse:
        support.database_recreate(DATABASE)
    support.redis_flush(REDIS_URL)
    django_setup()
    try:
        if not args.reuse:
            revision_id = schema_prepare()
            partitions_prepare(now.date())
            print(f"COPY {args.events:,} events ...", flush=True)
            load.update(events_copy(args.events, revision_id, now))
            load["tally_rows"] = tallies_write(args.events, now)
        else:
            from django.contrib.auth import get_user_model

            get_user_model().objects.filter(username__startswith="bench-").delete()
            from governance.models import ChangeRequest

            ChangeRequest.objects.filter(reason="bench").delete()
        users = people()
        load["planner_estimate"] = estimate_now()
        if args.wait_quiet:
            machine["busy_before_measuring"] = round(wait_quiet(args.wait_quiet), 3)
        machine["load_average_at_measure"] = [round(x, 2) for x in os.getloadavg()]
        rows, queries = measure(users, args.renders)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db and not args.reuse:
            support.database_drop(DATABASE)
    print(
        f"\n{args.events:,} events stored (planner estimate {load['planner_estimate']:,}); "
        f"{queries['home_queries']} queries per home render; "
        f"event-table reads: {len(queries['event_table_reads'])}"
    )
    print(f"{'case':32} {'renders':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for row in rows:
        print(
            f"{row['case']:32} {row['renders']:>7} {row['p50_ms']:>8} {row['p95_ms']:>8} "
            f"{row['max_ms']:>8}"
        )
    result = {
        "bench": "admin_home",
        "command": "python -m bench.admin_home " + " ".join(sys.argv[1:]),
        "at": now.isoformat(),
        "machine": machine,
        "load": load,
        "queries": queries,
        "rows": rows,
        "note": "shared machine: cases interleaved round by round in one process",
    }
    support.results_write(RESULTS, result)
    if queries["event_table_reads"]:
        print("FAIL: the home read the event table:", *queries["event_table_reads"], sep="\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

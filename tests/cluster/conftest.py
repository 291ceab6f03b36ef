"""A PostgreSQL primary, its streaming replica and a PgBouncer in transaction mode, started
for this session in a temporary directory, and the platform's gunicorn served through them.

Skipped (with the reason) only when the PostgreSQL 15 or PgBouncer binaries are missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
DATABASE = "tgp_cluster"
MAX_LAG_SECONDS = 1.0  # DATABASE_REPLICA_MAX_LAG_SECONDS of the served platform
CHECK_SECONDS = 0.2  # DATABASE_REPLICA_CHECK_SECONDS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _missing_binaries() -> str:
    needed = [PG_BIN / name for name in ("initdb", "pg_ctl", "pg_basebackup")]
    missing = [str(path) for path in needed if not path.exists()]
    if not Path(PGBOUNCER).exists():
        missing.append("pgbouncer (apt-get install -y pgbouncer; `make pgbouncer`)")
    return ", ".join(missing)


def _as_postgres(args: list[str]) -> list[str]:
    # initdb and pgbouncer refuse to run as root: run them as the postgres user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def _run(args: list[str], **kwargs) -> None:
    subprocess.run(_as_postgres(args), check=True, capture_output=True, timeout=120, **kwargs)


@dataclass
class Cluster:
    """Where the primary, the replica and PgBouncer listen, and how to reach them."""

    directory: Path
    primary_port: int
    replica_port: int
    bouncer_port: int
    web_port: int = 0
    secrets: dict[str, str] = field(default_factory=dict)

    def url(self, port: int, database: str = DATABASE) -> str:
        return f"postgres://root@127.0.0.1:{port}/{database}"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary_port)

    @property
    def replica_url(self) -> str:
        return self.url(self.replica_port)

    @property
    def bouncer_url(self) -> str:
        return self.url(self.bouncer_port)

    def connect(self, port: int, database: str = DATABASE) -> psycopg.Connection:
        return psycopg.connect(self.url(port, database), autocommit=True, connect_timeout=5)

    def sql(self, port: int, query: str, params: tuple = ()) -> list[tuple]:
        with self.connect(port) as connection:
            cursor = connection.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def pg_ctl(self, node: str, action: str) -> None:
        _run([str(PG_BIN / "pg_ctl"), "-D", str(self.directory / node), "-w", "-t", "60",
              "-l", str(self.directory / f"{node}.log"), "-m", "fast", action])

    def platform_env(self, **overrides: str) -> dict[str, str]:
        """The environment of a platform process served through PgBouncer (transaction mode)."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update(
            DJANGO_SETTINGS_MODULE="telemetry_platform.test_settings",
            DATABASE_URL=self.bouncer_url,
            DATABASE_POOL_MODE="transaction",
            DATABASE_SESSION_URL=self.primary_url,
            DATABASE_REPLICA_URL=self.replica_url,
            DATABASE_REPLICA_MAX_LAG_SECONDS=str(MAX_LAG_SECONDS),
            DATABASE_REPLICA_CHECK_SECONDS=str(CHECK_SECONDS),
            DATABASE_CONN_MAX_AGE="60",
        )
        env.update(overrides)
        return env

    def manage(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.platform_env(**env),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def replica_caught_up(self, timeout: float = 20) -> None:
        """Wait until the replica has replayed everything the primary has written."""
        (target,) = self.sql(self.primary_port, "SELECT pg_current_wal_lsn()::text")[0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            (done,) = self.sql(
                self.replica_port, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
            )[0]
            if done:
                return
            time.sleep(0.05)
        raise AssertionError("the replica did not catch up")


def _primary(cluster: Cluster) -> None:
    data = cluster.directory / "primary"
    _run([str(PG_BIN / "initdb"), "-D", str(data), "-U", "root", "--auth=trust",
          "--encoding=UTF8", "--locale=C.UTF-8"])
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"port = {cluster.primary_port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{cluster.directory}'\n"
            "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n"
            "shared_preload_libraries = 'pg_stat_statements'\n"
            # A test cluster: durability is not what is tested.
            "fsync = off\nfull_page_writes = off\nshared_buffers = 64MB\n"
            "max_connections = 60\ntimezone = 'UTC'\n"
        )
    cluster.pg_ctl("primary", "start")
    with cluster.connect(cluster.primary_port, "postgres") as connection:
        connection.execute(f"CREATE DATABASE {DATABASE}")
    with cluster.connect(cluster.primary_port) as connection:
        connection.execute("CREATE EXTENSION pg_stat_statements")


def _replica(cluster: Cluster) -> None:
    data = cluster.directory / "replica"
    # --checkpoint=fast: the default spread checkpoint made the backup wait ~90 s.
    _run([str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(cluster.primary_port),
          "-U", "root", "-D", str(data), "-R", "-X", "stream", "--checkpoint=fast"])
    with (data / "postgresql.auto.conf").open("a") as conf:
        conf.write(f"port = {cluster.replica_port}\n")
    cluster.pg_ctl("replica", "start")


def _bouncer(cluster: Cluster) -> subprocess.Popen:
    directory = cluster.directory
    (directory / "userlist.txt").write_text('"root" ""\n')
    (directory / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{DATABASE} = host=127.0.0.1 port={cluster.primary_port} dbname={DATABASE}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {cluster.bouncer_port}\n"
        f"unix_socket_dir = {directory}\n"
        "auth_type = trust\n"
        f"auth_file = {directory / 'userlist.txt'}\n"
        "admin_users = root\n"
        "pool_mode = transaction\n"
        # Fewer server sessions than client connections: transactions must change sessions.
        "default_pool_size = 4\nmax_client_conn = 200\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
    )
    process = subprocess.Popen(
        _as_postgres([PGBOUNCER, str(directory / "pgbouncer.ini")]),
        stdout=(directory / "pgbouncer.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            cluster.sql(cluster.bouncer_port, "SELECT 1")
            return process
        except psycopg.OperationalError:
            assert process.poll() is None, (directory / "pgbouncer.log").read_text()
            assert time.monotonic() < deadline, "pgbouncer did not come up"
            time.sleep(0.1)


SETUP_SCRIPT = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from ingest.services import api_key_create
from governance.roles import SECURITY_ANALYST, PRIVACY_OFFICER
import json
key = api_key_create(name="control-service", source="control-service", actor=None)
user = get_user_model().objects.create_user("analyst", "a@example.test", "pw-123456!",
                                            is_staff=True)
user.groups.add(*Group.objects.filter(name__in=[SECURITY_ANALYST, PRIVACY_OFFICER]))
get_user_model().objects.create_superuser("governor", "g@example.test", "pw-governor-1!")
print(json.dumps({"ingest": key.secret, "token": Token.objects.create(user=user).key,
                  "admin": ["governor", "pw-governor-1!"]}))
"""


def _gunicorn(cluster: Cluster) -> subprocess.Popen:
    cluster.web_port = _free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "telemetry_platform.wsgi",
         "--config", "telemetry_platform/gunicorn.conf.py",
         "--bind", f"127.0.0.1:{cluster.web_port}", "--workers", "2", "--timeout", "30"],
        cwd=ROOT,
        env=cluster.platform_env(WEB_THREADS="4"),
        stdout=(cluster.directory / "gunicorn.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{cluster.web_port}/healthz", timeout=2
            ) as answer:
                if answer.status == 200:
                    return process
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        assert process.poll() is None, (cluster.directory / "gunicorn.log").read_text()
        assert time.monotonic() < deadline, "gunicorn did not come up"
        time.sleep(0.2)


def cluster_start(directory: Path) -> Cluster:
    """A primary and its streaming replica in ``directory`` (owned by postgres when root);
    the caller stops them (``pg_ctl(node, "stop")``). bench/replica_search.py uses it too."""
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    directory.chmod(0o777)
    cluster = Cluster(directory, _free_port(), _free_port(), _free_port())
    _primary(cluster)
    _replica(cluster)
    return cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """Primary + streaming replica + PgBouncer (transaction mode) + the platform's gunicorn."""
    missing = _missing_binaries()
    if missing:
        pytest.skip(f"needs the PostgreSQL 15 and PgBouncer binaries; missing: {missing}")
    directory = Path(tempfile.mkdtemp(prefix="tgp-cluster-"))
    cluster = Cluster(directory, 0, 0, 0)  # ports known once started
    processes: list[subprocess.Popen] = []
    try:
        cluster = cluster_start(directory)
        processes.append(_bouncer(cluster))
        # Migrations through PgBouncer too: the schema is built in transaction mode.
        migrated = cluster.manage("bootstrap", "--verbosity", "0")
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        created = cluster.manage("shell", "-c", SETUP_SCRIPT)
        assert created.returncode == 0, created.stderr[-3000:]
        cluster.secrets = json.loads(created.stdout.strip().splitlines()[-1])
        processes.append(_gunicorn(cluster))
        yield cluster
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for node in ("replica", "primary"):
            if (directory / node / "postmaster.pid").exists():
                with contextlib.suppress(subprocess.CalledProcessError):
                    cluster.pg_ctl(node, "stop")
        shutil.rmtree(directory, ignore_errors=True)

"""What the benchmarks share: PostgreSQL, Redis, manage.py, gunicorn and services, the machine."""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_SERVER = "postgres://root@127.0.0.1:5432"
GUNICORN = str(Path(PYTHON).parent / "gunicorn")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def pg_admin(sql: str) -> None:
    """Run one statement on the server's maintenance database (CREATE/DROP DATABASE)."""
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def database_recreate(name: str) -> None:
    """An empty database ``name``, whatever was there (connections to it are ended)."""
    database_drop(name)
    pg_admin(f"CREATE DATABASE {name}")


def database_drop(name: str) -> None:
    pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def connect(database_url: str, **options: Any) -> Any:
    """An autocommit psycopg connection (``options`` go to ``psycopg.connect``)."""
    import psycopg

    return psycopg.connect(database_url, autocommit=True, **options)


def pg_settings(conn: Any, names: tuple[str, ...]) -> dict[str, str]:
    """The server's value (``SHOW``) of each setting in ``names``."""
    return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}


def ids_reserve(conn: Any, count: int) -> int:
    """Reserve ``count`` ids of ``ingest_event``'s id sequence; return the first."""
    sequence = conn.execute("SELECT pg_get_serial_sequence('ingest_event', 'id')").fetchone()[0]
    first = conn.execute("SELECT nextval(%s)", [sequence]).fetchone()[0]
    conn.execute("SELECT setval(%s, %s)", [sequence, first + count])
    return first


def redis_flush(redis_url: str) -> None:
    """Empty the Redis database of ``redis_url`` (the benchmark's own)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()


def manage(*args: str, env: dict[str, str]) -> str:
    """Run ``manage.py ARGS`` with ``env``; its standard output, or RuntimeError with stderr."""
    completed = subprocess.run(  # noqa: S603 (fixed argv)
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if completed.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{completed.stderr[-3000:]}")
    return completed.stdout


def gunicorn_argv(port: int, *, workers: int, timeout: str, access_log: bool = True) -> list[str]:
    """gunicorn as the Procfile's ``web`` line runs it, bound to ``127.0.0.1:port``."""
    argv = [
        GUNICORN,
        "telemetry_platform.wsgi",
        "--config",
        "telemetry_platform/gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
    ]
    if access_log:
        argv += ["--access-logfile", "-"]
    return [*argv, "--timeout", timeout]


class Service:
    """A long-running subprocess (gunicorn, a Celery worker) logging to ``logdir/<name>.log``."""

    stop_timeout = 20.0  # seconds between SIGTERM and SIGKILL

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 (fixed argv)
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the service's log (what a failure message shows)."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def check_alive(self) -> None:
        """Raise RuntimeError, with the log's tail, if the service has exited."""
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")

    def wait_until(self, ready: Callable[[], bool], timeout: float = 60.0) -> None:
        """Poll ``ready`` (an OSError counts as no) until it is true or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with suppress(OSError):  # requests' errors are OSErrors too
                if ready():
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready in {timeout:g}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def results_write(path: Path, report: dict[str, Any]) -> None:
    """Write a benchmark's ``report`` as JSON to ``path`` (under bench/results/); say where."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"results: {path.relative_to(ROOT)}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pin_to_one_core() -> str:
    """Pin this process to one CPU (single-core measurements); say what was done."""
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to CPU {core}"
    return "not pinned (no sched_setaffinity)"


def process_tree(root: int, parents: dict[int, int] | None = None) -> set[int]:
    """``root`` and every process descended from it (``parents``: pid -> parent pid, read
    from /proc unless given)."""
    if parents is None:
        parents = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with suppress(OSError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, grew = {root}, True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= found
        grew = bool(found)
    return tree


def pin_tree(root: int, cpus: set[int]) -> int:
    """Pin ``root`` and its descendants to ``cpus`` (children forked later inherit it: a
    postmaster's backends, gunicorn's restarted workers); return how many were pinned."""
    pinned = 0
    for pid in process_tree(root):
        with suppress(OSError):  # a process that ended meanwhile
            os.sched_setaffinity(pid, cpus)
            pinned += 1
    return pinned


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def memory_gb() -> float:
    """The machine's memory (MemTotal) in GiB, 0.0 when /proc does not say."""
    with suppress(OSError):
        return int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return 0.0


def machine_facts() -> dict[str, Any]:
    """CPU model, cores, memory, platform, Python and the load average now."""
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(memory_gb(), 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def system_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (not idle or waiting for I/O) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK


def protobuf_version() -> str:
    from google.protobuf import __version__
    from google.protobuf.internal import api_implementation

    return f"{__version__} ({api_implementation.Type()})"

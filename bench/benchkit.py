"""What the postback, csv_import, ledger and attribution benchmarks share: a scratch directory, a throw-away
database, child processes that always die, machine facts, verdicts and the RESULTS.md writer.

Every benchmark runs inside `scratch()`: it creates a temporary directory (the working directory for the
run, so nothing lands in the checkout), turns SIGTERM/SIGHUP into an exception that unwinds through every
cleanup, and removes the directory at the end, also after a failure.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

BIN = Path(sys.executable).parent  # the project's virtualenv: `clearline` lives beside `python`
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _unwind(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary working directory for the whole run, removed afterwards; SIGTERM/SIGHUP unwind cleanly."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _unwind)
    home = Path.cwd()
    with tempfile.TemporaryDirectory(prefix=f"clearline-bench-{prefix}-") as name:
        work = Path(name)
        os.chdir(work)  # Huey's SQLite file and anything else written relative to the cwd stays in here
        try:
            yield work
        finally:
            os.chdir(home)


# --- databases ----------------------------------------------------------------------------------------------
def sqlalchemy_url(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1] if url.startswith(("postgresql://", "postgres://")) else url


@contextlib.contextmanager
def postgres_database(server_url: str, label: str) -> Iterator[str]:
    """A new, empty database on the server of `server_url` (a postgresql:// URL); dropped afterwards."""
    base = make_url(sqlalchemy_url(server_url))
    name = f"clearline_bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextlib.contextmanager
def database(server_url: str | None, work: Path, label: str) -> Iterator[str]:
    """A fresh SQLite file in `work`, or a fresh database on a PostgreSQL server; gone afterwards."""
    if server_url:
        with postgres_database(server_url, label) as url:
            yield url
    else:
        yield f"sqlite:///{work / f'{label}.db'}"


def use_database(url: str) -> None:
    """Point Clearline's settings (and so `kit.db`) at `url` in this process and in every child."""
    os.environ["CLEARLINE_DATABASE_URL"] = url
    from clearline.config import get_settings

    get_settings.cache_clear()


def clearline(*args: str, env: dict[str, str] | None = None, timeout: float = 1800) -> str:
    """Run a `clearline` command; its output, or a RuntimeError with the tail of it."""
    done = subprocess.run(
        [str(BIN / "clearline"), *args],
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"clearline {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done.stdout


def seed_demo() -> None:
    """Migrate and seed the pilot brand (live links, coupon codes, a simulated month) into the current database."""
    clearline("demo", "--no-serve", env={**os.environ, "COLUMNS": "200"})


# --- processes ----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def child(command: list[str], *, log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A child process in its own process group; the whole group is terminated (then killed) on the way out."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command, env=env or dict(os.environ), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Signal the child's process group and wait; SIGKILL the group if it does not go."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers in the group, if any
    if proc.poll() is None:
        proc.wait()


def tail(path: Path, lines: int = 25) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def http_get(port: int, path: str, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


def http_post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def wait_for_http(proc: subprocess.Popen[bytes], port: int, *, log: Path, timeout: float = 180) -> None:
    """Until the server answers GET /healthz."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} while starting:\n{tail(log)}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if http_get(port, "/healthz", timeout=2)[0] == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server did not answer on port {port} within {timeout:.0f} s:\n{tail(log)}")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def postgres_backends_cpu(database_name: str, exclude: set[int] | frozenset[int] = frozenset()) -> float:
    """CPU seconds used so far by the PostgreSQL backends connected to one database (read from /proc: the server
    runs on this machine), but those in ``exclude``. A backend's title is "postgres: [<cluster>:] <user> <database>
    <client> <state>"."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        words = title.split()
        if not words or words[0] != "postgres:":
            continue
        words = words[2:] if len(words) > 1 and words[1].endswith(":") else words[1:]  # skip a cluster name
        if len(words) >= 2 and words[1] == database_name:
            total += process_cpu_seconds(int(entry.name))
    return total


# --- reporting ----------------------------------------------------------------------------------------------
def machine_facts() -> dict[str, str]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "load average at start": load,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def postgres_version(url: str) -> str:
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            return str(conn.scalar(text("SHOW server_version")))
    finally:
        engine.dispose()


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def write_results(path: Path, title: str, facts: dict[str, str], body: str, *, section: str | None = None) -> None:
    """RESULTS.md beside the benchmark: the command, the machine and the printed report. With `section`, only
    that `## section` of the file is replaced (or added), so runs on different databases keep each other's."""
    command = "uv run python " + " ".join(
        [str(Path(sys.argv[0]).resolve().relative_to(path.parents[2])), *sys.argv[1:]]
    )
    facts_md = "\n".join(f"- {key}: {value}" for key, value in facts.items())
    block = f"`{command}`\n\n{facts_md}\n\n```text\n{body}\n```\n"
    if section is None:
        path.write_text(f"# {title}\n\n{block}")
        return
    sections: dict[str, str] = {}
    if path.exists():
        for part in path.read_text().split("\n## ")[1:]:
            name, _, text_ = part.partition("\n")
            sections[name.strip()] = text_.strip("\n") + "\n"
    sections[section] = block
    path.write_text(f"# {title}\n" + "".join(f"\n## {name}\n\n{text_}" for name, text_ in sorted(sections.items())))


class Meter:
    """Wall time, this process's CPU time and (optionally) the CPU time of one PostgreSQL database's backends,
    accumulated over every `with meter:` block."""

    def __init__(self, postgres_database: str | None = None) -> None:
        self.database = postgres_database
        self.wall = self.client_cpu = self.server_cpu = 0.0

    def _server(self) -> float:
        return postgres_backends_cpu(self.database) if self.database else 0.0

    def __enter__(self) -> Meter:
        self._marks = (time.perf_counter(), time.process_time(), self._server())
        return self

    def __exit__(self, *_exc: object) -> None:
        wall, client, server = self._marks
        self.wall += time.perf_counter() - wall
        self.client_cpu += time.process_time() - client
        self.server_cpu += self._server() - server

    @property
    def cpu(self) -> float:
        return self.client_cpu + self.server_cpu


class Timer:
    """`with Timer() as t: ...` then `t.seconds`."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds = time.perf_counter() - self.start

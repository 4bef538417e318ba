"""Redirect benchmark: Clearline's `GET /r/{code}` against nginx answering `return 302`, same machine, same run.

    uv run python bench/redirect/run.py [--seconds 10] [--rounds 3] [--database-url postgresql://...]

A fresh database is migrated and seeded (`clearline demo --no-serve`) and one live link picked. Four servers are
started side by side on free loopback ports: nginx (the baseline), a bare ASGI app under uvicorn (the floor),
Clearline with click logging off and Clearline with click logging on. Each is warmed up, then wrk drives them one
at a time at 8 and 64 connections, in rounds whose server order rotates, so that every server meets the same
background load on a shared machine. Server CPU (utime + stime of the server process and its descendants, all
threads, from /proc) is read around every wrk run and divided by the requests wrk completed. The logging-on
server is stopped with SIGINT and its stored clicks are counted against wrk's request count. Every process and
temporary file is removed on the way out, also after a failure or a Ctrl-C. README.md explains the judgement.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine, make_url

from clearline.kit.db import make_engine
from clearline.models import Click, Link

HERE = Path(__file__).resolve().parent
NGINX = "/usr/sbin/nginx"
WRK = "/usr/bin/wrk"
BIN = Path(sys.executable).parent  # the project's virtualenv: `clearline` lives next to this Python
BASELINE_LOCATION = "https://shop.acme-beauty.com/collections/glow"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SETTLE_S = 0.25  # after a run, so the click writer's last batch (every 50 ms) lands inside the measurement

# PRODUCT.md, "Speed it must reach", the redirect line.
MAX_CPU_RATIO = 2.5
MAX_P99_MS = 5.0
P99_AT_CONNECTIONS = 64
MAX_LOGGING_COST_PCT = 10.0

NGINX_NAME, FLOOR_NAME, OFF_NAME, ON_NAME = "nginx", "uvicorn-floor", "clearline-logging-off", "clearline-logging-on"

WRK_DONE_HOOK = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH-RESULT {\\"requests\\": %d, \\"duration_us\\": %d, \\"connect\\": %d, \\"read\\": %d, " ..
    "\\"write\\": %d, \\"status\\": %d, \\"timeout\\": %d, \\"p50_us\\": %.1f, \\"p99_us\\": %.1f}\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

NGINX_CONF = """
daemon off;
worker_processes 1;
error_log stderr;
pid {work}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port};
        location /r/ {{ return 302 {location}; }}
        location = /healthz {{ return 204; }}
    }}
}}
"""


# --- what was measured --------------------------------------------------------------------------------------
@dataclass
class WrkResult:
    connections: int
    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    status_errors: int  # non-2xx/3xx responses
    socket_errors: dict[str, int]  # connect, read, write, timeout
    cpu_s: float = 0.0  # wrk's own CPU

    @property
    def errors(self) -> int:
        return self.status_errors + sum(self.socket_errors.values())


@dataclass
class Run:
    wrk: WrkResult
    server_cpu_s: float
    machine_busy_s: float  # every CPU of the machine, whoever used it, over the run and the settling pause
    db_cpu_s: float | None = None  # the PostgreSQL backends of the bench database, when they run on this machine

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s * 1e6 / self.wrk.requests if self.wrk.requests else float("inf")

    @property
    def others_cpus(self) -> float:
        """CPUs kept busy by neither the server, its database backends nor wrk (other work on the machine)."""
        spent = self.machine_busy_s - self.server_cpu_s - self.wrk.cpu_s - (self.db_cpu_s or 0.0)
        return max(0.0, spent) / (self.wrk.duration_s + SETTLE_S)


@dataclass
class Pooled:
    """The rounds at one connection count, or all of a server's runs: totals, medians and the spread."""

    runs: list[Run]

    @property
    def requests(self) -> int:
        return sum(r.wrk.requests for r in self.runs)

    @property
    def rps(self) -> float:
        return self.requests / sum(r.wrk.duration_s for r in self.runs)

    @property
    def cpu_us_per_request(self) -> float:
        return sum(r.server_cpu_s for r in self.runs) * 1e6 / max(1, self.requests)

    @property
    def db_cpu_us_per_request(self) -> float | None:
        if any(r.db_cpu_s is None for r in self.runs):
            return None
        return sum(r.db_cpu_s or 0.0 for r in self.runs) * 1e6 / max(1, self.requests)

    @property
    def cpu_spread(self) -> str:
        values = [r.cpu_us_per_request for r in self.runs]
        return f"{min(values):.0f}–{max(values):.0f}"

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r.wrk, attr) for r in self.runs)

    @property
    def others_cpus(self) -> float:
        return statistics.mean(r.others_cpus for r in self.runs)

    @property
    def errors(self) -> int:
        return sum(r.wrk.errors for r in self.runs)


@dataclass
class Server:
    name: str
    command: list[str]
    port: int
    env: dict[str, str]
    stop_signal: int
    probe_for: str  # a 302 must carry this in its Location; "" for no probe request
    proc: subprocess.Popen[bytes] | None = None
    warmup: WrkResult | None = None
    runs: dict[int, list[Run]] = field(default_factory=dict)  # by connections, one per round
    graceful: bool = True
    log_tail: str = ""

    def at(self, connections: int) -> Pooled:
        return Pooled(self.runs[connections])

    @property
    def pooled(self) -> Pooled:
        return Pooled([run for runs in self.runs.values() for run in runs])

    def all_wrk(self) -> list[WrkResult]:
        return ([self.warmup] if self.warmup else []) + [run.wrk for run in self.pooled.runs]


# --- processes and /proc ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, utime + stime in ticks) of one process, all its threads; None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw.rsplit(")", 1)[1].split()  # fields[0] is field 3 of proc(5), the state
    return int(fields[1]), int(fields[11]) + int(fields[12])


def server_cpu_seconds(root: int) -> float:
    """utime + stime of `root` and every live descendant (nginx: master and worker)."""
    stats = {int(p.name): s for p in Path("/proc").iterdir() if p.name.isdigit() and (s := _stat(int(p.name)))}
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    ticks, todo = 0, [root]
    while todo:
        pid = todo.pop()
        ticks += stats[pid][1] if pid in stats else 0
        todo.extend(children.get(pid, []))
    return ticks / CLK_TCK


def machine_busy_seconds() -> float:
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def running(server: Server, work: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server in its own session (a Ctrl-C in the terminal reaches only this script); it never
    outlives the block."""
    with (work / f"{server.name}.log").open("wb") as log:
        proc = subprocess.Popen(
            server.command, env=server.env, cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def log_tail(name: str, work: Path, lines: int = 20) -> str:
    path = work / f"{name}.log"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def http_get(port: int, path: str) -> tuple[int, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        answer.read()
        return answer.status, answer.getheader("location")
    finally:
        conn.close()


def wait_until_serving(server: Server, work: Path, timeout: float = 120) -> None:
    """Until the server answers /healthz with anything (that path never logs a click)."""
    assert server.proc is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            tail = log_tail(server.name, work)
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode} while starting:\n{tail}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            http_get(server.port, "/healthz")
            return
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not answer within {timeout:.0f} s:\n{log_tail(server.name, work)}")


def probe(server: Server, code: str) -> None:
    """One request before the load, so a wrong link or a broken server fails loudly instead of timing 404s."""
    status, location = http_get(server.port, f"/r/{code}")
    if status != 302 or server.probe_for not in (location or ""):
        raise RuntimeError(f"{server.name}: GET /r/{code} answered {status} {location!r}, not a 302 as expected")


def stop_gracefully(server: Server, timeout: float = 60) -> None:
    """Send the server's stop signal and wait for the exit; kill it (and note that) after `timeout`."""
    assert server.proc is not None
    server.proc.send_signal(server.stop_signal)
    try:
        server.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.graceful = False
        server.proc.kill()
        server.proc.wait()


# --- the database -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def temporary_database(server_url: str | None, work: Path) -> Iterator[str]:
    """A SQLite file in `work`, or a new database on the PostgreSQL server of `server_url`, dropped afterwards."""
    if not server_url:
        yield f"sqlite:///{work / 'bench.db'}"
        return
    base = make_url(server_url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"clearline_bench_{uuid.uuid4().hex[:10]}"
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


def seed(env: dict[str, str], work: Path) -> None:
    command = [str(BIN / "clearline"), "demo", "--no-serve"]
    done = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"seeding failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def pick_live_code(engine: Engine) -> str:
    """A live, reusable, unexpired link: the one every request asks for."""
    with engine.connect() as conn:
        code = conn.scalar(
            select(Link.code)
            .where(Link.status == "live", Link.is_single_use.is_(False), Link.expires_at > dt.datetime.now(dt.UTC))
            .order_by(Link.id)
            .limit(1)
        )
    if code is None:
        raise RuntimeError("the seeded database has no live, reusable link")
    return str(code)


class DatabaseCpu:
    """CPU of the PostgreSQL backends serving the bench database, read from /proc when PostgreSQL runs here."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.local = engine.dialect.name == "postgresql" and _stat(self._own_backend()) is not None

    def _own_backend(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(text("SELECT pg_backend_pid()")) or 0)

    def ticks(self) -> dict[int, int]:
        query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        with self.engine.connect() as conn:
            pids = conn.execute(text(query)).scalars().all()
        return {pid: stat[1] for pid in pids if (stat := _stat(pid)) is not None}

    def since(self, before: dict[int, int]) -> float | None:
        """Seconds used since `before` by the backends alive now (new ones from their start)."""
        if not self.local:
            return None
        return sum(t - before.get(pid, 0) for pid, t in self.ticks().items()) / CLK_TCK


def count_clicks(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(Click)) or 0)


# --- the servers --------------------------------------------------------------------------------------------
def uvicorn_command(target: str, port: int, *extra: str) -> list[str]:
    """Clearline's serving settings: one worker, uvloop and httptools when installed, proxy headers, warnings."""
    settings = ["--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "warning"]
    return [sys.executable, "-m", "uvicorn", target, *settings, "--proxy-headers", *extra]


def serve_takes_workers() -> bool:
    """Whether `clearline serve` has --workers and --log-level (without them it serves at log level info)."""
    helped = subprocess.run(
        [str(BIN / "clearline"), "serve", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
    )
    return "--workers" in helped.stdout and "--log-level" in helped.stdout


def make_servers(args: argparse.Namespace, env: dict[str, str]) -> list[Server]:
    nginx_port = free_port()
    conf = args.work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=args.work, port=nginx_port, location=BASELINE_LOCATION))
    nginx = [NGINX, "-p", str(args.work), "-e", "stderr", "-c", str(conf)]
    servers = [Server(NGINX_NAME, nginx, nginx_port, env, signal.SIGQUIT, BASELINE_LOCATION)]
    if not args.no_floor:
        port = free_port()
        floor = uvicorn_command("floor_app:app", port, "--app-dir", str(HERE), "--lifespan", "off")
        servers.append(Server(FLOOR_NAME, floor, port, env, signal.SIGINT, "clid="))
    for name, logging in ((OFF_NAME, False), (ON_NAME, True)):
        port = free_port()
        if args.via_cli:
            command = [str(BIN / "clearline"), "serve", "--port", str(port), "--workers", "1", "--log-level", "warning"]
        else:
            command = uvicorn_command("clearline.app:create_served_app", port, "--factory")
        server_env = {**env, "CLEARLINE_RUN_JOBS": "false", "CLEARLINE_CLICK_LOGGING": str(logging).lower()}
        # No probe on the logging-on server: every click it stores must be one wrk counted.
        servers.append(Server(name, command, port, server_env, signal.SIGINT, "" if logging else "clid="))
    return servers


# --- load ---------------------------------------------------------------------------------------------------
def run_wrk(server: Server, args: argparse.Namespace, connections: int, seconds: float) -> WrkResult:
    command = [WRK, "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(args.hook)]
    command.append(f"http://127.0.0.1:{server.port}/r/{args.code}")
    cpu_before = children_cpu_seconds()
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH-RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk against {server.name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("BENCH-RESULT "))
    return WrkResult(
        connections=connections,
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1e3,
        p99_ms=data["p99_us"] / 1e3,
        status_errors=data["status"],
        socket_errors={key: data[key] for key in ("connect", "read", "write", "timeout")},
        cpu_s=children_cpu_seconds() - cpu_before,
    )


def measure(server: Server, args: argparse.Namespace, connections: int) -> None:
    assert server.proc is not None
    db = args.db_cpu.ticks() if args.db_cpu.local else {}
    cpu, busy = server_cpu_seconds(server.proc.pid), machine_busy_seconds()
    result = run_wrk(server, args, connections, args.seconds)
    time.sleep(SETTLE_S)
    server_cpu, machine_busy = server_cpu_seconds(server.proc.pid) - cpu, machine_busy_seconds() - busy
    run = Run(result, server_cpu, machine_busy, args.db_cpu.since(db))
    server.runs.setdefault(connections, []).append(run)


def drive(servers: list[Server], args: argparse.Namespace) -> None:
    """Warm every server up, then measure in rounds; each round starts with the next server."""
    if args.warmup > 0:
        for server in servers:
            server.warmup = run_wrk(server, args, args.connections[0], args.warmup)
    for round_ in range(args.rounds):
        order = servers[round_ % len(servers) :] + servers[: round_ % len(servers)]
        for connections in args.connections:
            for server in order:
                print(f"  round {round_ + 1}/{args.rounds}: {server.name} at {connections} connections", flush=True)
                measure(server, args, connections)


# --- the report ---------------------------------------------------------------------------------------------
def machine_facts() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), "unknown")
    nginx = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip()
    wrk = subprocess.run([WRK, "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(len(os.sched_getaffinity(0))),
        "CPU": model,
        "kernel": platform.release(),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "Python": platform.python_version(),
        "nginx": nginx.removeprefix("nginx version: nginx/"),
        "wrk": wrk.split(" Copyright")[0].removeprefix("wrk "),
    }


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def runs_table(servers: list[Server], with_db: bool) -> str:
    header = ["server", "conns", "requests", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "by round", "others"]
    header += ["db µs/req"] if with_db else []
    rows = []
    for server in servers:
        for connections in server.runs:
            pooled = server.at(connections)
            db = pooled.db_cpu_us_per_request
            rows.append(
                [
                    server.name,
                    str(connections),
                    str(pooled.requests) + (f" ({pooled.errors} errors)" if pooled.errors else ""),
                    f"{pooled.rps:,.0f}",
                    f"{pooled.median('p50_ms'):.2f}",
                    f"{pooled.median('p99_ms'):.2f}",
                    f"{pooled.cpu_us_per_request:.1f}",
                    pooled.cpu_spread,
                    f"{pooled.others_cpus:.2f}",
                    *([f"{db:.1f}" if db is not None else "n/a"] if with_db else []),
                ]
            )
    return table(header, rows)


def click_check(on: Server, stored: int) -> tuple[str, bool]:
    """Stored clicks against wrk's count. A request in flight when wrk stops (at most one per connection; plus
    any wrk gave up on by timeout or read error) can be answered and stored without wrk counting it, so the
    check passes when every answered redirect was stored and any surplus fits that bound."""
    sent = on.all_wrk()
    counted = sum(w.requests for w in sent)
    redirects = counted - sum(w.status_errors for w in sent)
    in_flight = sum(w.connections + w.socket_errors["timeout"] + w.socket_errors["read"] for w in sent)
    surplus = stored - redirects
    detail = f"{stored} clicks stored, wrk counted {counted} requests ({counted - redirects} non-2xx/3xx); "
    detail += "exact match" if stored == counted else f"no exact match: {surplus:+d} (≤ {in_flight} in flight at stops)"
    if not on.graceful:
        detail += "; the server had to be killed"
    return detail, on.graceful and 0 <= surplus <= in_flight


def targets_table(by_name: dict[str, Server], stored: int) -> str:
    def verdict(ok: bool) -> str:
        return "MET" if ok else "MISSED"

    nginx, off, on = by_name[NGINX_NAME].pooled, by_name[OFF_NAME].pooled, by_name[ON_NAME].pooled

    def judged(pooled: Pooled) -> float:
        """Server CPU per request plus, on a local PostgreSQL, its backends' (where the clicks' storage runs)."""
        return pooled.cpu_us_per_request + (pooled.db_cpu_us_per_request or 0.0)

    on_us, off_us, nginx_us = judged(on), judged(off), nginx.cpu_us_per_request  # (nginx has no database)
    ratio = on_us / nginx_us
    runs_on = by_name[ON_NAME].runs
    top = by_name[ON_NAME].at(P99_AT_CONNECTIONS if P99_AT_CONNECTIONS in runs_on else max(runs_on))
    p99s = ", ".join(f"{r.wrk.p99_ms:.1f}" for r in top.runs)
    cost = (1 - off_us / on_us) * 100
    clicks, clicks_ok = click_check(by_name[ON_NAME], stored)
    rows = [
        [
            f"CPU per redirect ≤ {MAX_CPU_RATIO:g}× nginx",
            f"{on_us:.1f} vs {nginx_us:.1f} µs = {ratio:.2f}× "
            f"(per-CPU throughput {100 / ratio:.0f} % of nginx's)",
            verdict(ratio <= MAX_CPU_RATIO),
        ],
        [
            f"p99 ≤ {MAX_P99_MS:g} ms at {top.runs[0].wrk.connections} connections",
            f"median p99 {top.median('p99_ms'):.2f} ms (rounds: {p99s}), median p50 {top.median('p50_ms'):.2f} ms",
            verdict(top.median("p99_ms") <= MAX_P99_MS),
        ],
        [
            f"click logging costs ≤ {MAX_LOGGING_COST_PCT:g} % of throughput",
            f"{1e6 / on_us:,.0f} vs {1e6 / off_us:,.0f} redirects per CPU-second "
            f"on/off = {cost:.2f} % (wall-clock: {on.rps:,.0f} vs {off.rps:,.0f} req/s, "
            f"{(1 - on.rps / off.rps) * 100:.1f} %)",
            verdict(cost <= MAX_LOGGING_COST_PCT),
        ],
        ["no click lost on a graceful shutdown (SIGINT)", clicks, verdict(clicks_ok)],
    ]
    return table(["target (Clearline with click logging on)", "measured", "verdict"], rows)


def report(facts: dict[str, str], args: argparse.Namespace, servers: list[Server], stored: int) -> str:
    by_name = {server.name: server for server in servers}
    serve = (
        "clearline serve --workers 1 --log-level warning"
        if args.via_cli
        else "python -m uvicorn clearline.app:create_served_app --factory --workers 1 --log-level warning "
        "--proxy-headers (`clearline serve` here has no --workers/--log-level)"
    )
    lines = [
        "Clearline redirect benchmark",
        "  " + ", ".join(f"{k}: {v}" for k, v in facts.items()),
        f"  database: {args.db_kind}; wrk -t2 on loopback, GET /r/{args.code}; {args.rounds} round(s) of "
        f"{args.seconds:g} s per server and connection count, after a {args.warmup:g} s warm-up",
        f"  clearline: {serve}, CLEARLINE_RUN_JOBS=false",
        "  CPU µs/req: server utime+stime / completed requests, over all rounds (by round: lowest–highest);",
        "  p50/p99: median of the rounds; others: CPUs busy with neither the server nor wrk (the machine's noise)",
    ]
    if args.db_cpu.local:
        lines.append(
            "  db µs/req: CPU of the PostgreSQL backends of the bench database per request (not in CPU µs/req; "
            "the targets add it to Clearline's: storing the clicks is part of a redirect's cost)"
        )
    lines += ["", runs_table(servers, args.db_cpu.local), ""]
    if floor := by_name.get(FLOOR_NAME):
        floor_us, nginx_us = floor.pooled.cpu_us_per_request, by_name[NGINX_NAME].pooled.cpu_us_per_request
        share = floor_us / by_name[ON_NAME].pooled.cpu_us_per_request * 100
        lines += [
            f"uvicorn floor (a bare ASGI 302 under the same uvicorn settings): {floor_us:.1f} µs/req = "
            f"{floor_us / nginx_us:.2f}× nginx, {share:.0f} % of Clearline's with logging on.",
            "",
        ]
    lines += ["Targets (PRODUCT.md, 'Speed it must reach')", targets_table(by_name, stored)]
    for server in servers:
        if not server.graceful:
            lines.append(f"{server.name} did not exit on its stop signal and was killed")
        if server.log_tail.strip():
            lines += ["", f"{server.name} printed (last lines):", server.log_tail]
    return "\n".join(lines)


def results_markdown(report_text: str) -> str:
    command = " ".join(["uv run python bench/redirect/run.py", *sys.argv[1:]])
    return f"# Redirect benchmark results\n\n`{command}`\n\n```text\n{report_text}\n```\n"


# --- main ---------------------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Clearline's redirect against nginx `return 302` (see README.md).")
    parser.add_argument("--seconds", type=float, default=10, help="length of each measured wrk run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="measured runs per server and connections (3)")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured wrk run per server first (2 s)")
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 64], help="wrk connections (8 64)")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server, e.g. postgresql://postgres@127.0.0.1:5432/postgres; a temporary database is "
        "created on it and dropped afterwards (default: a temporary SQLite file)",
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the bare-uvicorn floor")
    parser.add_argument("--results", type=Path, help="also write the report as Markdown to this file")
    args = parser.parse_args()
    if args.database_url and not args.database_url.startswith("postgres"):
        parser.error("--database-url must be a postgresql:// URL")
    if args.rounds < 1 or args.seconds <= 0:
        parser.error("--rounds and --seconds must be positive")
    return args


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through every clean-up below


def main() -> int:
    args = parse_args()
    for tool in (NGINX, WRK, str(BIN / "clearline")):
        if not os.access(tool, os.X_OK):
            sys.exit(f"{tool} is missing; see bench/redirect/README.md")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    facts = machine_facts()
    with contextlib.ExitStack() as stack:
        args.work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="clearline-bench-")))
        url = stack.enter_context(temporary_database(args.database_url, args.work))
        args.db_kind = "PostgreSQL, a temporary database" if args.database_url else "SQLite, a temporary file"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLEARLINE_")}
        env["CLEARLINE_DATABASE_URL"] = url
        print(f"seeding ({args.db_kind}) ...", flush=True)
        seed(env, args.work)
        engine = make_engine(url)
        stack.callback(engine.dispose)
        args.code = pick_live_code(engine)
        args.db_cpu = DatabaseCpu(engine)
        args.hook = args.work / "done.lua"
        args.hook.write_text(WRK_DONE_HOOK)
        args.via_cli = serve_takes_workers()

        servers = make_servers(args, env)
        print("starting " + ", ".join(s.name for s in servers) + " ...", flush=True)
        for server in servers:
            server.proc = stack.enter_context(running(server, args.work))
        for server in servers:
            wait_until_serving(server, args.work)
            if server.probe_for:
                probe(server, args.code)
        before = count_clicks(engine)
        drive(servers, args)
        for server in servers:
            stop_gracefully(server)
            server.log_tail = log_tail(server.name, args.work)
        stored = count_clicks(engine) - before

        text_report = report(facts, args, servers, stored)
        print("\n" + text_report)
        if args.results:
            args.results.write_text(results_markdown(text_report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

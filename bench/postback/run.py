"""Signed order postback benchmark: `POST /api/v1/postbacks/{brand}/orders` against the same server's redirect
rate, p99 latency, and "durable before the 200".

    uv run python bench/postback/run.py [--seconds 15] [--connections 8 64]
                                        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Steps: a fresh database (a SQLite file by default; with --database-url a new database on that PostgreSQL
server) is migrated and seeded with `clearline demo --no-serve`; a postback secret is installed with
`clearline.ingest.signatures.rotate`; `clearline serve` is started on a free port. Then:
1. baselines, on the quiet server: wrk on `GET /r/{code}` of a live link of the seeded brand for --seconds,
   per connection count (before any postback: the drainer working off a backlog would slow them);
per connection count:
2. calibration: a 3 s postback run that also warms the server up; its rate sizes the measured run;
3. measured: N = calibrated rate × --seconds distinct orders (coupon, signed click or unattributed, 1-4
   lines from the brand's catalog) are built and signed (Standard Webhooks) right before wrk starts, so no
   timestamp is older than the 300 s tolerance; wrk (postback.lua) sends each exactly once and records the
   order id of every 200 answer; run.py stops wrk when the last answer is in;
4. drain: the drainer is watched for at most --drain-seconds working off the backlog.
Where processing runs (--drain): `serve`, the server's own background drainer sharing its process (the default on
SQLite, whose single writer the two would otherwise queue on), or `worker`, a `clearline worker --no-jobs` process
at nice 10 beside `serve --` started with CLEARLINE_DRAIN_IN_SERVE=false (the default on PostgreSQL). The worker's
CPU (its process and its PostgreSQL backends, told apart by application_name) is reported beside the server's,
not in it: the server's figure is the intake's.
After each measured run the inbox is compared with the answers: every order answered 200 must be stored, and
the counts must be equal (processing comes after the 200; how far it got is reported beside). Last, the crash
check: a postback run during which the server is killed with SIGKILL; every order answered 200 before the kill
must be in the database. The server, wrk, the database and the scratch directory are removed at the end, also
after a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchkit  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import Engine, make_url  # noqa: E402

HERE = Path(__file__).resolve().parent
WRK = "/usr/bin/wrk"
TOLERANCE_S = 300  # Standard Webhooks: a timestamp further than this from the server's clock is refused

# PRODUCT.md, "Speed it must reach" (signed postbacks).
MIN_SHARE_OF_REDIRECT = 0.50
MAX_P99_MS = 10.0

REDIRECT_HOOK = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH-RESULT {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50_us": %.1f, "p90_us": %.1f, "p99_us": %.1f, "max_us": %.1f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass
class Program:
    """What the seeded brand offers a postback: where to send it, how to sign it, what to put in it."""

    slug: str
    secret: str
    link_code: str
    skus: list[tuple[str, int]]
    coupons: list[str]
    clicks: list[tuple[str, dt.datetime]]
    click_secret: str


@dataclass
class WrkRun:
    label: str
    connections: int
    data: dict  # type: ignore[type-arg]
    server_cpu_s: float
    elapsed_s: float
    answered: set[str] = field(default_factory=set)
    complete: bool = True
    oldest_signature_s: float = 0.0
    waited_s: float = 0.0  # before a baseline: how long the server took to answer /healthz again
    worker_cpu_s: float = 0.0  # --drain worker: the worker's process and backends during the run

    @property
    def good(self) -> int:
        return int(self.data.get("ok", self.data["requests"] - self.data["status"]))

    @property
    def rate(self) -> float:
        return self.good / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def errors(self) -> str:
        kinds = {"status": "non-2xx/3xx", "timeout": "timeout", "connect": "connect", "read": "read", "write": "write"}
        found = [f"{label} {self.data[key]}" for key, label in kinds.items() if self.data[key]]
        return ", ".join(found) or "0"


# --- set-up -------------------------------------------------------------------------------------------------
def prepare_program() -> Program:
    """Install a postback secret and collect the brand's link, SKUs, coupons and clicks."""
    from clearline.auth.actor import Actor
    from clearline.config import get_settings
    from clearline.demo.seed import BRAND_SLUG
    from clearline.ingest import signatures
    from clearline.kit.db import unit_of_work
    from clearline.models import Brand, Click, CouponCode, Link, Sku

    now = dt.datetime.now(dt.UTC)
    with unit_of_work() as session:
        brand = session.scalar(select(Brand).where(Brand.slug == BRAND_SLUG))
        if brand is None:
            raise RuntimeError("the seeded database has no pilot brand")
        secret, _ = signatures.rotate(session, Actor.system("bench"), brand_id=brand.id, kind="postback")
        code = session.scalar(
            select(Link.code)
            .where(Link.brand_id == brand.id, Link.status == "live", Link.is_single_use.is_(False))
            .where(Link.expires_at > now)
            .order_by(Link.id)
            .limit(1)
        )
        skus = [(s, p) for s, p in session.execute(select(Sku.sku, Sku.price_amount).where(Sku.brand_id == brand.id))]
        coupons = list(
            session.scalars(
                select(CouponCode.code).where(
                    CouponCode.brand_id == brand.id,
                    CouponCode.creator_id.is_not(None),
                    CouponCode.is_single_use.is_(False),
                )
            )
        )
        clicks = [
            (click_id, at if at.tzinfo else at.replace(tzinfo=dt.UTC))
            for click_id, at in session.execute(
                select(Click.click_id, Click.at)
                .join(Link, Link.id == Click.link_id)
                .where(Link.brand_id == brand.id, Click.outcome == "live", Click.is_bot.is_(False))
            )
        ]
    if not code or not skus or not coupons or not clicks:
        raise RuntimeError("the seeded brand lacks a live link, SKUs, creator coupons or clicks")
    return Program(BRAND_SLUG, secret, code, skus, coupons, clicks, get_settings().secret_key)


def build_requests(program: Program, prefix: str, count: int, port: int, seed: int) -> list[bytes]:
    """`count` distinct signed order postbacks as raw HTTP/1.1 requests, timestamped now."""
    from standardwebhooks.webhooks import Webhook

    from clearline.kit.signing import Signer

    rng = random.Random(seed)
    hook = Webhook(program.secret)
    clicks = Signer(program.click_secret, "click-id")
    now = dt.datetime.now(dt.UTC)
    stamp = str(int(now.timestamp()))
    path = f"/api/v1/postbacks/{program.slug}/orders"
    requests = []
    for n in range(count):
        order_id = f"{prefix}-{n:07d}"
        lines = []
        for sku, price in rng.choices(program.skus, k=rng.choice([1, 1, 2, 3, 4])):
            quantity = rng.choice([1, 1, 2, 3])
            lines.append({"sku": sku, "quantity": quantity, "unit_price": f"{price // 100}.{price % 100:02d}"})
        body: dict[str, object] = {
            "order_id": order_id,
            "created_at": (now - dt.timedelta(minutes=rng.randint(1, 600))).isoformat(),
            "currency": "USD",
            "customer": {"id": f"c-{rng.randint(1, 50_000)}", "new_customer": rng.random() < 0.6},
            "lines": lines,
            "shipping": "4.95",
            "tax": "0.00",
        }
        roll = rng.random()
        if roll < 0.35:
            body["coupon_codes"] = [rng.choice(program.coupons)]
        elif roll < 0.75:
            click_id, clicked_at = rng.choice(program.clicks)
            body["click_id"] = clicks.sign(click_id)
            body["created_at"] = min(clicked_at + dt.timedelta(minutes=rng.randint(2, 600)), now).isoformat()
        data = json.dumps(body, separators=(",", ":"))
        message_id = f"msg_{order_id}"
        signature = hook.sign(msg_id=message_id, timestamp=now, data=data)
        raw = data.encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(raw)}\r\nwebhook-id: {message_id}\r\nwebhook-timestamp: {stamp}\r\n"
            f"webhook-signature: {signature}\r\n\r\n"
        )
        requests.append(head.encode() + raw)
    return requests


def write_request_files(work: Path, requests: list[bytes], threads: int) -> None:
    for thread in range(threads):
        with (work / f"requests-{thread}.bin").open("wb") as out:
            for raw in requests[thread::threads]:
                out.write(f"{len(raw)}\n".encode() + raw)
        (work / f"answered-{thread}.txt").unlink(missing_ok=True)
        (work / f"done-{thread}").unlink(missing_ok=True)


def read_answered(work: Path, threads: int) -> set[str]:
    found: set[str] = set()
    for thread in range(threads):
        path = work / f"answered-{thread}.txt"
        if path.exists():
            found.update(line for line in path.read_text().splitlines() if line)
    return found


# --- load ---------------------------------------------------------------------------------------------------
def parse_result(done: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH-RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return json.loads(line.removeprefix("BENCH-RESULT "))  # type: ignore[no-any-return]


WORKER_APP_NAME = "clearline-worker"  # the worker's PostgreSQL connections, told apart from the server's


def worker_backends(args: argparse.Namespace) -> set[int]:
    """The pids of the worker's PostgreSQL backends (asked of the server's maintenance database, not the bench's)."""
    if args.worker is None or not args.pg_database:
        return set()
    import psycopg

    with psycopg.connect(args.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            (args.pg_database, WORKER_APP_NAME),
        ).fetchall()
    return {pid for (pid,) in rows}


def cpu_reading(args: argparse.Namespace, server: subprocess.Popen[bytes]) -> tuple[float, float]:
    """(server CPU s, worker CPU s) so far: each process with its own PostgreSQL backends."""
    server_s = benchkit.process_cpu_seconds(server.pid)
    worker_s = benchkit.process_cpu_seconds(args.worker.pid) if args.worker is not None else 0.0
    if args.pg_database:
        theirs = worker_backends(args)
        server_s += benchkit.postgres_backends_cpu(args.pg_database, exclude=theirs)
        worker_s += sum(benchkit.process_cpu_seconds(pid) for pid in theirs)
    return server_s, worker_s


def wrk_redirect(
    args: argparse.Namespace, server: subprocess.Popen[bytes], port: int, code: str, connections: int, seconds: float
) -> WrkRun:
    hook = args.work / "redirect.lua"
    hook.write_text(REDIRECT_HOOK)
    before = cpu_reading(args, server)[0]
    command = [
        WRK,
        f"-t{args.threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--latency",
        "-s",
        str(hook),
        f"http://127.0.0.1:{port}/r/{code}",
    ]
    data = parse_result(subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120))
    return WrkRun(
        "redirect", connections, data, cpu_reading(args, server)[0] - before, data["duration_us"] / 1e6
    )


def wrk_postbacks(
    args: argparse.Namespace,
    server: subprocess.Popen[bytes],
    port: int,
    label: str,
    connections: int,
    *,
    exact: bool,
    seconds: float,
    built_at: float,
    kill_after: float | None = None,
) -> WrkRun:
    """One wrk run over the request files in args.work. Exact: each request once, wrk stopped at the last answer."""
    script = args.work / "postback.lua"
    source = (HERE / "postback.lua").read_text()
    script.write_text(source.replace("@DIR@", str(args.work)).replace("@EXACT@", "true" if exact else "false"))
    limit = max(3 * seconds, 60) if exact else seconds
    command = [
        WRK,
        f"-t{args.threads}",
        f"-c{connections}",
        f"-d{limit:g}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}/",
    ]
    before, worker_before = cpu_reading(args, server)
    started = time.monotonic()
    complete = True
    with benchkit.child(command, log=args.work / "wrk.out") as proc:
        deadline = started + limit + 30
        killed = False
        while proc.poll() is None and time.monotonic() < deadline:
            if kill_after is not None and not killed and time.monotonic() - started >= kill_after:
                benchkit.stop_group(server, signal.SIGKILL)  # the crash: no shutdown, no flush, nothing
                killed = True
            if exact and all((args.work / f"done-{t}").exists() for t in range(args.threads)):
                proc.send_signal(signal.SIGINT)  # wrk sleeps out -d otherwise; SIGINT ends it and prints
                proc.wait(timeout=60)
                break
            time.sleep(0.01)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=60)
        if exact:  # complete only if every thread saw its last answer (not if wrk ran out its -d)
            complete = all((args.work / f"done-{t}").exists() for t in range(args.threads))
    finished = time.time()
    wall = time.monotonic() - started
    after, worker_after = cpu_reading(args, server)
    cpu = after - before if server.poll() is None else 0.0
    output = (args.work / "wrk.out").read_text(errors="replace")
    (args.work / "wrk.out").unlink()
    data = parse_result(subprocess.CompletedProcess(command, proc.returncode, output, ""))
    # Without any answer, wrk's own duration is no fallback: stopped threads make it garbage (a run printed
    # -13,109 s); the wall time of the wrk process is an upper bound that cannot flatter the rate.
    answered_span = data["last_at"] - data["first_at"] if data["first_at"] else 0.0
    elapsed = answered_span if answered_span > 0 else wall
    run = WrkRun(label, connections, data, cpu, elapsed, read_answered(args.work, args.threads), complete)
    run.worker_cpu_s = worker_after - worker_before
    run.oldest_signature_s = finished - built_at
    return run


def wait_until_responsive(port: int, timeout: float = 180) -> float:
    """After a postback run, until /healthz answers within a second again (a server still busy with abandoned
    requests would otherwise slow the next baseline); the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(OSError, http.client.HTTPException):
            if benchkit.http_get(port, "/healthz", timeout=1)[0] == 200:
                break
        time.sleep(0.5)
    return time.monotonic() - started


# --- checks -------------------------------------------------------------------------------------------------
def stored_ids(engine: Engine, prefix: str) -> tuple[set[str], set[str], int]:
    """(inbox external ids, order external ids, unhandled inbox rows) of one run's orders."""
    from clearline.models import InboxEvent, Order

    pattern = prefix + "-%"
    with engine.connect() as conn:
        inbox = set(conn.scalars(select(InboxEvent.external_id).where(InboxEvent.external_id.like(pattern))))
        orders = set(conn.scalars(select(Order.external_id).where(Order.external_id.like(pattern))))
        unhandled = conn.scalar(
            select(func.count())
            .select_from(InboxEvent)
            .where(InboxEvent.external_id.like(pattern), InboxEvent.handled_at.is_(None))
        )
    return inbox, orders, int(unhandled or 0)


def settle(
    engine: Engine, prefix: str, *, handled: bool, timeout: float = 120
) -> tuple[set[str], set[str], int, float]:
    """Wait until the run's rows stop changing (and, if `handled`, every inbox row is processed);
    (inbox ids, order ids, unhandled rows, seconds waited)."""
    started = time.monotonic()
    previous = None
    while True:
        inbox, orders, unhandled = stored_ids(engine, prefix)
        state = (len(inbox), len(orders), unhandled)
        if (state == previous and (unhandled == 0 or not handled)) or time.monotonic() - started > timeout:
            return inbox, orders, unhandled, time.monotonic() - started
        previous = state
        time.sleep(0.5)


@dataclass
class Durability:
    label: str
    answered: int
    inbox: int
    orders: int
    missing: int  # answered 200 but not stored
    unanswered_stored: int  # stored without a 200 (in flight when wrk stopped, or cut off by the kill)
    unhandled: int
    exact: bool

    @property
    def judged(self) -> bool:
        return self.answered > 0

    @property
    def ok(self) -> bool:
        # Durable means stored in the inbox (committed) before the 200; processing (the orders table) comes
        # after, in the background, and is measured by the drain.
        if self.missing:
            return False
        return not self.exact or self.inbox == self.answered

    def text(self) -> str:
        return (
            f"{self.label}: {self.answered:,} answered 200, {self.inbox:,} inbox rows, "
            f"{self.missing} answered but not stored, {self.unanswered_stored} stored without a 200 answer; "
            f"processed so far: {self.orders:,} orders, {self.unhandled:,} inbox rows still waiting"
        )


def durability(engine: Engine, run: WrkRun, prefix: str, *, exact: bool) -> Durability:
    inbox, orders, unhandled, _ = settle(engine, prefix, handled=False)
    answered = {x for x in run.answered if x.startswith(prefix + "-")}
    return Durability(
        run.label,
        len(answered),
        len(inbox),
        len(orders),
        len(answered - inbox),
        len(inbox - answered),
        unhandled,
        exact,
    )


@dataclass
class Drain:
    """The background drainer working off the backlog a run left, watched for at most --drain-seconds."""

    label: str
    backlog: int  # inbox events waiting when the run ended
    left: int
    failed: int  # events the drainer tried and kept with an error (left for `clearline events replay`)
    seconds: float

    @property
    def done(self) -> int:
        return self.backlog - self.left

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0


def waiting(engine: Engine) -> tuple[int, int]:
    """(inbox events the drainer has not tried, events it tried and kept with an error)."""
    from clearline.models import InboxEvent

    unhandled = InboxEvent.handled_at.is_(None)
    with engine.connect() as conn:
        todo = conn.scalar(select(func.count()).select_from(InboxEvent).where(unhandled, InboxEvent.error == ""))
        failed = conn.scalar(select(func.count()).select_from(InboxEvent).where(unhandled, InboxEvent.error != ""))
    return int(todo or 0), int(failed or 0)


def measure_drain(engine: Engine, label: str, limit_s: float) -> Drain:
    started = time.monotonic()
    backlog, failed_before = waiting(engine)
    left, failed = backlog, failed_before
    while left and time.monotonic() - started < limit_s:
        time.sleep(0.25)
        left, failed = waiting(engine)
    return Drain(label, backlog, left, failed - failed_before, time.monotonic() - started)


# --- main ---------------------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15, help="target length of each measured run (default 15)")
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 64], help="wrk connections (default 8 64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server URL: a temporary database is created on it (default: a temporary SQLite file)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=60,
        help="after each measured run, watch the drainer work off the backlog for at most this long (default 60)",
    )
    parser.add_argument(
        "--drain",
        choices=("serve", "worker"),
        help="where processing runs: in serve's process, or a `clearline worker` beside it "
        "(default: serve on SQLite, worker on PostgreSQL)",
    )
    parser.add_argument("--no-results", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args()
    args.drain = args.drain or ("worker" if args.database_url else "serve")
    args.worker = None
    if args.database_url and not args.database_url.startswith("postgres"):
        parser.error("--database-url must be a postgresql:// URL")
    if args.seconds * 2 > TOLERANCE_S - 60:
        parser.error("--seconds too long: signatures must stay inside the 300 s tolerance")
    return args


def main() -> int:
    args = parse_args()
    facts = benchkit.machine_facts()
    facts["wrk"] = subprocess.run([WRK, "-v"], capture_output=True, text=True).stdout.splitlines()[0].split(" Copy")[0]
    if args.database_url:
        facts["postgresql"] = benchkit.postgres_version(args.database_url)
    from clearline.kit.db import make_engine

    with benchkit.scratch("postback") as work, contextlib.ExitStack() as stack:
        args.work = work
        url = stack.enter_context(benchkit.database(args.database_url, work, "postback"))
        args.pg_database = make_url(url).database if args.database_url else None
        benchkit.use_database(url)
        print(
            f"migrating and seeding {'PostgreSQL' if args.database_url else 'SQLite'} (clearline demo --no-serve) ...",
            flush=True,
        )
        benchkit.seed_demo()
        from clearline.kit.db import engine_for

        stack.callback(lambda: engine_for(url).dispose())  # the settings' engine, used by prepare_program
        program = prepare_program()
        engine = make_engine(url)
        stack.callback(engine.dispose)

        port = benchkit.free_port()
        log = work / "server.log"
        serve = [str(benchkit.BIN / "clearline"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        serve_env = dict(os.environ, CLEARLINE_DRAIN_IN_SERVE="false") if args.drain == "worker" else None
        server = stack.enter_context(benchkit.child(serve, log=log, env=serve_env))
        if args.drain == "worker":
            drain = ["nice", "-n", "10", str(benchkit.BIN / "clearline"), "worker", "--no-jobs"]
            worker_env = dict(os.environ, PGAPPNAME=WORKER_APP_NAME, CLEARLINE_DRAIN_IN_SERVE="false")
            args.worker = stack.enter_context(benchkit.child(drain, log=work / "worker.log", env=worker_env))
        benchkit.wait_for_http(server, port, log=log)
        status, headers, _ = benchkit.http_get(port, f"/r/{program.link_code}")
        if status != 302 or "clid=" not in headers.get("location", ""):
            raise RuntimeError(f"GET /r/{program.link_code} answered {status}; expected a 302 with a click id")
        probe = build_requests(program, "PROBE", 1, port, seed=1)[0]
        head, body = probe.split(b"\r\n\r\n", 1)
        probe_headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
        status, answer = benchkit.http_post(port, f"/api/v1/postbacks/{program.slug}/orders", body, probe_headers)
        if status != 200:
            raise RuntimeError(f"a signed postback answered {status}: {answer[:500]!r}\n{benchkit.tail(log)}")

        # Every baseline first, on a quiet server: after a postback run the drainer works off the backlog in
        # the background, and a redirect baseline measured then would be slowed by it (flattering the ratio).
        redirects: dict[int, WrkRun] = {}
        for connections in args.connections:
            print(f"{connections} connections: redirect baseline ...", flush=True)
            recovered = wait_until_responsive(port)
            wrk_redirect(args, server, port, program.link_code, connections, 2)  # warm-up
            redirects[connections] = wrk_redirect(args, server, port, program.link_code, connections, args.seconds)
            redirects[connections].waited_s = recovered

        runs: list[tuple[WrkRun, WrkRun, Durability, Drain]] = []
        for index, connections in enumerate(args.connections):
            print(f"{connections} connections: postback calibration ...", flush=True)
            calibration_size = 20_000
            write_request_files(
                work, build_requests(program, f"PBC{index}", calibration_size, port, seed=index), args.threads
            )
            calibration = wrk_postbacks(
                args, server, port, "calibration", connections, exact=False, seconds=3, built_at=time.time()
            )
            count = max(int(calibration.rate * args.seconds), 20 * connections, 200)
            # The measured run starts on a worked-off inbox, as the redirect baselines did: the calibration's
            # backlog is the processing's to catch up with now, not during the measurement.
            print(f"{connections} connections: waiting for the calibration's backlog to be processed ...", flush=True)
            calibration_drain = measure_drain(engine, "calibration", args.drain_seconds * 3)
            if calibration_drain.left:
                print(f"  ({calibration_drain.left:,} events still waiting: the measured run shares with them)")
            print(
                f"{connections} connections: {count:,} postbacks (calibrated at {calibration.rate:,.0f}/s) ...",
                flush=True,
            )
            prefix = f"PB{index}"
            built_at = time.time()
            write_request_files(work, build_requests(program, prefix, count, port, seed=100 + index), args.threads)
            postbacks = wrk_postbacks(
                args, server, port, "postbacks", connections, exact=True, seconds=args.seconds, built_at=built_at
            )
            # Counts must match exactly only when every request got its answer; after a cut-off run, requests
            # still in flight may be stored without a 200, so only "every 200 is stored" is checked then.
            durable = durability(engine, postbacks, prefix, exact=postbacks.complete)
            print(f"{connections} connections: watching the drainer (at most {args.drain_seconds:g} s) ...", flush=True)
            drain = measure_drain(engine, f"after {connections} conns", args.drain_seconds)
            runs.append((redirects[connections], postbacks, durable, drain))

        print("crash check: SIGKILL the server during a postback run ...", flush=True)
        top = max(args.connections)
        write_request_files(work, build_requests(program, "PBX", 20_000, port, seed=999), args.threads)
        crash = wrk_postbacks(
            args, server, port, "crash", top, exact=False, seconds=5, built_at=time.time(), kill_after=2.0
        )
        crash_check = durability(engine, crash, "PBX", exact=False)
        server_log = benchkit.tail(log, 40)

    report = render(facts, args, runs, crash_check, server_log)
    print("\n" + report)
    if not args.no_results:
        benchkit.write_results(
            HERE / "RESULTS.md",
            "Signed postback benchmark results",
            facts,
            report,
            section="PostgreSQL" if args.database_url else "SQLite",
        )
    return 0


def render(
    facts: dict[str, str],
    args: argparse.Namespace,
    runs: list[tuple[WrkRun, WrkRun, Durability, Drain]],
    crash: Durability,
    server_log: str,
) -> str:
    lines = [
        "Clearline signed postback benchmark",
        "  " + ", ".join(f"{k}: {v}" for k, v in facts.items()),
        f"  database: {'PostgreSQL (temporary database)' if args.database_url else 'SQLite (temporary file)'}; "
        f"server: clearline serve (one process, as shipped); processing: "
        + (
            "a `clearline worker` process at nice 10 (serve with CLEARLINE_DRAIN_IN_SERVE=false)"
            if args.drain == "worker"
            else "serve's own drainer, in its process"
        )
        + f"; wrk -t{args.threads} on loopback",
        "",
    ]
    rows = []
    for redirect, postbacks, _, _ in runs:
        for run in (redirect, postbacks):
            rows.append(
                [
                    run.label,
                    str(run.connections),
                    f"{run.good:,}",
                    f"{run.elapsed_s:.2f}",
                    f"{run.rate:,.0f}",
                    f"{run.data['p50_us'] / 1e3:.2f}",
                    f"{run.data['p90_us'] / 1e3:.2f}",
                    f"{run.data['p99_us'] / 1e3:.2f}",
                    f"{run.server_cpu_s * 1e6 / run.good:,.0f}" if run.good else "-",
                    *([f"{run.worker_cpu_s:.2f}"] if args.drain == "worker" else []),
                    run.errors,
                ]
            )
    lines += [
        benchkit.table(
            [
                "run",
                "conns",
                "answered",
                "seconds",
                "per s",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "server CPU µs/req",
                *(["worker CPU s"] if args.drain == "worker" else []),
                "errors",
            ],
            rows,
        )
    ]
    lines += [
        "  (server CPU: the clearline serve process"
        + (" plus the database's PostgreSQL backends" if args.database_url else "")
        + ", from /proc"
        + (
            "; worker CPU: the worker process and its backends during the run, not in the server's figure)"
            if args.drain == "worker"
            else ")"
        ),
        "",
        "Drainer (processing after the 200: attribution, commission, ledger), watched after each measured run",
        benchkit.table(
            ["after", "backlog", "processed", "seconds", "per s", "left", "kept with an error"],
            [
                [
                    d.label,
                    f"{d.backlog:,}",
                    f"{d.done:,}",
                    f"{d.seconds:.1f}",
                    f"{d.rate:,.0f}",
                    f"{d.left:,}" + (f" (~{d.left / d.rate:,.0f} s more)" if d.left and d.rate else ""),
                    f"{d.failed:,}",
                ]
                for _, _, _, d in runs
            ],
        ),
        "  (backlog: every inbox event not yet tried, calibration runs' and earlier runs' included)",
        "",
    ]
    targets = []
    for redirect, postbacks, durable, _ in runs:
        share = postbacks.rate / redirect.rate if redirect.rate else 0.0
        p99 = postbacks.data["p99_us"] / 1e3
        c = postbacks.connections
        targets += [
            [
                f"{c} conns: postbacks ≥ {MIN_SHARE_OF_REDIRECT:.0%} of the redirect rate",
                f"{postbacks.rate:,.0f} / {redirect.rate:,.0f} per s = {share:.1%}",
                benchkit.verdict(share >= MIN_SHARE_OF_REDIRECT),
            ],
            [
                f"{c} conns: p99 ≤ {MAX_P99_MS:g} ms",
                f"p99 {p99:.2f} ms (p50 {postbacks.data['p50_us'] / 1e3:.2f})"
                + (
                    f"; {timeouts} requests got no answer within wrk's 30 s timeout (not in the percentiles)"
                    if (timeouts := postbacks.data["timeout"])
                    else ""
                ),
                benchkit.verdict(p99 <= MAX_P99_MS and postbacks.good > 0 and postbacks.complete and not timeouts),
            ],
            [
                f"{c} conns: durable before the 200 (stored == answered)",
                durable.text()
                + f"; signatures {postbacks.oldest_signature_s:.0f} s old at the end (limit {TOLERANCE_S})"
                + (f"; {postbacks.data['wrapped']} re-sent after errors" if postbacks.data["wrapped"] else "")
                + ("" if postbacks.complete else "; the run was cut off, so only 'every 200 is stored' is judged"),
                benchkit.verdict(durable.ok) if durable.judged else "NOT JUDGED (no 200 answer)",
            ],
        ]
    crash_verdict = benchkit.verdict(crash.ok) if crash.judged else "NOT JUDGED (no 200 before the kill)"
    targets.append(["crash: every 200 before a SIGKILL is stored", crash.text(), crash_verdict])
    lines += ["Targets (PRODUCT.md, 'Speed it must reach')", benchkit.table(["target", "measured", "verdict"], targets)]
    waits = [f"{r.connections} conns {r.waited_s:.0f} s" for r, _, _, _ in runs if r.waited_s > 1]
    if waits:
        lines += [
            "",
            "the server did not answer /healthz within 1 s before a baseline (busy with earlier requests); "
            "waited: " + ", ".join(waits),
        ]
    statuses = [f"{r.label} {r.connections}: {r.data.get('statuses')}" for _, r, _, _ in runs if r.data.get("statuses")]
    if statuses:
        lines += ["", "non-200 answers: " + "; ".join(statuses)]
    if "Traceback" in server_log or "ERROR" in server_log:
        lines += ["", "server log (last lines):", server_log]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: one payout run over a million commission lines on PostgreSQL.

    uv run python bench/payout/run.py [--server postgresql://postgres@127.0.0.1:5432/postgres]
                                      [--lines 1000000] [--payees 10000] [--profile] [--keep]

A fresh database is created on the server, migrated with the real Alembic migrations, and bulk-loaded
(set-based ``INSERT … SELECT generate_series``, the fastest way in) with one brand, its payees' contracts
and acceptances, N cleared commission lines spread over P creators, and the ledger entries those lines
would have posted (an accrual and a clearing each, four postings). Then the measured phases run, each in a
child process of its own so that its peak memory (``ru_maxrss``) is its own:

  baseline   the plain aggregate a payout needs at the least, in the same engine and run:
             SELECT payee, sum(amount) … GROUP BY payee over the same table (warm, best of three)
  run        payout service.create_run (clearing, planning, one payout line per payee, one item per line)
  approve    service.approve_run by a second finance user (the ledger moves available → payouts)
  export     export.export: the payout CSV (§6) and the detail CSV (§7), written to files

The figures are printed and written to bench/payout/RESULTS.md with the date and nproc; the database is
dropped at the end (``--keep`` leaves it for inspection). ``--profile`` prints the top of a cProfile of
create_run and of the export.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import multiprocessing
import os
import platform
import pstats
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def _psycopg(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1] if url.startswith(("postgresql://", "postgres://")) else url


def create_database(server: str) -> str:
    base = make_url(_psycopg(server))
    name = f"clearline_bench_payout_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")


def point_settings_at(url: str) -> None:
    from clearline.config import get_settings

    os.environ["CLEARLINE_DATABASE_URL"] = url
    get_settings.cache_clear()


# --- loading ---------------------------------------------------------------------------------------------


def seed(url: str) -> dict[str, Any]:
    """The small things through the real services: a brand, two finance users, a contract template."""
    from sqlalchemy.orm import Session

    from clearline.auth import service as auth_service
    from clearline.auth.actor import Actor
    from clearline.brand import service as brand_service
    from clearline.brand.schemas import BrandCreate
    from clearline.contract import repository as contract_repository
    from clearline.contract import service as contract_service
    from clearline.contract.schemas import TemplateCreate
    from clearline.kit.db import engine_for

    system = Actor.system("bench")
    with Session(engine_for(url), expire_on_commit=False) as session:
        brand = brand_service.create_brand(
            session,
            system,
            data=BrandCreate(
                slug="bench",
                name="Bench Brand",
                allowed_domains=["shop.example.com"],
                gl_account="6100",
                cost_center="CC-BENCH",
            ),
        )
        users = [
            auth_service.create_user(
                session,
                system,
                email=f"finance{i}@bench.example",
                name=f"Finance {i}",
                password=None,
                grants=[("finance", brand.id)],
            )
            for i in (1, 2)
        ]
        template = contract_service.create_template(
            session,
            system,
            data=TemplateCreate(name="Bench CPA", brand_id=brand.id, body="The creator promotes the brand's SKUs."),
        )
        version = contract_repository.versions(session, template.id)[0]
        session.commit()
        return {"brand_id": brand.id, "finance": [u.id for u in users], "version_id": version.id}


# Ids are set explicitly from offsets read before each step (a fresh database, one writer), so every reference
# is arithmetic — line g pays creator first_creator + (g % payees), its accrual is entry e0 + 2(g − 1) + 1 —
# and no step has to join millions of rows back to find an id. The sequences are moved past them at the end.
LOAD_STEPS: list[tuple[str, str]] = [
    (
        "creators",
        """
        INSERT INTO creators (id, brand_id, handle, name, email, channels, country, vendor_id, payout_reference)
        SELECT :c0 + g, :brand, 'bench' || g, 'Creator ' || g, '', '["instagram"]', 'US',
               'V' || lpad(g::text, 6, '0'), ''
        FROM generate_series(1, :payees) AS g""",
    ),
    (
        "contracts",
        """
        INSERT INTO contracts (id, brand_id, creator_id, template_version_id, model, currency, terms, status,
                               starts_at)
        SELECT :k0 + g, :brand, :c0 + g, :version, 'cpa', 'USD',
               '{"model": "cpa", "currency": "USD", "cpa": {"per": "unit", "rates": {"new": {"a": "8.00"}}}}',
               'accepted', :start
        FROM generate_series(1, :payees) AS g""",
    ),
    (
        "contract_acceptances",
        """
        INSERT INTO contract_acceptances (contract_id, template_version_id, accepted_by_id, accepted_at,
                                          terms_sha256)
        SELECT :k0 + g, :version, :finance, :start, repeat('0', 64) FROM generate_series(1, :payees) AS g""",
    ),
    (
        "commission_lines",
        """
        INSERT INTO commission_lines (id, key, brand_id, line_no, sku, contract_id, contract_version, creator_id,
            payee_type, payee_id, rule, period, tier, rate, customer_type, quantity, order_currency,
            net_revenue_amount, gross_margin_amount, unit_price_amount, unit_cost_amount, fx_rate, currency, amount,
            reversed_amount, note, earned_at, eligible_at, cleared_at, reserve_amount, hold_reason)
        SELECT :l0 + g, 'bench' || chr(58) || g, :brand, 1, 'SKU-' || (g % 1000), :k0 + 1 + g % :payees, 1,
               :c0 + 1 + g % :payees, 'creator', :c0 + 1 + g % :payees, 'cpa_unit', to_char(:earned, 'YYYY-MM'),
               'a', '8.00', 'new', 1 + g % 3, 'USD', 4900 * (1 + g % 3), 3675 * (1 + g % 3), 4900, 1225, '1', 'USD',
               800 * (1 + g % 3), 0, '', :earned + make_interval(secs => g % 86400), :eligible, :cleared, 0, ''
        FROM generate_series(1, :lines) AS g""",
    ),
    (
        "ledger_accounts",
        """
        INSERT INTO ledger_accounts (id, code, brand_id, owner_type, owner_id, kind, currency)
        SELECT :a0 + 2 * g - 1 + k.n, concat_ws(chr(58), 'b' || :brand, 'creator', :c0 + g, k.kind, 'USD'),
               :brand, 'creator', :c0 + g, k.kind, 'USD'
        FROM generate_series(1, :payees) AS g CROSS JOIN (VALUES (0, 'pending'), (1, 'available')) AS k(n, kind)
        UNION ALL
        SELECT :a0 + 2 * :payees + 1, concat_ws(chr(58), 'b' || :brand, 'brand', :brand, 'expense', 'USD'),
               :brand, 'brand', :brand, 'expense', 'USD'""",
    ),
    (
        "ledger_entries",
        """
        INSERT INTO ledger_entries (id, key, kind, brand_id, commission_line_id, memo, effective_at, created_at)
        SELECT :e0 + 2 * g - 1 + k.n, k.kind || chr(58) || (:l0 + g), k.kind, :brand, :l0 + g, k.memo,
               CASE WHEN k.n = 0 THEN :earned + make_interval(secs => g % 86400) ELSE :eligible END, :cleared
        FROM generate_series(1, :lines) AS g
        CROSS JOIN (VALUES (0, 'commission.accrued', 'bench order'),
                           (1, 'commission.cleared', 'verification window ended')) AS k(n, kind, memo)""",
    ),
    (
        "ledger_postings",
        """
        INSERT INTO ledger_postings (entry_id, account_id, amount, currency)
        SELECT :e0 + 2 * g - 1 + p.entry,
               CASE p.account WHEN 'expense' THEN :a0 + 2 * :payees + 1
                              WHEN 'pending' THEN :a0 + 2 * (1 + g % :payees) - 1
                              ELSE :a0 + 2 * (1 + g % :payees) END,
               p.sign * 800 * (1 + g % 3), 'USD'
        FROM generate_series(1, :lines) AS g
        CROSS JOIN (VALUES (0, 'expense', -1), (0, 'pending', 1), (1, 'pending', -1), (1, 'available', 1))
             AS p(entry, account, sign)""",
    ),
]
OFFSETS = {
    "c0": "creators",
    "k0": "contracts",
    "l0": "commission_lines",
    "a0": "ledger_accounts",
    "e0": "ledger_entries",
}
SEQUENCES = (
    "creators",
    "contracts",
    "contract_acceptances",
    "commission_lines",
    "ledger_accounts",
    "ledger_entries",
    "ledger_postings",
)


def load(url: str, facts: dict[str, Any], *, lines: int, payees: int) -> dict[str, float]:
    """Bulk-load payees, contracts, cleared lines and their ledger entries; returns seconds per step."""
    engine = create_engine(url)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    params: dict[str, Any] = {
        "brand": facts["brand_id"],
        "version": facts["version_id"],
        "finance": facts["finance"][0],
        "payees": payees,
        "lines": lines,
        "start": now - dt.timedelta(days=120),
        "earned": now - dt.timedelta(days=70),
        "eligible": now - dt.timedelta(days=40),
        "cleared": now - dt.timedelta(days=39),
    }
    seconds: dict[str, float] = {}
    with engine.begin() as conn:
        # Foreign-key triggers off for the load: every reference is arithmetic on ids inserted in this
        # transaction, and the checks below verify the result. Needs a superuser, as the default postgres role is.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for key, table in OFFSETS.items():
            params[key] = conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one()
        for name, sql in LOAD_STEPS:
            started = time.perf_counter()
            conn.execute(text(sql), params)
            seconds[name] = time.perf_counter() - started
            print(f"  loaded {name:<22} {seconds[name]:7.1f} s", flush=True)
        for table in SEQUENCES:
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
            )
        unbalanced = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT entry_id FROM ledger_postings GROUP BY entry_id "
                "HAVING sum(amount) <> 0) AS u"
            )
        ).scalar_one()
        mismatched = conn.execute(
            text(
                "SELECT count(*) FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id "
                "JOIN commission_lines l ON l.id = e.commission_line_id "
                "JOIN ledger_accounts a ON a.id = p.account_id "
                "WHERE a.owner_type = 'creator' AND a.owner_id <> l.payee_id"
            )
        ).scalar_one()
        assert unbalanced == mismatched == 0, (unbalanced, mismatched)
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    seconds["vacuum analyze"] = time.perf_counter() - started
    engine.dispose()
    return seconds


# --- measured phases, each in a child process ------------------------------------------------------------


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _in_child(target: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe(duplex=False)

    def body() -> None:
        try:
            result = target(*args)
            result["peak_rss_mib"] = _peak_mib()
            child.send(result)
        except BaseException as exc:  # report, then fail the child
            child.send({"error": f"{type(exc).__name__}: {exc}"})
            raise

    process = context.Process(target=body)
    process.start()
    result = parent.recv()
    process.join()
    if "error" in result:
        raise SystemExit(f"phase failed: {result['error']}")
    return result


def phase_baseline(url: str, brand_id: int) -> dict[str, Any]:
    from clearline.kit.db import engine_for

    engine = engine_for(url)
    sql = text(
        "SELECT payee_type, payee_id, currency, sum(amount - reversed_amount - reserve_amount) "
        "FROM commission_lines WHERE brand_id = :brand AND cleared_at IS NOT NULL "
        "GROUP BY payee_type, payee_id, currency"
    )
    timings = []
    rows = 0
    for _ in range(3):
        with engine.connect() as conn:
            started = time.perf_counter()
            rows = len(conn.execute(sql, {"brand": brand_id}).all())
            timings.append(time.perf_counter() - started)
    return {"seconds": min(timings), "rows": rows}


def _actor(session: Any, user_id: int) -> Any:
    from clearline.auth import service as auth_service
    from clearline.models import User

    user = session.get(User, user_id)
    return auth_service.actor_for(session, user)


def _profiled(profile: bool, work: Callable[[], Any]) -> tuple[Any, str]:
    if not profile:
        return work(), ""
    profiler = cProfile.Profile()
    result = profiler.runcall(work)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    return result, out.getvalue()


def phase_run(brand_id: int, finance_id: int, profile: bool) -> dict[str, Any]:
    from clearline.kit.db import unit_of_work
    from clearline.payout import service

    started = time.perf_counter()
    with unit_of_work() as session:
        actor = _actor(session, finance_id)
        run, report = _profiled(
            profile, lambda: service.create_run(session, actor, brand_id=brand_id, as_of=dt.datetime.now(dt.UTC))
        )
        lines = len(service.run_lines(session, run.id))
        totals = service.totals(session, run.id)
        run_id = run.id
    return {
        "seconds": time.perf_counter() - started,
        "run_id": run_id,
        "lines": lines,
        "totals": totals,
        "profile": report,
    }


def phase_approve(run_id: int, finance_id: int) -> dict[str, Any]:
    from clearline.kit.db import unit_of_work
    from clearline.payout import service

    started = time.perf_counter()
    with unit_of_work() as session:
        service.approve_run(session, _actor(session, finance_id), run_id=run_id)
    return {"seconds": time.perf_counter() - started}


def phase_export(run_id: int, finance_id: int, out_dir: str, profile: bool) -> dict[str, Any]:
    from clearline.kit.db import unit_of_work
    from clearline.payout import export

    started = time.perf_counter()
    with unit_of_work() as session:
        actor = _actor(session, finance_id)
        (payout, detail), report = _profiled(profile, lambda: export.export(session, actor, run_id=run_id))
    payout_path, detail_path = Path(out_dir) / "payout.csv", Path(out_dir) / "detail.csv"
    payout_path.write_text(payout)
    detail_path.write_text(detail)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "payout_rows": payout.count("\n") - 1,
        "detail_rows": detail.count("\n") - 1,
        "payout_bytes": payout_path.stat().st_size,
        "detail_bytes": detail_path.stat().st_size,
        "profile": report,
    }


def check(url: str, brand_id: int, run_id: int, lines: int) -> dict[str, Any]:
    """The run paid every line once, and the money left the payees' available balances exactly."""
    engine = create_engine(url)
    with engine.connect() as conn:
        facts = conn.execute(
            text(
                """
            SELECT (SELECT count(*) FROM payout_items WHERE run_id = :run),
                   (SELECT count(DISTINCT commission_line_id) FROM payout_items WHERE run_id = :run),
                   (SELECT sum(total_amount) FROM payout_lines WHERE run_id = :run),
                   (SELECT sum(amount) FROM commission_lines WHERE brand_id = :brand),
                   (SELECT coalesce(sum(p.amount), 0) FROM ledger_postings p
                      JOIN ledger_accounts a ON a.id = p.account_id
                     WHERE a.brand_id = :brand AND a.kind = 'available')""",
            ),
            {"run": run_id, "brand": brand_id},
        ).one()
    engine.dispose()
    items, distinct, paid, earned, available = facts
    assert items == distinct == lines, (items, distinct, lines)
    assert paid == earned, (paid, earned)
    assert available == 0, available
    return {"items": items, "paid_minor": int(paid)}


# --- report ----------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "python": platform.python_version()}


def load_average() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def write_results(figures: dict[str, Any]) -> str:
    m = figures["machine"]
    base = figures["baseline"]["seconds"]
    total = figures["run"]["seconds"] + figures["approve"]["seconds"] + figures["export"]["seconds"]
    rows = [
        ("baseline: SELECT payee, sum(amount) GROUP BY payee", figures["baseline"]),
        ("create_run (clear, plan, lines, items)", figures["run"]),
        ("approve_run (ledger: available → payouts)", figures["approve"]),
        ("export (payout CSV + detail CSV, written)", figures["export"]),
    ]
    table = ["| phase | wall time | × baseline | peak RSS |", "|---|---:|---:|---:|"]
    for label, phase in rows:
        table.append(
            f"| {label} | {phase['seconds']:.2f} s | {phase['seconds'] / base:.0f}× | {phase['peak_rss_mib']:.0f} MiB |"
        )
    table.append(f"| **run + approve + export** | **{total:.2f} s** | **{total / base:.0f}×** | |")
    load_total = sum(figures["load"].values())
    text_out = "\n".join(
        [
            "# Payout run benchmark — results",
            "",
            f"Measured {figures['date']} on {m['nproc']} CPU(s) ({m['cpu']}), Python {m['python']}, "
            f"PostgreSQL {figures['postgres']} on 127.0.0.1. Load average (1 / 5 / 15 min) as the measured phases "
            f"began: {figures['load_before']}; as they ended: {figures['load_after']} — the machine was shared, so "
            "every figure is inflated, the short baseline most unevenly: read the ratios as a range across runs.",
            "",
            f"{figures['lines']:,} cleared commission lines across {figures['payees']:,} payees (one brand, USD); "
            f"the run paid {figures['run']['lines']:,} payout lines, {figures['check']['items']:,} items, "
            f"total {figures['run']['totals']}. Files: payout CSV {figures['export']['payout_rows']:,} rows "
            f"({figures['export']['payout_bytes'] / 1e6:.1f} MB), detail CSV {figures['export']['detail_rows']:,} rows "
            f"({figures['export']['detail_bytes'] / 1e6:.1f} MB). Checked: every line paid once, the run's total "
            "equals the lines' sum, and every payee's available balance is back to zero.",
            "",
            *table,
            "",
            f"Loading (not measured against anything; set-based INSERT … SELECT): {load_total:.0f} s in all — "
            + ", ".join(f"{k} {v:.1f} s" for k, v in figures["load"].items())
            + ".",
            "",
            "Each phase runs in a child process of its own, so its peak RSS (`ru_maxrss`) is its own; the baseline's "
            "is the floor of a Python process with the app imported. The baseline is the best of three warm runs.",
            "",
            "Reproduce: `uv run python bench/payout/run.py` (see README.md).",
            "",
        ]
    )
    (HERE / "RESULTS.md").write_text(text_out)
    return text_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("CLEARLINE_BENCH_PG", DEFAULT_SERVER))
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--payees", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of create_run and the export")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    sys.setrecursionlimit(10_000)

    url = create_database(args.server)
    print(f"database {make_url(url).database}", flush=True)
    try:
        migrate(url)
        point_settings_at(url)
        facts = seed(url)
        print(f"loading {args.lines:,} commission lines for {args.payees:,} payees …", flush=True)
        loaded = load(url, facts, lines=args.lines, payees=args.payees)
        from clearline.kit.db import engine_for

        engine_for(url).dispose()  # children open their own connections
        figures: dict[str, Any] = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "lines": args.lines,
            "payees": args.payees,
            "load": loaded,
        }
        with create_engine(url).connect() as conn:
            figures["postgres"] = conn.execute(text("SHOW server_version")).scalar_one().split()[0]
        figures["load_before"] = load_average()
        figures["baseline"] = _in_child(phase_baseline, url, facts["brand_id"])
        print(f"baseline   {figures['baseline']['seconds']:8.2f} s", flush=True)
        figures["run"] = _in_child(phase_run, facts["brand_id"], facts["finance"][0], args.profile)
        print(
            f"create_run {figures['run']['seconds']:8.2f} s  peak {figures['run']['peak_rss_mib']:.0f} MiB", flush=True
        )
        figures["approve"] = _in_child(phase_approve, figures["run"]["run_id"], facts["finance"][1])
        print(
            f"approve    {figures['approve']['seconds']:8.2f} s  peak {figures['approve']['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="clearline-bench-payout-") as out_dir:
            figures["export"] = _in_child(
                phase_export, figures["run"]["run_id"], facts["finance"][0], out_dir, args.profile
            )
        print(
            f"export     {figures['export']['seconds']:8.2f} s  peak {figures['export']['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
        figures["load_after"] = load_average()
        figures["check"] = check(url, facts["brand_id"], figures["run"]["run_id"], args.lines)
        if args.profile:
            print(figures["run"]["profile"])
            print(figures["export"]["profile"])
        print()
        print(write_results(figures))
    finally:
        if args.keep:
            print(f"kept {url}")
        else:
            from clearline.kit.db import engine_for

            engine_for(url).dispose()
            drop_database(url)


if __name__ == "__main__":
    main()

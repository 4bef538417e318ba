"""Bulk order CSV benchmark: the import's acceptance (`csv_import.accept_orders`: checked and stored raw) against a
raw PostgreSQL COPY of the same file, then its processing, then a replay of the same file (every order a duplicate).

    uv run python bench/csv_import/run.py [--rows 200000] [--orders 80000]
                                          [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Steps: a fresh database on the PostgreSQL server is migrated and seeded (`clearline demo --no-serve`: the
pilot brand, its SKUs, creator coupon codes, links and a month of clicks). An order CSV in the INTERFACES §5
format is generated from that data: `--orders` orders over `--rows` lines, a third with a creator coupon,
two fifths with a signed click id of a stored click, the rest unattributed. Then, in this order:
1. baseline: psycopg 3 `COPY ... FROM STDIN (FORMAT csv, HEADER)` of the file into a plain table with the
   same columns (typed, no index, no constraint), committed;
2. acceptance: `csv_import.accept_orders` on the file in one unit of work, committed: the whole file checked and
   every order stored raw in the inbox, durable and ready to process (from the bytes in memory to the commit);
3. processing: `csv_import.process_accepted` on what was accepted, in a second unit of work, committed — as
   `clearline import orders` runs the two (the CLI's own start-up is left out); the full import is 2 + 3;
4. replay: `csv_import.import_orders` (acceptance and processing in one call) on the same file again;
5. for information, a replay of the same orders in other bytes (the file re-exported: its orders in reverse
   order, each order's rows as they were), which the byte-for-byte look-up cannot recognise.
Every phase reports rows/s and the CPU time of this process and of the database's PostgreSQL backends.
Checks: the import reports every order imported and none rejected or waiting; the replay reports every order
a duplicate (and so does the re-exported one); orders, order lines, inbox events, attributions, commission lines
and ledger entries are counted before and after the replays and must not change. The database is dropped at the
end, also after a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchkit  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

HERE = Path(__file__).resolve().parent

# PRODUCT.md, "Speed it must reach" (bulk CSV import).
MIN_SHARE_OF_COPY = 0.70
MIN_REPLAY_SPEEDUP = 2.0

COLUMNS = "order_id,created_at,currency,sku,quantity,unit_price,discount,coupon_code,click_id,customer_id,new_customer"
COPY_TABLE = """
CREATE TABLE bench_copy_orders (
    order_id varchar(128), created_at timestamptz, currency char(3), sku varchar(64), quantity integer,
    unit_price numeric(18, 2), discount numeric(18, 2), coupon_code varchar(64), click_id varchar(64),
    customer_id varchar(128), new_customer boolean
)
"""


def generate_csv(rows: int, orders: int, seed: int = 20261124) -> bytes:
    """`orders` orders spread over `rows` lines, built from the seeded brand's SKUs, coupons and clicks."""
    from clearline.config import get_settings
    from clearline.demo.seed import BRAND_SLUG
    from clearline.kit.db import new_session
    from clearline.kit.signing import Signer
    from clearline.models import Brand, Click, CouponCode, Link, Sku

    rng = random.Random(seed)
    with new_session() as session:
        brand_id = session.scalar(select(Brand.id).where(Brand.slug == BRAND_SLUG))
        skus = list(session.execute(select(Sku.sku, Sku.price_amount).where(Sku.brand_id == brand_id)))
        coupons = list(
            session.scalars(
                select(CouponCode.code).where(
                    CouponCode.brand_id == brand_id,
                    CouponCode.creator_id.is_not(None),
                    CouponCode.is_single_use.is_(False),
                )
            )
        )
        clicks = list(
            session.execute(
                select(Click.click_id, Click.at)
                .join(Link, Link.id == Click.link_id)
                .where(Link.brand_id == brand_id, Click.outcome == "live", Click.is_bot.is_(False))
            )
        )
    if not skus or not coupons or not clicks:
        raise RuntimeError("the seeded database lacks SKUs, creator coupons or clicks")
    signer = Signer(get_settings().secret_key, "click-id")
    now = dt.datetime.now(dt.UTC)
    # Lines per order: `rows` split over `orders` as evenly as possible (1 to 4 lines when rows/orders = 2.5).
    base, extra = divmod(rows, orders)
    sizes = [base + (1 if i < extra else 0) for i in range(orders)]
    for i in range(0, orders - 1, 2):  # vary the sizes pairwise, keeping the total
        if sizes[i] > 1 and rng.random() < 0.5:
            shift = rng.randint(1, sizes[i] - 1)
            sizes[i] -= shift
            sizes[i + 1] += shift
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS.split(","))
    for number, size in enumerate(sizes, start=1):
        roll = rng.random()
        coupon = click = ""
        if roll < 0.35:
            coupon = rng.choice(coupons)
            at = now - dt.timedelta(minutes=rng.randint(60, 60 * 24 * 25))
        elif roll < 0.75:
            click_id, clicked_at = rng.choice(clicks)
            if clicked_at.tzinfo is None:
                clicked_at = clicked_at.replace(tzinfo=dt.UTC)
            click = signer.sign(click_id)
            at = min(clicked_at + dt.timedelta(minutes=rng.randint(2, 600)), now - dt.timedelta(minutes=5))
        else:
            at = now - dt.timedelta(minutes=rng.randint(60, 60 * 24 * 25))
        customer = f"cust-{rng.randint(1, 40_000)}"
        new_customer = rng.choice(["true", "false", ""])
        created = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        for sku, price in rng.choices(skus, k=size):
            quantity = rng.choice([1, 1, 1, 2, 3])
            discount = price * quantity // 5 if coupon else 0
            writer.writerow(
                [
                    f"CSV-{number:08d}",
                    created,
                    "USD",
                    sku,
                    quantity,
                    f"{price // 100}.{price % 100:02d}",
                    f"{discount // 100}.{discount % 100:02d}",
                    coupon,
                    click,
                    customer,
                    new_customer,
                ]
            )
    return out.getvalue().encode()


def reexported(data: bytes) -> bytes:
    """The same orders in other bytes: the orders in reverse order, each order's rows kept together and in order."""
    header, *lines = data.decode().splitlines()
    orders: list[list[str]] = []
    for line in lines:
        if orders and orders[-1][0].split(",", 1)[0] == line.split(",", 1)[0]:
            orders[-1].append(line)
        else:
            orders.append([line])
    return ("\n".join([header, *(line for order in reversed(orders) for line in order)]) + "\n").encode()


def copy_baseline(url: str, data: bytes, meter: benchkit.Meter) -> int:
    """COPY the file into a plain table with the same columns; rows loaded."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        conn.execute(COPY_TABLE)
        conn.commit()
        with meter:
            with conn.cursor() as cur:
                with cur.copy("COPY bench_copy_orders FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                    view = memoryview(data)
                    for start in range(0, len(data), 1 << 20):
                        copy.write(view[start : start + (1 << 20)])
                loaded = cur.rowcount
            conn.commit()
        count = conn.execute("SELECT count(*) FROM bench_copy_orders").fetchone()[0]  # type: ignore[index]
    if count != loaded:
        raise RuntimeError(f"COPY reported {loaded} rows but the table holds {count}")
    return int(loaded)


def run_import(data: bytes, accept: benchkit.Meter, process: benchkit.Meter):  # type: ignore[no-untyped-def]
    """`clearline import orders FILE --brand acme-beauty`, minus the process start-up: accept (check, store raw,
    commit), then process what was accepted (commit)."""
    from clearline.auth.actor import Actor
    from clearline.brand import repository
    from clearline.demo.seed import BRAND_SLUG
    from clearline.ingest import csv_import
    from clearline.kit.db import unit_of_work

    actor = Actor.system("bench")
    with accept, unit_of_work() as session:
        brand = repository.by_slug(session, BRAND_SLUG)
        report, accepted = csv_import.accept_orders(session, actor, brand=brand, data=data, filename="bench-orders.csv")
        csv_import.record_import(session, actor, brand=brand, report=report, filename="bench-orders.csv")
    with process, unit_of_work() as session:
        csv_import.process_accepted(session, report, accepted)
    return report


def run_replay(data: bytes, meter: benchkit.Meter):  # type: ignore[no-untyped-def]
    """A file again through `import_orders` (acceptance and processing in one call), committed."""
    from clearline.auth.actor import Actor
    from clearline.brand import repository
    from clearline.demo.seed import BRAND_SLUG
    from clearline.ingest import csv_import
    from clearline.kit.db import unit_of_work

    with meter, unit_of_work() as session:
        brand = repository.by_slug(session, BRAND_SLUG)
        return csv_import.import_orders(
            session, Actor.system("bench"), brand=brand, data=data, filename="bench-orders.csv"
        )


def counts() -> dict[str, int]:
    from clearline.kit.db import new_session
    from clearline.models import Attribution, CommissionLine, InboxEvent, LedgerEntry, Order, OrderLine

    with new_session() as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (InboxEvent, Order, OrderLine, Attribution, CommissionLine, LedgerEntry)
        }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="order lines in the file (default 200,000)")
    parser.add_argument("--orders", type=int, default=80_000, help="orders in the file (default 80,000)")
    parser.add_argument(
        "--database-url",
        default=benchkit.DEFAULT_PG,
        help="PostgreSQL server (a database is created on it and dropped after)",
    )
    parser.add_argument("--no-results", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        parser.error("the import is compared with PostgreSQL's COPY: --database-url postgresql://...")
    if not 0 < args.orders <= args.rows:
        parser.error("need 0 < --orders <= --rows")
    return args


def main() -> int:
    args = parse_args()
    facts = benchkit.machine_facts()
    facts["postgresql"] = benchkit.postgres_version(args.database_url)
    with benchkit.scratch("csv"), contextlib.ExitStack() as stack:
        url = stack.enter_context(benchkit.postgres_database(args.database_url, "csv"))
        benchkit.use_database(url)
        print("migrating and seeding (clearline demo --no-serve) ...", flush=True)
        benchkit.seed_demo()
        from clearline.kit.db import engine_for

        stack.callback(lambda: engine_for(url).dispose())
        data = generate_csv(args.rows, args.orders)
        rows = data.count(b"\n") - 1
        database = make_url(url).database
        meters = {name: benchkit.Meter(database) for name in ("copy", "accept", "process", "replay", "re-exported")}
        print(f"file: {rows:,} rows, {args.orders:,} orders, {len(data) / 1e6:.1f} MB", flush=True)

        print("COPY (baseline) ...", flush=True)
        copied = copy_baseline(url, data, meters["copy"])
        before = counts()
        print("import ...", flush=True)
        first = run_import(data, meters["accept"], meters["process"])
        after_import = counts()
        print("replay of the same file ...", flush=True)
        replay = run_replay(data, meters["replay"])
        after_replay = counts()
        print("replay of the same orders re-exported (other bytes) ...", flush=True)
        other = run_replay(reexported(data), meters["re-exported"])
        after_other = counts()

    imported = benchkit.Meter()
    for part in (meters["accept"], meters["process"]):
        imported.wall += part.wall
        imported.client_cpu += part.client_cpu
        imported.server_cpu += part.server_cpu
    phases = {"copy": meters["copy"], "accept": meters["accept"], "process": meters["process"]}
    phases |= {"import": imported, "replay": meters["replay"], "re-exported": meters["re-exported"]}
    rate = {name: rows / m.wall for name, m in phases.items()}
    rate["copy"] = copied / meters["copy"].wall
    rows_table = [
        [
            name,
            f"{rows:,}",
            f"{m.wall:.2f}",
            f"{rate[name]:,.0f}",
            f"{m.client_cpu:.2f}",
            f"{m.server_cpu:.2f}",
            f"{rows / m.cpu if m.cpu else 0:,.0f}",
        ]
        for name, m in phases.items()
    ]
    # The acceptance's own steps, timed inside accept_orders: validating the whole file, storing it raw in the
    # inbox (the commit after it is in the acceptance's wall time only). CPU is not split per step.
    for position, step in enumerate(("check", "store"), start=2):
        seconds = first.seconds.get(step, 0.0)
        per_s = f"{rows / seconds if seconds else 0:,.0f}"
        rows_table.insert(position, [f"  accept: {step}", f"{rows:,}", f"{seconds:.2f}", per_s, "", "", ""])
    added = {table: after_import[table] - before[table] for table in before}
    import_ok = (
        first.orders == args.orders and first.duplicates == 0 and not first.rejected and first.failed_processing == 0
    )
    replay_ok = replay.orders == 0 and replay.duplicates == args.orders and not replay.rejected
    other_ok = other.orders == 0 and other.duplicates == args.orders and not other.rejected
    unchanged = after_replay == after_import
    other_unchanged = after_other == after_import
    share = rate["accept"] / rate["copy"]
    full_share = rate["import"] / rate["copy"]
    speedup = rate["replay"] / rate["accept"]
    other_speedup = rate["re-exported"] / rate["accept"]
    targets = [
        [
            f"import ≥ {MIN_SHARE_OF_COPY:.0%} of COPY's rows/s: its acceptance (checked, stored raw, committed)",
            f"{rate['accept']:,.0f} / {rate['copy']:,.0f} = {share:.1%}",
            benchkit.verdict(share >= MIN_SHARE_OF_COPY),
        ],
        [
            "  for information: the full import (acceptance + processing) vs COPY",
            f"{rate['import']:,.0f} / {rate['copy']:,.0f} = {full_share:.1%}",
            "(not the target)",
        ],
        [
            f"duplicate replay ≥ {MIN_REPLAY_SPEEDUP:g}× the acceptance rate",
            f"{rate['replay']:,.0f} / {rate['accept']:,.0f} = {speedup:.2f}×",
            benchkit.verdict(speedup >= MIN_REPLAY_SPEEDUP),
        ],
        [
            "  for information: the same orders re-exported (other bytes, checked order by order)",
            f"{rate['re-exported']:,.0f} / {rate['accept']:,.0f} = {other_speedup:.2f}×",
            "(not the target)",
        ],
        [
            "import: every order in, none rejected or waiting",
            f"{first.orders:,} imported, {first.duplicates} "
            f"duplicates, {len(first.rejected)} rejected, {first.failed_processing} waiting for replay",
            "OK" if import_ok else "FAILED",
        ],
        [
            "replay: nothing counted twice",
            f"{replay.orders} imported, {replay.duplicates:,} duplicates; row counts "
            + ("unchanged" if unchanged else f"CHANGED: {after_import} -> {after_replay}"),
            "OK" if replay_ok and unchanged else "FAILED",
        ],
        [
            "re-exported replay: nothing counted twice",
            f"{other.orders} imported, {other.duplicates:,} duplicates; row counts "
            + ("unchanged" if other_unchanged else f"CHANGED: {after_import} -> {after_other}"),
            "OK" if other_ok and other_unchanged else "FAILED",
        ],
    ]
    report = "\n".join(
        [
            "Clearline bulk order CSV benchmark (PostgreSQL)",
            "  " + ", ".join(f"{k}: {v}" for k, v in facts.items()),
            f"  file: {rows:,} rows, {args.orders:,} orders, {len(data) / 1e6:.1f} MB; the import added "
            + ", ".join(f"{n:,} {table}" for table, n in added.items()),
            "",
            benchkit.table(
                ["phase", "rows", "wall s", "rows/s", "client CPU s", "PostgreSQL CPU s", "rows/CPU-s"], rows_table
            ),
            "  (CPU: this Python process plus the database's PostgreSQL backends, from /proc)",
            "",
            "Targets (PRODUCT.md, 'Speed it must reach')",
            benchkit.table(["target", "measured", "verdict"], targets),
        ]
    )
    print("\n" + report)
    if not args.no_results:
        benchkit.write_results(HERE / "RESULTS.md", "Bulk order CSV benchmark results", facts, report)
    return 0 if import_ok and replay_ok and unchanged and other_ok and other_unchanged else 1


if __name__ == "__main__":
    sys.exit(main())

"""Order processing benchmark: stored inbox events (orders and refunds) applied by the drainer's batches against
the per-event `service.process` path, on SQLite and PostgreSQL, in the same run.

    uv run python bench/processing/run.py [--orders 2000] [--batch 200] [--databases sqlite,postgresql]
                                          [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
                                          [--profile PATH] [--no-results]

Per database: a fresh database is migrated and seeded (`clearline demo --no-serve`: the pilot brand, its SKUs,
creator coupon codes, links, contracts with per-order and per-period caps, a month of clicks). Two sets of
``--orders`` postback orders are generated from that data with the same seed (only the order ids differ): a
third with a creator coupon, a third with a signed click id of a stored click (in ``click_id`` or as ``clid`` in
the landing URL), a sixth with a UTM landing URL naming a creator and the campaign, the rest unattributed; one to
four SKUs a line each; one order in ten gets a refund of part of one line. Then:
1. baseline: the first set is stored in the inbox (not timed), then every event goes through
   `ingest.service.process` (one savepoint each), ``--batch`` events per committed transaction, orders before
   refunds, as the drainer ran before batching;
2. drainer: the second set is stored, then `Drainer.run_batch(--batch)` is called until the inbox is empty
   (`drain_once`: `service.process_batch`, one transaction per batch) — what `clearline serve` runs under backlog.
Each phase reports events/s, wall time, this process's CPU time and the PostgreSQL backends' CPU (from /proc).
Checks: every event of both sets handled without an error, the ledger balanced, and both sets attributed alike
(the same count of orders per rule and creator: attribution does not depend on what was processed before, while
commissions may, through the period caps).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchkit  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

HERE = Path(__file__).resolve().parent


@dataclass
class Program:
    brand_id: int
    skus: list[tuple[str, int]]
    coupons: list[str]
    clicks: list[tuple[str, dt.datetime]]
    handles: list[str]
    campaign: str
    campaign_start: dt.datetime
    click_secret: str


def prepare_program() -> Program:
    from clearline.config import get_settings
    from clearline.demo.seed import BRAND_SLUG
    from clearline.kit.db import new_session
    from clearline.models import Brand, Campaign, Click, CouponCode, Creator, Link, Sku

    def utc(at: dt.datetime) -> dt.datetime:
        return at if at.tzinfo else at.replace(tzinfo=dt.UTC)

    with new_session() as session:
        brand_id = session.scalar(select(Brand.id).where(Brand.slug == BRAND_SLUG))
        assert brand_id is not None, "the seeded database has no pilot brand"
        skus = [(s, p) for s, p in session.execute(select(Sku.sku, Sku.price_amount).where(Sku.brand_id == brand_id))]
        coupons = list(
            session.scalars(
                select(CouponCode.code).where(
                    CouponCode.brand_id == brand_id,
                    CouponCode.creator_id.is_not(None),
                    CouponCode.is_single_use.is_(False),
                )
            )
        )
        clicks = [
            (click_id, utc(at))
            for click_id, at in session.execute(
                select(Click.click_id, Click.at)
                .join(Link, Link.id == Click.link_id)
                .where(Link.brand_id == brand_id, Click.outcome == "live", Click.is_bot.is_(False))
                .order_by(Click.id)
            )
        ]
        campaign = session.execute(
            select(Campaign.slug, Campaign.starts_at).where(Campaign.brand_id == brand_id).order_by(Campaign.id)
        ).first()
        handles = list(
            session.scalars(
                select(Creator.handle).join(Link, Link.creator_id == Creator.id).where(Link.brand_id == brand_id)
            ).unique()
        )
    if not skus or not coupons or not clicks or campaign is None or not handles:
        raise RuntimeError("the seeded brand lacks SKUs, creator coupons, clicks, a campaign or linked creators")
    return Program(
        brand_id, skus, coupons, clicks, sorted(handles), campaign[0], utc(campaign[1]), get_settings().secret_key
    )


def generate(program: Program, prefix: str, count: int, seed: int) -> tuple[list[str], list[str]]:
    """``count`` order bodies and the refund bodies of one order in ten (JSON text), built from the seeded data."""
    from clearline.kit.signing import Signer

    rng = random.Random(seed)
    signer = Signer(program.click_secret, "click-id")
    now = dt.datetime.now(dt.UTC)
    span = int((now - program.campaign_start).total_seconds() // 60) - 120
    orders, refunds = [], []
    for n in range(count):
        order_id = f"{prefix}-{n:07d}"
        lines = []
        for sku, price in rng.choices(program.skus, k=rng.choice([1, 1, 2, 3, 4])):
            quantity = rng.choice([1, 1, 2, 3])
            discount = price * quantity // 10 if rng.random() < 0.2 else 0
            lines.append(
                {
                    "sku": sku,
                    "quantity": quantity,
                    "unit_price": f"{price // 100}.{price % 100:02d}",
                    "discount": f"{discount // 100}.{discount % 100:02d}",
                }
            )
        at = now - dt.timedelta(minutes=rng.randint(60, span))
        body: dict[str, Any] = {
            "order_id": order_id,
            "currency": "USD",
            "customer": {"id": f"c-{rng.randint(1, 50_000)}", "new_customer": rng.random() < 0.6},
            "lines": lines,
            "shipping": "4.95",
            "tax": "1.20",
            "ip": f"203.0.113.{rng.randint(1, 254)}",
            "user_agent": "Mozilla/5.0 (bench)",
        }
        roll = rng.random()
        if roll < 0.33:
            body["coupon_codes"] = [rng.choice(program.coupons)]
        elif roll < 0.66:
            click_id, clicked_at = rng.choice(program.clicks)
            at = min(clicked_at + dt.timedelta(minutes=rng.randint(2, 600)), now - dt.timedelta(minutes=1))
            signed = signer.sign(click_id)
            if rng.random() < 0.5:
                body["click_id"] = signed
            else:
                body["landing_url"] = f"https://shop.acme-beauty.com/p/serum?clid={signed}"
        elif roll < 0.83:
            handle = rng.choice(program.handles)
            body["landing_url"] = (
                f"https://shop.acme-beauty.com/?utm_source=ig&utm_content={handle}&utm_campaign={program.campaign}"
            )
        body["created_at"] = at.isoformat()
        orders.append(json.dumps(body, separators=(",", ":")))
        if rng.random() < 0.1:
            line = rng.choice(lines)
            price = int(line["unit_price"].replace(".", ""))
            refunds.append(
                json.dumps(
                    {
                        "refund_id": f"{order_id}-r",
                        "order_id": order_id,
                        "created_at": (at + dt.timedelta(hours=rng.randint(1, 48))).isoformat(),
                        "kind": rng.choice(["return", "return", "chargeback"]),
                        "lines": [
                            {"sku": line["sku"], "quantity": 1, "amount": f"{price // 200}.{price // 2 % 100:02d}"}
                        ],
                    },
                    separators=(",", ":"),
                )
            )
    return orders, refunds


def store(program: Program, orders: list[str], refunds: list[str]) -> None:
    from clearline.ingest import service
    from clearline.kit.db import unit_of_work

    with unit_of_work() as session:
        for kind, bodies in (("order", orders), ("refund", refunds)):
            items = [
                (json.loads(body)["refund_id" if kind == "refund" else "order_id"], body, service.body_digest(body))
                for body in bodies
            ]
            service.store_many(session, brand_id=program.brand_id, source="postback", kind=kind, items=items)


def run_baseline(batch: int, meter: benchkit.Meter) -> int:
    """Every untried event through `service.process`, ``batch`` events per transaction, orders then refunds."""
    from sqlalchemy.orm import Session

    from clearline.ingest import service
    from clearline.kit.db import get_engine
    from clearline.models import InboxEvent

    engine = get_engine()
    done = 0
    with meter:
        while True:
            with Session(engine, expire_on_commit=False) as session:
                events: list[InboxEvent] = []
                for kind in ("order", "refund"):
                    if len(events) >= batch:
                        break
                    events += session.scalars(
                        select(InboxEvent)
                        .where(InboxEvent.handled_at.is_(None), InboxEvent.error == "", InboxEvent.kind == kind)
                        .order_by(InboxEvent.handled_at, InboxEvent.id)
                        .limit(batch - len(events))
                    ).all()
                if not events:
                    return done
                for event in events:
                    service.process(session, event)
                session.commit()
                done += len(events)


def run_drainer(batch: int, meter: benchkit.Meter, profile: Path | None) -> int:
    import contextlib as _contextlib

    with _contextlib.suppress(ImportError):  # imported before the clock starts, as in a running server
        import clearline.ingest.processing  # noqa: F401
    from clearline.ingest.drainer import Drainer
    from clearline.kit.db import get_engine

    drainer = Drainer(get_engine(), batch_size=batch)
    done = 0
    profiler = cProfile.Profile() if profile else None
    with meter:
        if profiler:
            profiler.enable()
        while tried := drainer.run_batch(batch):
            done += tried
        if profiler:
            profiler.disable()
    if profiler and profile:
        profiler.dump_stats(str(profile))
    return done


def check(prefixes: list[str]) -> dict[str, Any]:
    """Errors left in the inbox, ledger imbalances, and each set's attributions (rule, creator) counted."""
    from clearline.kit.db import new_session
    from clearline.ledger import service as ledger
    from clearline.models import Attribution, CommissionLine, InboxEvent, Order

    with new_session() as session:
        waiting = session.scalar(select(func.count()).select_from(InboxEvent).where(InboxEvent.handled_at.is_(None)))
        attributed = {}
        commissions = {}
        for prefix in prefixes:
            rows = session.execute(
                select(Attribution.via, Attribution.creator_id)
                .join(Order, Order.id == Attribution.order_id)
                .where(Order.external_id.like(f"{prefix}-%"), Attribution.is_current.is_(True))
            )
            attributed[prefix] = Counter(tuple(row) for row in rows)
            commissions[prefix] = tuple(
                session.execute(
                    select(func.count(), func.coalesce(func.sum(CommissionLine.amount), 0))
                    .join(Order, Order.id == CommissionLine.order_id)
                    .where(Order.external_id.like(f"{prefix}-%"))
                ).one()
            )
        return {
            "waiting": int(waiting or 0),
            "imbalances": ledger.imbalances(session),
            "attributed": attributed,
            "commissions": commissions,
        }


def run_database(server: str | None, work: Path, args: argparse.Namespace) -> tuple[list[list[str]], list[str], bool]:
    label = "postgresql" if server else "sqlite"
    with benchkit.database(server, work, f"proc_{label}") as url, contextlib.ExitStack() as stack:
        benchkit.use_database(url)
        print(f"[{label}] migrating and seeding (clearline demo --no-serve) ...", flush=True)
        benchkit.seed_demo()
        from clearline.kit.db import engine_for

        stack.callback(lambda: engine_for(url).dispose())
        program = prepare_program()
        database = make_url(url).database if server else None
        meters = {name: benchkit.Meter(database) for name in ("per-event process", "drainer batches")}
        sets = {"BASE": generate(program, "BASE", args.orders, 7), "DRAIN": generate(program, "DRAIN", args.orders, 7)}
        events = len(sets["BASE"][0]) + len(sets["BASE"][1])
        print(f"[{label}] {args.orders:,} orders + {len(sets['BASE'][1]):,} refunds a set", flush=True)
        done_base = 0
        if not args.no_baseline:
            store(program, *sets["BASE"])
            print(f"[{label}] baseline: service.process per event ...", flush=True)
            done_base = run_baseline(args.batch, meters["per-event process"])
        store(program, *sets["DRAIN"])
        print(f"[{label}] drainer batches ...", flush=True)
        profile = Path(f"{args.profile}.{label}") if args.profile else None
        done_drain = run_drainer(args.batch, meters["drainer batches"], profile)
        found = check(list(sets))
    rows = []
    for (name, meter), done in zip(meters.items(), (done_base, done_drain), strict=True):
        rows.append(
            [
                label,
                name,
                f"{done:,}",
                f"{meter.wall:.2f}",
                f"{done / meter.wall if meter.wall else 0:,.0f}",
                f"{meter.client_cpu:.2f}",
                f"{meter.server_cpu:.2f}" if server else "-",
                f"{meter.client_cpu / done * 1e3 if done else 0:.2f}",
                f"{meter.cpu / done * 1e3 if done else 0:.2f}",
            ]
        )
    base, drain = meters.values()
    speed = (base.cpu / done_base) / (drain.cpu / done_drain) if done_base and done_drain and drain.cpu else 0.0
    alike = args.no_baseline or found["attributed"]["BASE"] == found["attributed"]["DRAIN"]
    ok = (
        found["waiting"] == 0
        and not found["imbalances"]
        and alike
        and done_drain == events
        and done_base == (0 if args.no_baseline else events)
    )
    notes = [
        f"[{label}] drainer vs per-event: {speed:.1f}× less CPU per event, "
        f"{(done_drain / drain.wall) / (done_base / base.wall) if base.wall and drain.wall else 0:.1f}× the events/s",
        f"[{label}] checks: {found['waiting']} events waiting, {len(found['imbalances'])} ledger imbalances, "
        f"attributions per rule and creator {'identical' if alike else 'DIFFERENT'} in both sets; "
        f"commission lines (count, sum in cents): BASE {found['commissions']['BASE']}, "
        f"DRAIN {found['commissions']['DRAIN']} — {'OK' if ok else 'FAILED'}",
    ]
    return rows, notes, ok


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000, help="orders a set (default 2,000)")
    parser.add_argument("--batch", type=int, default=200, help="events a transaction (the drainer's batch_size, 200)")
    parser.add_argument("--databases", default="sqlite,postgresql", help="sqlite, postgresql or both")
    parser.add_argument("--database-url", default=benchkit.DEFAULT_PG, help="PostgreSQL server")
    parser.add_argument("--profile", help="write the drainer phase's cProfile stats to PATH.<database>")
    parser.add_argument(
        "--no-baseline", action="store_true", help="only the drainer phase (the first set is not stored)"
    )
    parser.add_argument("--no-results", action="store_true", help="do not write RESULTS.md")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    facts = benchkit.machine_facts()
    wanted = [name.strip() for name in args.databases.split(",") if name.strip()]
    if "postgresql" in wanted:
        facts["postgresql"] = benchkit.postgres_version(args.database_url)
    rows: list[list[str]] = []
    notes: list[str] = []
    ok = True
    with benchkit.scratch("processing") as work:
        for name in wanted:
            got_rows, got_notes, got_ok = run_database(args.database_url if name == "postgresql" else None, work, args)
            rows += got_rows
            notes += got_notes
            ok = ok and got_ok
    report = "\n".join(
        [
            "Clearline order processing benchmark",
            "  " + ", ".join(f"{k}: {v}" for k, v in facts.items()),
            f"  {args.orders:,} orders a set (with refunds for one in ten), {args.batch} events a transaction",
            "",
            benchkit.table(
                [
                    "database",
                    "path",
                    "events",
                    "wall s",
                    "events/s",
                    "client CPU s",
                    "PostgreSQL CPU s",
                    "client CPU ms/event",
                    "total CPU ms/event",
                ],
                rows,
            ),
            "  (CPU: this Python process, plus the database's PostgreSQL backends from /proc)",
            "",
            *notes,
        ]
    )
    print("\n" + report)
    if not args.no_results:
        section = "run " + dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        benchkit.write_results(
            HERE / "RESULTS.md", "Order processing benchmark results", facts, report, section=section
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

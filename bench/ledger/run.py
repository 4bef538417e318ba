"""Ledger benchmark: `ledger.post` in batches against one transaction per transfer, and with one hot account.

    uv run python bench/ledger/run.py [--transfers 200000] [--batch 10000] [--single 2000]
                                      [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Three fresh, migrated PostgreSQL databases (one per scenario, so no scenario inherits another's index
growth) on the given server:
- spread: `--transfers` transfers over 2,000 payee accounts and 20 brand expense accounts, posted through
  `ledger.post` in batches of `--batch`, one commit per batch;
- hot: the same number of transfers, every one from the same brand account to the same payee account;
- single (the baseline): `--single` transfers, each in its own session, `post` and commit; its rate is
  measured on that sample and the time for the full count is extrapolated from it (labelled as such).
The spread and hot batches are interleaved (spread batch 1, hot batch 1, spread batch 2, ...), so load
from other processes on the machine hits both alike. Afterwards every database is checked: one entry per
transfer, two postings per entry, no unbalanced entry, `ledger.integrity` finds nothing (no posting without
its entry or account), the expected balances; and a replay of one batch posts nothing. The databases are
dropped at the end, also after a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchkit  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

HERE = Path(__file__).resolve().parent

# PRODUCT.md, "Speed it must reach" (ledger).
MIN_BATCHED_PER_S = 50_000
MIN_SPEEDUP = 40.0
MIN_HOT_SHARE = 0.90

PAYEES = 2_000
WARMUP = 10  # transfers posted first in every database, not measured
BRANDS = 20


def make_transfers(prefix: str, count: int, *, hot: bool):  # type: ignore[no-untyped-def]
    from clearline.ledger.service import AVAILABLE, EXPENSE, PENDING, Account, Transfer

    at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    transfers = []
    for i in range(count):
        brand = 1 if hot else 1 + i % BRANDS
        payee = 1 if hot else 1 + (i * 7919) % PAYEES
        kind = PENDING if hot or i % 3 else AVAILABLE
        transfers.append(
            Transfer(
                key=f"{prefix}:{i}",
                kind="commission.accrued",
                debit=Account(brand, "brand", brand, EXPENSE, "USD"),
                credit=Account(brand, "creator", payee, kind, "USD"),
                amount=100 + i % 9_900,
                commission_line_id=i,
                memo="bench",
                effective_at=at,
            )
        )
    return transfers


def post_batches(factory: sessionmaker[Session], transfers: list, batch: int, meter: benchkit.Meter) -> int:  # type: ignore[type-arg]
    """Post `transfers` in units of work of `batch` transfers each; how many were posted."""
    from clearline.ledger import service as ledger

    posted = 0
    with meter:
        for start in range(0, len(transfers), batch):
            with factory() as session, session.begin():
                posted += ledger.post(session, transfers[start : start + batch]).posted
    return posted


def post_singly(factory: sessionmaker[Session], transfers: list, meter: benchkit.Meter) -> int:  # type: ignore[type-arg]
    from clearline.ledger import service as ledger

    posted = 0
    with meter:
        for transfer in transfers:
            with factory() as session, session.begin():
                posted += ledger.post(session, [transfer]).posted
    return posted


def check(factory: sessionmaker[Session], transfers: list, batch: int) -> tuple[bool, str]:  # type: ignore[type-arg]
    """Counts, balance and idempotency of one database after its run."""
    from clearline.ledger import service as ledger
    from clearline.models import LedgerEntry, LedgerPosting

    with factory() as session:
        entries = session.scalar(select(func.count()).select_from(LedgerEntry)) or 0
        postings = session.scalar(select(func.count()).select_from(LedgerPosting)) or 0
        unbalanced = ledger.imbalances(session)
        integrity = ledger.integrity(session)
        total = session.scalar(select(func.coalesce(func.sum(LedgerPosting.amount), 0)).where(LedgerPosting.amount > 0))
        credit_accounts = ledger.balances(session, owner_type="creator")
    expected_total = sum(t.amount for t in transfers)
    expected_accounts: dict[str, int] = {}
    for t in transfers:
        expected_accounts[t.credit.code] = expected_accounts.get(t.credit.code, 0) + t.amount
    with factory() as session, session.begin():
        replay = ledger.post(session, transfers[:batch])
    ok = (
        entries == len(transfers)
        and postings == 2 * len(transfers)
        and not unbalanced
        and integrity.ok
        and int(total or 0) == expected_total
        and credit_accounts == expected_accounts
        and replay.posted == 0
        and replay.skipped == min(batch, len(transfers))
    )
    detail = (
        f"{entries:,} entries / {len(transfers):,} transfers, {postings:,} postings, {len(unbalanced)} unbalanced, "
        f"{len(integrity.problems)} integrity problems, "
        f"payee balances {'as expected' if credit_accounts == expected_accounts else 'WRONG'}, "
        f"replay of {min(batch, len(transfers)):,}: {replay.posted} posted, {replay.skipped:,} skipped"
    )
    return ok, detail


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=200_000, help="transfers per batched scenario")
    parser.add_argument("--batch", type=int, default=10_000, help="transfers per post() call and commit")
    parser.add_argument("--single", type=int, default=2_000, help="transfers posted one per transaction")
    parser.add_argument(
        "--database-url",
        default=benchkit.DEFAULT_PG,
        help="PostgreSQL server (a database is created on it per scenario and dropped after)",
    )
    parser.add_argument("--no-results", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        parser.error("the ledger benchmark runs on PostgreSQL: --database-url postgresql://...")
    return args


def main() -> int:
    args = parse_args()
    facts = benchkit.machine_facts()
    facts["postgresql"] = benchkit.postgres_version(args.database_url)
    from clearline.kit.db import make_engine

    with benchkit.scratch("ledger"):
        urls = {}
        with contextlib.ExitStack() as stack:
            for name in ("single", "spread", "hot"):
                urls[name] = stack.enter_context(benchkit.postgres_database(args.database_url, f"ledger_{name}"))
                benchkit.use_database(urls[name])
                benchkit.clearline("db", "upgrade")
            engines = {name: make_engine(url) for name, url in urls.items()}
            for engine in engines.values():
                stack.callback(engine.dispose)
            factories = {name: sessionmaker(bind=engine, expire_on_commit=False) for name, engine in engines.items()}

            spread = make_transfers("spread", args.transfers, hot=False)
            hot = make_transfers("hot", args.transfers, hot=True)
            single = make_transfers("single", args.single, hot=False)
            # Warm-up: the first statements of a connection prepare and cache; not measured.
            for name, transfers in (("spread", spread), ("hot", hot), ("single", single)):
                post_batches(factories[name], transfers[:WARMUP], WARMUP, benchkit.Meter())
            meters = {name: benchkit.Meter(make_url(url).database) for name, url in urls.items()}
            posted = {}

            print(f"one transaction per transfer: {len(single) - WARMUP:,} transfers ...", flush=True)
            posted["single"] = post_singly(factories["single"], single[WARMUP:], meters["single"])
            print(f"batched, spread and hot interleaved: 2 × {len(spread) - WARMUP:,} transfers ...", flush=True)
            posted["spread"] = posted["hot"] = 0
            for start in range(WARMUP, len(spread), args.batch):
                for name, transfers in (("spread", spread), ("hot", hot)):
                    chunk = transfers[start : start + args.batch]
                    posted[name] += post_batches(factories[name], chunk, args.batch, meters[name])
            checks = {
                "spread": check(factories["spread"], spread, args.batch),
                "hot": check(factories["hot"], hot, args.batch),
                "single": check(factories["single"], single, 1),
            }

    rates = {name: posted[name] / meters[name].wall for name in meters}
    per_cpu = {name: posted[name] / meters[name].cpu if meters[name].cpu else 0.0 for name in meters}
    n = len(spread) - WARMUP

    def row(label: str, name: str, how: str) -> list[str]:
        m = meters[name]
        return [
            label,
            f"{posted[name]:,}",
            f"{m.wall:.2f}",
            f"{rates[name]:,.0f}",
            f"{m.client_cpu:.2f}",
            f"{m.server_cpu:.2f}",
            f"{per_cpu[name]:,.0f}",
            how,
        ]

    rows = [
        row("batched, spread", "spread", "measured"),
        row("batched, one hot account", "hot", "measured"),
        row("one transaction per transfer", "single", "measured on the sample"),
        [
            f"  … extrapolated to {n:,}",
            f"({n:,})",
            f"({n / rates['single']:.1f})",
            f"({rates['single']:,.0f})",
            "",
            "",
            "",
            "EXTRAPOLATED from the sample rate",
        ],
    ]
    speedup = rates["spread"] / rates["single"]
    hot_share = rates["hot"] / rates["spread"]
    targets = [
        [
            f"batched ≥ {MIN_BATCHED_PER_S:,} transfers/s",
            f"{rates['spread']:,.0f} /s (spread)",
            benchkit.verdict(rates["spread"] >= MIN_BATCHED_PER_S),
        ],
        [
            f"batched ≥ {MIN_SPEEDUP:g}× one transaction per transfer",
            f"{rates['spread']:,.0f} / {rates['single']:,.0f} = {speedup:.1f}×",
            benchkit.verdict(speedup >= MIN_SPEEDUP),
        ],
        [
            f"one hot account ≥ {MIN_HOT_SHARE:.0%} of the spread rate",
            f"{rates['hot']:,.0f} / {rates['spread']:,.0f} = {hot_share:.1%}",
            benchkit.verdict(hot_share >= MIN_HOT_SHARE),
        ],
    ]
    for name, (ok, detail) in checks.items():
        targets.append([f"correct ({name})", detail, "OK" if ok else "FAILED"])
    report = "\n".join(
        [
            "Clearline ledger benchmark (PostgreSQL)",
            "  " + ", ".join(f"{k}: {v}" for k, v in facts.items()),
            f"  batches of {args.batch:,} transfers per post() and commit; {PAYEES:,} payee and {BRANDS} brand "
            "accounts (spread) vs one pair of accounts (hot); one fresh database per scenario",
            "",
            benchkit.table(
                [
                    "scenario",
                    "transfers",
                    "wall s",
                    "transfers/s",
                    "client CPU s",
                    "PostgreSQL CPU s",
                    "transfers/CPU-s",
                    "how",
                ],
                rows,
            ),
            "  (CPU: this Python process plus the PostgreSQL backends of the scenario's database, from /proc;"
            " transfers/CPU-s is the figure least moved by other load on the machine)",
            "",
            "Targets (PRODUCT.md, 'Speed it must reach')",
            benchkit.table(["target", "measured", "verdict"], targets),
        ]
    )
    print("\n" + report)
    if not args.no_results:
        benchkit.write_results(HERE / "RESULTS.md", "Ledger benchmark results", facts, report)
    return 0 if all(ok for ok, _ in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

"""`clearline import orders|fx` and `clearline events replay` against a committed database, as finance runs
them: a bad file imports nothing, quarantine sets bad rows aside, waiting events are replayed."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from clearline.auth import service as auth_service
from clearline.campaign import service as campaign_service
from clearline.campaign.schemas import CampaignCreate
from clearline.cli.main import app as cli
from clearline.contract import service as contract_service
from clearline.ingest import service as ingest
from clearline.kit.db import engine_for
from clearline.link import coupon
from clearline.models import Brand, CommissionLine, InboxEvent, LedgerEntry, Order, Refund
from tests import factories
from tests.conftest import _fresh_database, drop_database, migrate, use_database

HEADER = "order_id,created_at,currency,sku,quantity,unit_price,discount,coupon_code,click_id,customer_id,new_customer\n"
_brands = count(1)


@dataclass
class Program:
    url: str
    brand_id: int
    slug: str
    coupon_code: str
    finance: str
    ops: str


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A committed, migrated database the commands reach through the settings; the previous one restored."""
    url = _fresh_database(tmp_path_factory.mktemp("orders_cli"), f"orders_cli_{os.getpid()}")
    previous = os.environ.get("CLEARLINE_DATABASE_URL")
    try:
        migrate(url)
        use_database(url)
        yield url
    finally:
        if previous is None:
            from clearline.config import get_settings

            os.environ.pop("CLEARLINE_DATABASE_URL", None)
            get_settings.cache_clear()
        else:
            use_database(previous)
        engine_for(url).dispose()
        drop_database(url)


@pytest.fixture
def program(database: str, monkeypatch: pytest.MonkeyPatch) -> Program:
    """A brand of its own per test (a live campaign, a contracted creator with a coupon, a finance user)."""
    monkeypatch.delenv("CLEARLINE_ACTOR", raising=False)
    with Session(engine_for(database), expire_on_commit=False) as session:
        brand = factories.brand(session, slug=f"orders-cli-{next(_brands)}", domains=("shop.example.com",))
        factories.skus(session, brand.id)
        now = dt.datetime.now(dt.UTC)
        campaign = campaign_service.create_campaign(
            session,
            factories.SYSTEM,
            brand_id=brand.id,
            data=CampaignCreate(
                slug="spring",
                name="Spring",
                payment_model="cpa",
                starts_at=now - dt.timedelta(days=20),
                ends_at=now + dt.timedelta(days=20),
                fallback_url="https://shop.example.com/",
            ),
        )
        creator = factories.creator(session, brand.id)
        contract = factories.contract(session, brand.id, creator_id=creator.id)
        party = factories.user(session, ("creator", brand.id), creator_id=creator.id, password=None)
        contract_service.accept_contract(session, auth_service.actor_for(session, party), contract_id=contract.id)
        ops = factories.user(session, ("social_ops", brand.id), password=None)
        code = coupon.issue_creator_code(
            session, auth_service.actor_for(session, ops), campaign_id=campaign.id, creator_id=creator.id
        )
        finance = factories.user(session, ("finance", brand.id), password=None)
        session.commit()
        return Program(database, brand.id, brand.slug, code.code, finance.email, ops.email)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _good(program: Program, *, currency: str = "USD", when: str | None = None) -> str:
    when = when or _now()
    return HEADER + (
        f"O-1,{when},{currency},SKU-A1,2,49.00,4.00,{program.coupon_code},,c-1,true\n"
        f"O-1,{when},{currency},SKU-B1,1,24.00,,{program.coupon_code},,c-1,true\n"
        f"O-2,{when},{currency},SKU-C1,3,9.50,,,,c-2,false\n"
    )


def _bad(program: Program) -> str:
    now = _now()
    return HEADER + (
        f"O-1,{now},USD,SKU-A1,1,49.00,,{program.coupon_code},,c-1,true\n"
        f"O-2,{now},USD,SKU-B1,-1,24.00,,,,c-2,\n"  # line 3: quantity
        f"O-3,{now},USD,SKU-C1,1,9.999,,,,c-3,\n"  # line 4: unit_price
        f"O-4,not-a-date,USD,SKU-C1,1,9.50,,,,c-4,\n"  # line 5: created_at
    )


def _file(tmp_path: Path, text: str, name: str = "orders.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _counts(program: Program) -> dict[str, int]:
    with Session(engine_for(program.url)) as session:

        def of(model, column) -> int:  # type: ignore[no-untyped-def]
            return int(session.scalar(select(func.count()).select_from(model).where(column == program.brand_id)))

        return {
            "events": of(InboxEvent, InboxEvent.brand_id),
            "orders": of(Order, Order.brand_id),
            "refunds": of(Refund, Refund.brand_id),
            "commission_lines": of(CommissionLine, CommissionLine.brand_id),
            "ledger_entries": of(LedgerEntry, LedgerEntry.brand_id),
        }


def _flat(text: str) -> str:
    """Rich wraps long lines to the terminal; compare the words."""
    return " ".join(text.split())


class TestImportOrders:
    def test_a_good_file_is_imported_and_earns_commission(self, program, tmp_path):
        result = run("import", "orders", str(_file(tmp_path, _good(program))), "--brand", program.slug)

        assert result.exit_code == 0, result.output
        assert "orders: 2 imported, 0 already known, 0 waiting for replay" in _flat(result.stdout)
        assert _counts(program) == {
            "events": 2,
            "orders": 2,
            "refunds": 0,
            "commission_lines": 2,
            "ledger_entries": 2,
        }

    def test_a_bad_file_exits_non_zero_naming_every_bad_row_and_imports_nothing(self, program, tmp_path):
        path = _file(tmp_path, _bad(program))

        result = run("import", "orders", str(path), "--brand", program.slug, "--as", program.finance)

        assert result.exit_code == 1
        errors = _flat(result.stderr)
        assert errors.startswith("error: order import: 3 problem(s), nothing imported")
        for where in ("line 3 › quantity", "line 4 › unit_price", "line 5 › created_at"):
            assert where in errors
        assert _counts(program)["events"] == 0
        assert not path.with_suffix(".rejects.csv").exists()

    def test_a_file_with_many_bad_rows_lists_every_one_of_them(self, program, tmp_path):
        rows = "".join(f"B-{n},{_now()},USD,SKU-C1,0,9.50,,,,c-{n},\n" for n in range(60))

        result = run("import", "orders", str(_file(tmp_path, HEADER + rows)), "--brand", program.slug)

        assert result.exit_code == 1
        listed = [line for line in result.stderr.splitlines() if "› quantity" in line]
        assert [line.split("›")[0].strip() for line in listed] == [f"line {n}" for n in range(2, 62)]

    def test_quarantine_imports_the_good_orders_and_writes_the_rejects_file(self, program, tmp_path):
        path = _file(tmp_path, _bad(program))
        rejects = tmp_path / "set-aside.csv"

        result = run("import", "orders", str(path), "--brand", program.slug, "--quarantine", "--rejects", str(rejects))

        assert result.exit_code == 0, result.output
        assert "orders: 1 imported" in _flat(result.stdout)
        assert "3 row(s) rejected" in _flat(result.stdout)
        rows = list(csv.DictReader(io.StringIO(rejects.read_text())))
        assert [(r["line"], r["order_id"], r["reason"].split(":")[0]) for r in rows] == [
            ("3", "O-2", "quantity"),
            ("4", "O-3", "unit_price"),
            ("5", "O-4", "created_at"),
        ]
        assert _counts(program)["orders"] == 1

    def test_quarantine_writes_beside_the_file_by_default(self, program, tmp_path):
        path = _file(tmp_path, _bad(program), "agency-november.csv")

        result = run("import", "orders", str(path), "--brand", program.slug, "--quarantine")

        assert result.exit_code == 0, result.output
        assert (tmp_path / "agency-november.rejects.csv").read_text().startswith("line,order_id,")

    def test_the_same_file_twice_counts_duplicates_and_changes_nothing(self, program, tmp_path):
        path = _file(tmp_path, _good(program))
        run("import", "orders", str(path), "--brand", program.slug)
        before = _counts(program)

        result = run("import", "orders", str(path), "--brand", program.slug)

        assert result.exit_code == 0, result.output
        assert "orders: 0 imported, 2 already known" in _flat(result.stdout)
        assert "the same file was imported whole on 20" in _flat(result.stdout)
        assert _counts(program) == before

    def test_the_same_orders_in_another_file_are_duplicates_checked_order_by_order(self, program, tmp_path):
        text = _good(program)
        run("import", "orders", str(_file(tmp_path, text)), "--brand", program.slug)
        before = _counts(program)
        lines = text.splitlines()
        other = _file(tmp_path, "\n".join([lines[0], lines[3], lines[1], lines[2]]) + "\n", "re.csv")

        result = run("import", "orders", str(other), "--brand", program.slug)

        assert result.exit_code == 0, result.output
        assert "orders: 0 imported, 2 already known" in _flat(result.stdout)
        assert "imported whole" not in _flat(result.stdout)
        assert _counts(program) == before

    def test_someone_without_finance_is_refused(self, program, tmp_path):
        result = run(
            "import", "orders", str(_file(tmp_path, _good(program))), "--brand", program.slug, "--as", program.ops
        )

        assert result.exit_code == 1
        assert "requires role finance" in _flat(result.stderr)
        assert _counts(program)["events"] == 0

    def test_a_missing_file_is_a_one_line_failure(self, program, tmp_path):
        result = run("import", "orders", str(tmp_path / "nope.csv"), "--brand", program.slug)

        assert result.exit_code == 1
        assert "no such file" in result.stderr


class TestEventsReplay:
    def test_an_order_waiting_for_its_fx_rate_earns_after_import_fx_and_a_replay(self, program, tmp_path):
        imported = run(
            "import", "orders", str(_file(tmp_path, _good(program, currency="EUR"))), "--brand", program.slug
        )
        assert "1 waiting for replay" in _flat(imported.stdout)  # O-1 is attributed and needs EUR→USD

        still = run("events", "replay", "--brand", program.slug)
        rates = run("import", "fx", str(_file(tmp_path, "day,base,quote,rate\n2026-01-01,EUR,USD,1.0850\n", "fx.csv")))
        replayed = run("events", "replay", "--brand", program.slug)

        assert still.exit_code == 2  # a replay that leaves events failing says so
        assert rates.exit_code == 0 and "FX rates: 1 imported" in rates.stdout
        assert replayed.exit_code == 0, replayed.output
        assert "processed: 1, failed: 0" in _flat(replayed.stdout)
        with Session(engine_for(program.url)) as session:
            lines = session.scalars(select(CommissionLine).where(CommissionLine.brand_id == program.brand_id))
            assert sorted((c.fx_rate, c.order_currency, c.currency, c.amount) for c in lines) == [
                ("1.0850", "EUR", "USD", 400),
                ("1.0850", "EUR", "USD", 1600),
            ]

    def test_a_refund_that_arrived_before_its_order_is_applied_by_a_replay(self, program, tmp_path):
        refund = {
            "refund_id": "R-1",
            "order_id": "O-1",
            "created_at": _now(),
            "kind": "return",
            "lines": [{"sku": "SKU-A1", "quantity": 1, "amount": "47.00"}],
        }
        with Session(engine_for(program.url), expire_on_commit=False) as session:
            brand = session.get(Brand, program.brand_id)
            early = ingest.receive(
                session, brand=brand, source="postback", kind="refund", body=json.dumps(refund).encode()
            )
            session.commit()
        run("import", "orders", str(_file(tmp_path, _good(program))), "--brand", program.slug)

        result = run("events", "replay", "--brand", program.slug)

        assert early.processed is False
        assert result.exit_code == 0, result.output
        assert "seen: 1, processed: 1, failed: 0, unchanged: 0" in _flat(result.stdout)
        with Session(engine_for(program.url)) as session:
            reversed_ = session.scalars(
                select(CommissionLine.reversed_amount).where(CommissionLine.brand_id == program.brand_id)
            )
            assert sorted(reversed_) == [0, 800]  # 16.00 × 47.00 ÷ 94.00

    def test_replaying_everything_changes_nothing(self, program, tmp_path):
        run("import", "orders", str(_file(tmp_path, _good(program))), "--brand", program.slug)
        before = _counts(program)

        result = run("events", "replay", "--brand", program.slug, "--all")

        assert result.exit_code == 0, result.output
        assert "seen: 2, processed: 0, failed: 0, unchanged: 2" in _flat(result.stdout)
        assert _counts(program) == before

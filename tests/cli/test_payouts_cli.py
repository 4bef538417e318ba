"""`clearline payouts run|approve|export|paid|reconcile` against a committed database, as finance runs them:
each happy path, and each failure exits non-zero with a one-line reason."""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from clearline.cli.main import app as cli
from clearline.kit.db import engine_for
from clearline.models import Brand, PayoutRun
from tests import factories
from tests.conftest import _fresh_database, drop_database, migrate, use_database
from tests.payout.program import build


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A committed, migrated database the CLI's own sessions reach through the settings; restored after."""
    found = _fresh_database(tmp_path_factory.mktemp("payouts_cli"), f"payouts_cli_{os.getpid()}")
    previous = os.environ.get("CLEARLINE_DATABASE_URL")
    try:
        migrate(found)
        use_database(found)
        yield found
    finally:
        if previous is None:
            from clearline.config import get_settings

            os.environ.pop("CLEARLINE_DATABASE_URL", None)
            get_settings.cache_clear()
        else:
            use_database(previous)
        engine_for(found).dispose()
        drop_database(found)


@dataclass
class Shop:
    url: str
    brand: str
    finance: str
    finance2: str
    marketing: str


@pytest.fixture
def shop(url: str) -> Shop:
    """A brand of its own per test: two creators whose sales cleared long ago, committed."""
    with Session(engine_for(url), expire_on_commit=False) as session:
        program = build(session)
        for handle, units in (("anna", 2), ("ben", 1)):
            program.creator(f"{handle}.{program.brand.id}")
            program.order(f"{handle}.{program.brand.id}", day=5, lines=[("SKU-A1", units, "49.00")])
        marketing = factories.user(session, ("marketing", program.brand.id), password=None)
        session.commit()
        return Shop(url, program.brand.slug, program.finance_user.email, program.finance2_user.email, marketing.email)


@pytest.fixture(autouse=True)
def no_default_actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLEARLINE_ACTOR", raising=False)


def payouts(*args: str) -> Result:
    return CliRunner().invoke(cli, ["payouts", *args])


def refused(result: Result, reason: str, code: int = 1) -> None:
    """A non-zero exit whose first line on stderr is the reason (field details may follow, indented)."""
    assert result.exit_code == code, result.output
    first, *rest = result.stderr.strip().splitlines()
    assert first.startswith("error: ") and reason in first, result.stderr
    assert all(line.startswith("  ") for line in rest), result.stderr


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def create(shop: Shop, *extra: str, who: str | None = None) -> int:
    result = payouts(
        "run", "--brand", shop.brand, "--as-of", today(), "--minimum", "0.01", "--as", who or shop.finance, *extra
    )
    assert result.exit_code == 0, result.output
    with Session(engine_for(shop.url)) as session:
        found = session.scalar(
            select(PayoutRun.id)
            .join(Brand, Brand.id == PayoutRun.brand_id)
            .where(Brand.slug == shop.brand)
            .order_by(PayoutRun.id.desc())
            .limit(1)
        )
    assert found is not None and f"payout run {found} (draft)" in result.stdout
    return found


def approved(shop: Shop) -> int:
    run_id = create(shop)
    result = payouts("approve", str(run_id), "--as", shop.finance2)
    assert result.exit_code == 0, result.output
    return run_id


class TestRun:
    def test_a_draft_run_is_created_and_its_lines_are_shown(self, shop: Shop):
        result = payouts("run", "--brand", shop.brand, "--as-of", today(), "--minimum", "10", "--as", shop.finance)
        assert result.exit_code == 0, result.output
        assert "(draft)" in result.stdout
        assert "totals: 16.00 USD; 1 payee(s) below the minimum carried forward" in result.stdout

    def test_a_second_run_while_the_draft_waits_is_refused(self, shop: Shop):
        run_id = create(shop)
        refused(
            payouts("run", "--brand", shop.brand, "--as-of", today(), "--as", shop.finance2),
            f"run {run_id} is still a draft",
        )

    def test_running_the_same_date_again_after_approval_has_nothing_to_pay(self, shop: Shop):
        approved(shop)
        refused(
            payouts("run", "--brand", shop.brand, "--as-of", today(), "--minimum", "0.01", "--as", shop.finance),
            "nothing to pay as of",
        )

    def test_bad_input_is_refused_in_one_line(self, shop: Shop):
        refused(
            payouts("run", "--brand", "no-such-brand", "--as-of", today(), "--as", shop.finance),
            "no brand 'no-such-brand'",
        )
        refused(
            payouts("run", "--brand", shop.brand, "--as-of", "last tuesday", "--as", shop.finance), "is not an ISO date"
        )
        future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        refused(payouts("run", "--brand", shop.brand, "--as-of", future, "--as", shop.finance), "in the future")
        refused(
            payouts("run", "--brand", shop.brand, "--as-of", today(), "--as", shop.marketing), "requires role finance"
        )


class TestApprove:
    def test_a_second_finance_user_approves(self, shop: Shop):
        run_id = create(shop)
        result = payouts("approve", str(run_id), "--as", shop.finance2)
        assert result.exit_code == 0, result.output
        assert f"run {run_id} approved by {shop.finance2}" in result.stdout

    def test_the_creator_of_the_run_and_the_operator_cannot_approve(self, shop: Shop):
        run_id = create(shop)
        refused(payouts("approve", str(run_id), "--as", shop.finance), "four eyes: whoever created a run")
        refused(payouts("approve", str(run_id)), "approval needs a named finance user")
        refused(payouts("approve", "999999", "--as", shop.finance2), "no payout run 999999")


class TestExport:
    def test_both_files_are_written_for_an_approved_run(self, shop: Shop, tmp_path: Path):
        run_id = approved(shop)
        result = payouts("export", str(run_id), "--out", str(tmp_path), "--as", shop.finance)
        assert result.exit_code == 0, result.output
        payout = (tmp_path / f"payout-run-{run_id}.csv").read_text()
        detail = (tmp_path / f"payout-run-{run_id}-detail.csv").read_text()
        rows = list(csv.DictReader(payout.splitlines()))
        assert sorted(r["total_amount"] for r in rows) == ["16.00", "8.00"]
        assert {r["run_approved_by"] for r in rows} == {shop.finance2}
        assert len(detail.splitlines()) == 3

    def test_a_draft_or_a_missing_directory_is_refused(self, shop: Shop, tmp_path: Path):
        run_id = create(shop)
        refused(payouts("export", str(run_id), "--out", str(tmp_path), "--as", shop.finance), "not approved")
        refused(
            payouts("export", str(run_id), "--out", str(tmp_path / "nope"), "--as", shop.finance), "is not a directory"
        )
        assert list(tmp_path.iterdir()) == []


class TestPaid:
    def test_an_approved_run_is_marked_paid_but_a_draft_is_not(self, shop: Shop):
        run_id = approved(shop)
        result = payouts("paid", str(run_id), "--reference", "BANK-1", "--as", shop.finance)
        assert result.exit_code == 0 and f"run {run_id} marked paid" in result.stdout
        refused(payouts("paid", str(run_id), "--as", shop.finance), "only an approved run can be marked paid")


class TestReconcile:
    def _paid_file(self, shop: Shop, run_id: int, tmp_path: Path, *, shave: bool = False) -> Path:
        payouts("export", str(run_id), "--out", str(tmp_path), "--as", shop.finance)
        rows = list(csv.DictReader((tmp_path / f"payout-run-{run_id}.csv").read_text().splitlines()))
        lines = ["payout_line_id,paid_amount,currency,paid_at,reference"]
        for i, r in enumerate(rows):
            amount = "0.01" if shave and i == 0 else r["total_amount"]
            lines.append(
                f"{r['payout_line_id']},{amount},{r['currency']},2026-11-20T10:00:00Z,{r['invoice_reference']}"
            )
        path = tmp_path / "paid.csv"
        path.write_text("\n".join(lines) + "\n")
        return path

    def test_a_paid_file_that_matches_exits_zero_with_the_accuracy(self, shop: Shop, tmp_path: Path):
        run_id = approved(shop)
        result = payouts("reconcile", str(run_id), str(self._paid_file(shop, run_id, tmp_path)), "--as", shop.finance)
        assert result.exit_code == 0, result.output
        assert "matched 2, mismatched 0, missing 0, unknown 0; payout accuracy 100.00 %" in result.stdout

    def test_a_mismatch_exits_2_and_lists_both_amounts(self, shop: Shop, tmp_path: Path):
        run_id = approved(shop)
        result = payouts(
            "reconcile", str(run_id), str(self._paid_file(shop, run_id, tmp_path, shave=True)), "--as", shop.finance
        )
        assert result.exit_code == 2, result.output
        assert (
            "mismatched (expected 16.00, paid 0.01)" in result.stdout
            or "mismatched (expected 8.00, paid 0.01)" in result.stdout
        )
        assert "payout accuracy 50.00 %" in result.stdout

    def test_a_bad_or_missing_file_is_refused_in_one_line(self, shop: Shop, tmp_path: Path):
        run_id = approved(shop)
        bad = tmp_path / "bad.csv"
        bad.write_text("payout_line_id,paid_amount,currency,paid_at,reference\n1,12.345,USD,,x\n")
        result = payouts("reconcile", str(run_id), str(bad), "--as", shop.finance)
        assert result.exit_code == 1
        assert result.stderr.splitlines()[0] == (
            "error: paid file: 1 bad row(s), nothing imported; first: line 2, paid_amount: paid_amount: '12.345' has "
            "more digits than USD allows"
        )
        refused(payouts("reconcile", str(run_id), str(tmp_path / "absent.csv"), "--as", shop.finance), "no such file")

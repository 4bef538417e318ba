"""The finance files (INTERFACES §6 payout CSV, §7 detail CSV) and reconciliation of the paid file (§8)."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from clearline.commission import period as period_service
from clearline.kit import money
from clearline.kit.errors import ConflictError, ForbiddenError, NotFoundError, ValidationFailedError
from clearline.models import AuditEvent, Brief, Creative, LedgerEntry, LedgerPosting, PayoutRun, Reconciliation
from clearline.payout import dispute as dispute_service
from clearline.payout import export
from clearline.payout import service as payout_service
from tests import factories
from tests.payout.program import Program, cpa

PAYOUT_HEADER = (
    "payout_run_id,payout_line_id,payee_type,payee_id,payee_name,payee_vendor_id,brand,cost_center,"
    "gl_account,currency,period_start,period_end,commission_amount,retainer_amount,adjustment_amount,"
    "clawback_amount,total_amount,order_count,commission_line_count,contract_id,contract_version,"
    "contract_accepted_at,brief_approved_at,link_signed_off_at,run_approved_by,run_approved_at,invoice_reference"
)
DETAIL_HEADER = (
    "payout_line_id,order_id,order_created_at,line_no,sku,quantity,net_revenue,gross_margin,basis,rate,"
    "commission_amount,attributed_via,click_id,coupon_code,contract_version,eligible_at"
)
AMOUNTS = ("commission_amount", "retainer_amount", "adjustment_amount", "clawback_amount", "total_amount")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def busy_run(program: Program) -> PayoutRun:
    """A run whose rows carry commission, a retainer, an adjustment and a clawback, for three payees."""
    program.creator("anna", terms=cpa(model="hybrid", retainer={"amount": "100.00"}))
    program.creator("ben")
    program.agency("Glow Agency", ["cara", "dina"])
    sold = program.order("anna", day=5, lines=[("SKU-A1", 2, "49.00"), ("SKU-B1", 1, "24.00")])
    program.order("ben", day=6, lines=[("SKU-C1", 3, "9.50")])
    program.order("cara", day=7)
    program.run_and_approve(day=20)

    program.refund(sold, day=25, lines=[("SKU-A1", "49.00")], kind="chargeback")  # −8.00, after payout
    program.order("anna", day=26, lines=[("SKU-A1", 4, "49.00")])
    program.order("dina", day=27, lines=[("SKU-B1", 1, "24.00")])
    disputed = program.order("ben", day=28, lines=[("SKU-A1", 1, "49.00")])
    line = program.commission_lines(disputed)[0]
    opened = dispute_service.open_dispute(
        program.db, program.actor("ben"), commission_line_id=line.id, reason="the rate should be tier a plus a bonus"
    )
    dispute_service.resolve(
        program.db,
        program.finance,
        dispute_id=opened.id,
        decision="upheld",
        reason="bonus agreed by e-mail",
        adjustment=Decimal("2.50"),
    )
    period_service.close_period(
        program.db, program.finance, brand_id=program.brand.id, period=program.at(0).strftime("%Y-%m")
    )
    return program.run_and_approve()


class TestPayoutCsv:
    def test_header_and_column_order_are_exactly_those_of_interfaces_6(self, program: Program):
        run = busy_run(program)
        text = export.payout_csv(program.db, program.finance, run_id=run.id)
        assert text.splitlines()[0] == PAYOUT_HEADER
        assert all(len(r) == 27 for r in csv.reader(io.StringIO(text)))

    def test_total_is_commission_plus_retainer_plus_adjustment_plus_clawback_on_every_row(self, program: Program):
        run = busy_run(program)
        found = rows(export.payout_csv(program.db, program.finance, run_id=run.id))
        by_payee = {(r["payee_type"], r["payee_id"]): r for r in found}
        anna = by_payee[("creator", str(program.payees["anna"].payee_id))]
        assert [anna[a] for a in AMOUNTS] == ["32.00", "100.00", "0.00", "-8.00", "124.00"]
        ben = by_payee[("creator", str(program.payees["ben"].payee_id))]
        assert [ben[a] for a in AMOUNTS] == ["8.00", "0.00", "2.50", "0.00", "10.50"]
        for r in found:
            parts = [Decimal(r[a]) for a in AMOUNTS[:4]]
            assert sum(parts) == Decimal(r["total_amount"]), r
            assert Decimal(r["clawback_amount"]) <= 0

    def test_the_sum_of_totals_equals_the_runs_total(self, program: Program):
        run = busy_run(program)
        found = rows(export.payout_csv(program.db, program.finance, run_id=run.id))
        assert len(found) == 3
        assert {"USD": f"{sum(Decimal(r['total_amount']) for r in found):.2f}"} == payout_service.totals(
            program.db, run.id
        )

    def test_amounts_carry_exactly_the_currencys_minor_digits(self, program: Program):
        program.fx("USD", "JPY", "150")
        program.creator("kenji", terms=cpa("JPY", a="800", b="400", c="100"))
        program.creator("anna")
        program.order("kenji", day=5, lines=[("SKU-A1", 2, "49.00"), ("SKU-C1", 1, "9.50")])
        program.order("anna", day=5, lines=[("SKU-A1", 1, "49.00")])
        run = program.run_and_approve()
        found = {r["currency"]: r for r in rows(export.payout_csv(program.db, program.finance, run_id=run.id))}
        assert [found["JPY"][a] for a in AMOUNTS] == ["1700", "0", "0", "0", "1700"]
        assert [found["USD"][a] for a in AMOUNTS] == ["8.00", "0.00", "0.00", "0.00", "8.00"]
        detail = rows(export.detail_csv(program.db, program.finance, run_id=run.id))
        jpy_line = found["JPY"]["payout_line_id"]
        assert sorted(d["commission_amount"] for d in detail if d["payout_line_id"] == jpy_line) == ["100", "1600"]
        assert {d["net_revenue"] for d in detail if d["payout_line_id"] == jpy_line} == {"98.00", "9.50"}

    def test_every_row_names_gl_account_cost_centre_contract_and_approval(self, program: Program):
        anna = program.creator("anna")
        link = program.link("anna")
        program.order("anna", day=5)
        run = program.run()
        assert rows(export.payout_csv(program.db, program.finance, run_id=run.id))[0]["run_approved_at"] == ""
        program.approve(run)
        (row,) = rows(export.payout_csv(program.db, program.finance, run_id=run.id))
        assert (row["brand"], row["gl_account"], row["cost_center"]) == (
            program.brand.slug,
            "6100",
            program.brand.cost_center,
        )
        assert (row["payee_type"], row["payee_id"]) == ("creator", str(anna.creator_id))
        assert (row["contract_id"], row["contract_version"]) == (str(anna.contract_id), "1")
        assert row["run_approved_by"] == program.finance2.label
        assert row["run_approved_at"] == run.approved_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert row["link_signed_off_at"] == link.signed_off_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        for column in ("period_start", "period_end", "contract_accepted_at", "run_approved_at", "link_signed_off_at"):
            assert ISO_UTC.match(row[column]), column
        assert row["invoice_reference"] == f"CL-{program.brand.slug.upper()}-{run.id}-{row['payout_line_id']}"
        assert (row["order_count"], row["commission_line_count"]) == ("1", "1")


def approved_brief(program: Program, creator_id: int, *, day: float) -> None:
    """A brief approved on ``day`` that ``creator_id`` made content for."""
    brief = Brief(
        brand_id=program.brand.id,
        campaign_id=program.campaign.id,
        title=f"Brief {day}",
        skus=["SKU-A1"],
        offer_code="AUTUMN",
        landing_url="https://shop.example.com/p",
        call_to_action="Shop now",
        key_messages=["glow"],
        disclaimers=["#ad"],
        measurement_note="coupon and click",
        status="approved",
        approved_at=program.at(day),
    )
    program.db.add(brief)
    program.db.flush()
    program.db.add(
        Creative(
            brand_id=program.brand.id,
            brief_id=brief.id,
            creator_id=creator_id,
            channel="instagram",
            status="approved",
            approved_at=program.at(day),
        )
    )
    program.db.flush()


class TestBriefApprovedAt:
    def test_each_row_carries_the_latest_brief_approval_up_to_the_run(self, program: Program):
        anna = program.creator("anna")
        program.creator("ben")
        agency_id, _ = program.agency("Glow Agency", ["cara"])
        approved_brief(program, anna.creator_id, day=3)
        approved_brief(program, anna.creator_id, day=8)
        approved_brief(program, anna.creator_id, day=60)  # after the run's date
        approved_brief(program, program.payees["cara"].creator_id, day=4)
        for handle in ("anna", "ben", "cara"):
            program.order(handle, day=5)
        run = program.run_and_approve(day=50)
        found = {
            (r["payee_type"], r["payee_id"]): r["brief_approved_at"]
            for r in rows(export.payout_csv(program.db, program.finance, run_id=run.id))
        }
        stamp = "%Y-%m-%dT%H:%M:%SZ"
        assert found == {
            ("creator", str(anna.creator_id)): program.at(8).strftime(stamp),
            ("creator", str(program.payees["ben"].creator_id)): "",
            ("agency", str(agency_id)): program.at(4).strftime(stamp),
        }


class TestAmountFormatting:
    @given(minor=st.integers(-(10**15), 10**15), currency=st.sampled_from(sorted(money.MINOR_UNITS)))
    def test_the_detail_files_formatter_writes_exactly_what_money_writes(self, minor: int, currency: str):
        assert export._amounts(currency)(minor) == money.format_minor(minor, currency)


class TestDetailCsv:
    def test_header_is_exactly_that_of_interfaces_7(self, program: Program):
        run = busy_run(program)
        assert export.detail_csv(program.db, program.finance, run_id=run.id).splitlines()[0] == DETAIL_HEADER

    def test_one_row_per_commission_line_paid_explains_the_line(self, program: Program):
        anna = program.creator("anna")
        program.creator("ben")
        click_id = program.click(program.link("ben"), day=5)
        coupon_order = program.order("anna", day=5, lines=[("SKU-A1", 2, "49.00"), ("SKU-B1", 1, "24.00")])
        click_order = program.order(None, day=5, click_id=click_id, lines=[("SKU-C1", 1, "9.50")])
        run = program.run_and_approve()
        detail = rows(export.detail_csv(program.db, program.finance, run_id=run.id))
        assert len(detail) == 3
        first = next(d for d in detail if d["sku"] == "SKU-A1")
        assert first == {
            "payout_line_id": str(program.line_of(run, "anna").id),
            "order_id": coupon_order.external_id,
            "order_created_at": program.at(5).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "line_no": "1",
            "sku": "SKU-A1",
            "quantity": "2",
            "net_revenue": "98.00",
            "gross_margin": "73.50",  # 98.00 − 2 × 12.25
            "basis": "unit",
            "rate": "8.00",
            "commission_amount": "16.00",
            "attributed_via": "coupon",
            "click_id": "",
            "coupon_code": anna.coupon,
            "contract_version": "1",
            "eligible_at": program.at(15).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        clicked = next(d for d in detail if d["order_id"] == click_order.external_id)
        assert (clicked["attributed_via"], clicked["click_id"], clicked["coupon_code"]) == (
            "click",
            click_id.split(".")[0],
            "",
        )

    def test_detail_sums_by_payout_line_give_each_rows_commission_amount(self, program: Program):
        program.creator("erin", terms=cpa(reserve_pct="10", reserve_release_days=30))
        program.order("erin", day=5, lines=[("SKU-A1", 3, "49.00")])
        program.run_and_approve(day=20)  # pays 21.60; 2.40 is held until day 45
        run = busy_run(program)
        payout = rows(export.payout_csv(program.db, program.finance, run_id=run.id))
        detail = rows(export.detail_csv(program.db, program.finance, run_id=run.id))
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for d in detail:
            sums[d["payout_line_id"]] += Decimal(d["commission_amount"])
        assert {r["payout_line_id"]: Decimal(r["commission_amount"]) for r in payout} == dict(sums)
        assert [d["basis"] for d in detail].count("reserve_release") == 1
        assert {r["payout_line_id"]: int(r["commission_line_count"]) for r in payout} == {
            k: sum(1 for d in detail if d["payout_line_id"] == k) for k in sums
        }


class TestExport:
    def test_a_draft_cannot_be_exported(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        run = program.run()
        with pytest.raises(ConflictError, match="not approved"):
            export.export(program.db, program.finance, run_id=run.id)

    def test_a_discarded_run_cannot_be_exported(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        run = program.run()
        payout_service.discard_run(program.db, program.finance, run_id=run.id, reason="wrong date")
        with pytest.raises(ConflictError, match="discarded"):
            export.export(program.db, program.finance, run_id=run.id)

    def test_the_export_is_recorded_with_its_time_and_who(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        run = program.run_and_approve()
        payout, detail = export.export(program.db, program.finance, run_id=run.id)
        assert run.exported_at is not None
        first = run.exported_at
        export.export(program.db, program.finance2, run_id=run.id)
        assert run.exported_at == first  # the first export is the one finance imported
        events = program.db.scalars(
            select(AuditEvent).where(AuditEvent.action == "payout_run.exported", AuditEvent.entity_id == str(run.id))
        ).all()
        assert [e.actor_id for e in events] == [program.finance.user_id, program.finance2.user_id]
        assert payout.startswith(PAYOUT_HEADER) and detail.startswith(DETAIL_HEADER)

    def test_only_finance_on_the_brand_can_export(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        run = program.run_and_approve()
        marketing = factories.actor(program.db, ("marketing", program.brand.id))
        outsider = factories.actor(program.db, ("finance", factories.brand(program.db).id))
        for actor in (marketing, program.actor("anna")):
            with pytest.raises(ForbiddenError):
                export.export(program.db, actor, run_id=run.id)
        with pytest.raises(NotFoundError):
            export.export(program.db, outsider, run_id=run.id)
        with pytest.raises(NotFoundError):
            export.export(program.db, program.finance, run_id=run.id + 1000)

    def test_the_files_agree_with_the_ledger_to_the_cent(self, program: Program):
        run = busy_run(program)
        payout, detail = export.export(program.db, program.finance, run_id=run.id)
        moved = dict(
            program.db.execute(
                select(LedgerEntry.key, LedgerPosting.amount)
                .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
                .where(LedgerEntry.kind == "payout.approved", LedgerPosting.amount > 0)
            )
            .tuples()
            .all()
        )
        for r in rows(payout):
            assert moved[f"payout.approved:{r['payout_line_id']}"] == int(Decimal(r["total_amount"]) * 100)
        everything = sum(Decimal(r["total_amount"]) for r in rows(payout)) * 100
        this_run = sum(moved[f"payout.approved:{r['payout_line_id']}"] for r in rows(payout))
        assert everything == this_run
        # What left available over both runs is exactly what the two payout files paid.
        assert program.paid_out_of_available() == program.run_totals()


def paid_file(lines: list[tuple[object, str, str]]) -> str:
    out = ["payout_line_id,paid_amount,currency,paid_at,reference"]
    out += [
        f"{line_id},{amount},{currency},2026-11-20T10:00:00Z,BANK-{i}"
        for i, (line_id, amount, currency) in enumerate(lines)
    ]
    return "\n".join(out) + "\n"


class TestReconcile:
    @pytest.fixture
    def run(self, program: Program) -> PayoutRun:
        for handle, units in (("anna", 1), ("ben", 2), ("cara", 3)):
            program.creator(handle)
            program.order(handle, day=5, lines=[("SKU-A1", units, "49.00")])
        return program.run_and_approve()

    def test_a_file_that_pays_every_line_exactly_matches_and_reconciles_the_run(self, program, run):
        lines = payout_service.run_lines(program.db, run.id)
        result = export.reconcile(
            program.db,
            program.finance,
            run_id=run.id,
            data=paid_file([(x.id, f"{x.total_amount / 100:.2f}", "USD") for x in lines]),
        )
        assert (result.matched, result.mismatched, result.missing, result.unknown) == (3, 0, 0, 0)
        assert result.accuracy_bp == 10000
        assert run.status == "reconciled"

    def test_matched_mismatched_missing_and_unknown_are_each_reported(self, program, run):
        anna, ben, cara = (program.line_of(run, h) for h in ("anna", "ben", "cara"))
        result = export.reconcile(
            program.db,
            program.finance,
            run_id=run.id,
            data=paid_file([(anna.id, "8.00", "USD"), (ben.id, "15.99", "USD"), (99999, "1.00", "USD")]),
        )
        assert (result.matched, result.mismatched, result.missing, result.unknown) == (1, 1, 1, 1)
        assert result.accuracy_bp == 3333  # 1 matched ÷ 3 lines
        details = {(d["status"], d["payout_line_id"]): d for d in result.details}
        assert details[("mismatched", ben.id)]["expected"] == "16.00"
        assert details[("mismatched", ben.id)]["paid"] == "15.99"
        assert details[("missing", cara.id)]["expected"] == "24.00"
        assert details[("unknown", 99999)]["file_line"] == 4
        assert run.status == "approved"
        event = program.db.scalar(select(AuditEvent).where(AuditEvent.action == "payout_run.reconciled"))
        assert event is not None and event.after["accuracy"] == "0.3333"

    def test_the_right_amount_in_the_wrong_currency_is_a_mismatch(self, program, run):
        lines = {x.id: x for x in payout_service.run_lines(program.db, run.id)}
        paid = [
            (i, f"{x.total_amount / 100:.2f}", "EUR" if x.payee_id == program.payees["ben"].payee_id else "USD")
            for i, x in lines.items()
        ]
        result = export.reconcile(program.db, program.finance, run_id=run.id, data=paid_file(paid))
        assert (result.matched, result.mismatched) == (2, 1)
        (mismatch,) = [d for d in result.details if d["status"] == "mismatched"]
        assert (mismatch["expected_currency"], mismatch["paid_currency"]) == ("USD", "EUR")

    def test_a_bad_file_is_refused_naming_line_and_column_and_nothing_is_recorded(self, program, run):
        anna = program.line_of(run, "anna")
        bad = paid_file(
            [
                (anna.id, "8.00", "USD"),
                ("seven", "1.00", "USD"),
                (anna.id + 1, "1.001", "USD"),
                (anna.id + 2, "1.00", "XYZ"),
            ]
        )
        with pytest.raises(ValidationFailedError) as caught:
            export.reconcile(program.db, program.finance, run_id=run.id, data=bad)
        assert caught.value.status_code == 422
        assert caught.value.details == [
            {"loc": ["line 3", "payout_line_id"], "msg": "'seven' is not a number"},
            {"loc": ["line 4", "paid_amount"], "msg": "paid_amount: '1.001' has more digits than USD allows"},
            {"loc": ["line 5", "currency"], "msg": "unknown currency 'XYZ'"},
        ]
        assert "line 3, payout_line_id" in caught.value.message
        assert program.db.scalar(select(func.count()).select_from(Reconciliation)) == 0
        assert program.db.scalar(select(AuditEvent).where(AuditEvent.action == "payout_run.reconciled")) is None

    def test_a_file_paying_one_line_twice_is_refused(self, program, run):
        anna = program.line_of(run, "anna")
        with pytest.raises(ValidationFailedError) as caught:
            export.reconcile(
                program.db,
                program.finance,
                run_id=run.id,
                data=paid_file([(anna.id, "8.00", "USD"), (anna.id, "8.00", "USD")]),
            )
        assert caught.value.details == [
            {"loc": ["line 3", "payout_line_id"], "msg": f"payout line {anna.id} is already on line 2"}
        ]

    def test_a_file_without_the_required_columns_is_refused(self, program, run):
        with pytest.raises(ValidationFailedError, match="missing column"):
            export.reconcile(program.db, program.finance, run_id=run.id, data="payout_line_id,amount\n1,2.00\n")

    def test_a_draft_cannot_be_reconciled(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        run = program.run()
        with pytest.raises(ConflictError, match="only an approved run"):
            export.reconcile(program.db, program.finance, run_id=run.id, data=paid_file([(1, "8.00", "USD")]))

    def test_the_latest_reconciliation_is_kept_beside_earlier_ones(self, program, run):
        lines = payout_service.run_lines(program.db, run.id)
        export.reconcile(program.db, program.finance, run_id=run.id, data=paid_file([(lines[0].id, "8.00", "USD")]))
        latest = export.reconcile(
            program.db,
            program.finance,
            run_id=run.id,
            data=paid_file([(x.id, f"{x.total_amount / 100:.2f}", "USD") for x in lines]),
        )
        assert export.latest_reconciliation(program.db, run.id).id == latest.id
        assert program.db.scalar(select(func.count()).select_from(Reconciliation)) == 2

"""Commissions through the real order path: every C2 model and term, reversals, clearing and reserves."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from clearline.catalog import service as catalog_service
from clearline.commission import service as commission_service
from clearline.kit.errors import ValidationFailedError
from clearline.ledger import service as ledger
from clearline.models import CommissionLine, LedgerEntry, RosterEntry
from tests import factories
from tests.commission.program import Program, build


def cpa(per: str = "unit", returning: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    rates: dict[str, Any] = {"new": extra.pop("rates", {"a": "8.00", "b": "4.00", "c": "1.00"})}
    if returning:
        rates["returning"] = returning
    return {"model": "cpa", "currency": "USD", "cpa": {"per": per, "rates": rates}, **extra}


def revshare(basis: str, rates: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"model": "revshare", "currency": "USD", "revshare": {"basis": basis, "rates": {"new": rates}}, **extra}


def pay_out(program: Program, handle: str, amount: int) -> None:
    """What a payout run posts: the payee's available balance goes to the brand's payouts account."""
    creator = program.creators[handle]
    ledger.post(
        program.db,
        [
            ledger.Transfer(
                key=f"test.payout:{creator.id}:{amount}",
                kind="payout.paid",
                debit=program.account(handle, ledger.AVAILABLE),
                credit=ledger.Account(program.brand.id, "brand", program.brand.id, ledger.PAYOUTS, "USD"),
                amount=amount,
            )
        ],
    )


def entry_kinds(program: Program, line: CommissionLine) -> list[str]:
    return [t["kind"] for t in ledger.transfers_for_line(program.db, line.id)]  # type: ignore[misc]


class TestAccrue:
    def test_per_unit_cpa_pays_each_eligible_line_its_tier_rate_times_quantity(self, program: Program) -> None:
        program.creator("anna", terms=cpa())
        order = program.order(
            at=program.at(5),
            lines=[("SKU-A1", 2, "49.00", "4.00"), ("SKU-B1", 1, "24.00"), ("SKU-C1", 3, "9.50")],
            coupon=program.coupon("anna"),
        )
        assert program.amounts(order) == {(1, "cpa_unit"): 1600, (2, "cpa_unit"): 400, (3, "cpa_unit"): 300}
        assert program.balance("anna", ledger.PENDING) == 2300
        assert program.expense() == -2300
        assert ledger.imbalances(program.db) == []

    def test_per_order_cpa_is_paid_once_on_the_lowest_line_at_the_highest_rate_tier(self, program: Program) -> None:
        program.creator("anna", terms=cpa("order", rates={"a": "2.00", "b": "9.00", "c": "1.00"}))
        order = program.order(
            at=program.at(5),
            lines=[("SKU-C1", 1, "9.50"), ("SKU-A1", 1, "49.00"), ("SKU-B1", 2, "24.00")],
            coupon=program.coupon("anna"),
        )
        [line] = program.lines(order)
        assert (line.line_no, line.rule, line.tier, line.amount) == (1, "cpa_order", "b", 900)

    def test_per_order_cpa_goes_on_the_first_eligible_line(self, db) -> None:  # type: ignore[no-untyped-def]
        program = build(db, excluded=["SKU-X1"])
        program.creator("anna", terms=cpa("order"))
        order = program.order(
            at=program.at(5), lines=[("SKU-X1", 1, "25.00"), ("SKU-B1", 1, "24.00")], coupon=program.coupon("anna")
        )
        assert program.amounts(order) == {(2, "cpa_order"): 400}

    def test_revshare_on_net_revenue_rounds_each_line_half_up_once(self, program: Program) -> None:
        program.creator("anna", terms=revshare("net_revenue", {"a": "10", "b": "10", "c": "10"}))
        order = program.order(
            at=program.at(5),
            lines=[("SKU-A1", 2, "49.00", "4.00"), ("SKU-B1", 1, "24.05")],
            coupon=program.coupon("anna"),
        )
        assert program.amounts(order) == {(1, "revshare_net_revenue"): 940, (2, "revshare_net_revenue"): 241}

    def test_revshare_on_gross_margin_uses_the_unit_cost_or_the_margin_percent(self, program: Program) -> None:
        program.creator("anna", terms=revshare("gross_margin", {"a": "20", "b": "20", "c": "20"}))
        order = program.order(
            at=program.at(5),
            lines=[("SKU-A1", 2, "49.00", "4.00"), ("SKU-B1", 1, "24.00")],
            coupon=program.coupon("anna"),
        )
        first, second = program.lines(order)
        assert (first.amount, first.gross_margin_amount, first.unit_cost_amount) == (1390, 6950, 1225)
        # SKU-B1 gives a 55 % margin: unit cost = 24.00 × (1 − 55 %) = 10.80; margin 13.20 × 20 % = 2.64
        assert (second.amount, second.gross_margin_amount, second.unit_cost_amount) == (264, 1320, 1080)

    def test_changing_the_sku_later_does_not_change_an_existing_line(self, program: Program) -> None:
        program.creator("anna", terms=revshare("gross_margin", {"a": "20", "b": "20", "c": "20"}))
        code = program.coupon("anna")
        before = program.order(at=program.at(5), lines=[("SKU-A1", 1, "49.00")], coupon=code)
        catalog_service.import_skus(
            program.db,
            factories.SYSTEM,
            brand_id=program.brand.id,
            data="sku,name,category,tier,price,currency,unit_cost,margin_pct,return_rate_pct\n"
            "SKU-A1,Serum,skincare,a,55.00,USD,30.00,,4\n",
        )
        after = program.order(at=program.at(6), lines=[("SKU-A1", 1, "49.00")], coupon=code)
        program.db.expire_all()
        [old] = program.lines(before)
        [new] = program.lines(after)
        assert (old.amount, old.unit_cost_amount, old.unit_price_amount) == (735, 1225, 4900)
        assert (new.amount, new.unit_cost_amount, new.unit_price_amount) == (380, 3000, 5500)

    def test_returning_customers_earn_the_returning_rates(self, program: Program) -> None:
        program.creator("anna", terms=cpa(returning={"a": "3.00", "b": "1.50", "c": "0.50"}))
        code = program.coupon("anna")
        new = program.order(at=program.at(5), lines=[("SKU-A1", 2, "49.00")], coupon=code, new_customer=True)
        back = program.order(at=program.at(5), lines=[("SKU-A1", 2, "49.00")], coupon=code, new_customer=False)
        unknown = program.order(at=program.at(5), lines=[("SKU-A1", 2, "49.00")], coupon=code, new_customer=None)
        assert [program.lines(o)[0].amount for o in (new, back, unknown)] == [1600, 600, 1600]
        assert [program.lines(o)[0].customer_type for o in (new, back, unknown)] == ["new", "returning", "new"]

    def test_the_cap_per_order_limits_the_order_total(self, program: Program) -> None:
        program.creator("anna", terms=cpa(cap_per_order="10.00"))
        order = program.order(
            at=program.at(5), lines=[("SKU-A1", 1, "49.00"), ("SKU-B1", 1, "24.00")], coupon=program.coupon("anna")
        )
        assert program.amounts(order) == {(1, "cpa_unit"): 800, (2, "cpa_unit"): 200}
        assert program.balance("anna", ledger.PENDING) == 1000

    def test_the_cap_per_period_limits_a_calendar_month(self, program: Program) -> None:
        program.creator("anna", terms=cpa(cap_per_period="20.00"))
        code = program.coupon("anna")
        totals = [
            sum(
                program.amounts(program.order(at=program.at(day), lines=[("SKU-A1", 2, "49.00")], coupon=code)).values()
            )
            for day in (1, 2, 3, 40)
        ]
        assert totals == [1600, 400, 0, 1600]  # the 4th order falls in the next month

    def test_a_contract_in_euros_converts_a_dollar_order_at_the_rate_of_its_day(self, program: Program) -> None:
        program.creator("anna", terms={**revshare("net_revenue", {"a": "10"}), "currency": "EUR"})
        program.fx(program.at(4).date(), "USD", "EUR", "0.9234")
        program.fx(program.at(9).date(), "USD", "EUR", "0.5")
        order = program.order(at=program.at(5), lines=[("SKU-A1", 2, "49.00", "4.00")], coupon=program.coupon("anna"))
        [line] = program.lines(order)
        assert (line.currency, line.order_currency, line.fx_rate, line.amount) == ("EUR", "USD", "0.9234", 868)
        assert program.balance("anna", ledger.PENDING, "EUR") == 868  # 94.00 × 0.9234 × 10 % = 8.67996

    def test_fx_rounds_half_up_once_per_line_not_on_the_converted_basis(self, program: Program) -> None:
        program.creator("anna", terms={**revshare("net_revenue", {"a": "50"}), "currency": "EUR"})
        program.fx(program.at(5).date(), "USD", "EUR", "0.925")
        order = program.order(at=program.at(5), lines=[("SKU-A1", 1, "1.00")], coupon=program.coupon("anna"))
        assert program.lines(order)[0].amount == 46  # 0.4625 → 0.46; rounding 0.925 to 0.93 first gives 0.47

    def test_an_inverse_rate_is_used_when_only_the_other_direction_was_imported(self, program: Program) -> None:
        program.creator("anna", terms={**revshare("net_revenue", {"a": "10"}), "currency": "EUR"})
        program.fx(program.at(5).date(), "EUR", "USD", "1.25")
        order = program.order(at=program.at(5), lines=[("SKU-A1", 1, "100.00")], coupon=program.coupon("anna"))
        [line] = program.lines(order)
        assert (line.fx_rate, line.amount) == ("0.800000000000", 800)

    def test_a_missing_fx_rate_refuses_the_order_until_it_is_imported(self, program: Program) -> None:
        program.creator("anna", terms={**cpa(), "currency": "EUR"})
        code = program.coupon("anna")
        with pytest.raises(ValidationFailedError, match="no FX rate USD→EUR"):
            program.order(at=program.at(5), lines=[("SKU-A1", 1, "49.00")], coupon=code)

    def test_the_contract_verification_window_sets_when_a_line_clears(self, program: Program) -> None:
        program.creator("anna", terms=cpa(verification_window_days=14))
        order = program.order(
            at=program.at(5), lines=[("SKU-A1", 1, "49.00"), ("SKU-C1", 1, "9.50")], coupon=program.coupon("anna")
        )
        assert {c.eligible_at for c in program.lines(order)} == {program.at(19)}

    def test_without_a_contract_window_the_sku_return_rate_sets_it(self, program: Program) -> None:
        program.creator("anna", terms=cpa())
        order = program.order(
            at=program.at(5),
            lines=[(sku, 1, "10.00") for sku in ("SKU-X1", "SKU-A1", "SKU-A2", "SKU-B1", "SKU-B2", "SKU-C1")],
            coupon=program.coupon("anna"),
        )
        days = [(c.sku, (c.eligible_at - order.ordered_at).days) for c in program.lines(order)]
        # return rates 0 %, 4 %, 5 %, 12 %, 15 %, 20 %: ≤ 5 % → 30 days, ≤ 15 % → 60, above → 90
        assert days == [("SKU-X1", 30), ("SKU-A1", 30), ("SKU-A2", 30), ("SKU-B1", 60), ("SKU-B2", 60), ("SKU-C1", 90)]

    def test_shipping_and_tax_never_earn(self, program: Program) -> None:
        program.creator("anna", terms=revshare("net_revenue", {"a": "10"}))
        order = program.order(
            at=program.at(5),
            lines=[("SKU-A1", 1, "49.00")],
            shipping="5.00",
            tax="3.20",
            coupon=program.coupon("anna"),
        )
        assert program.amounts(order) == {(1, "revshare_net_revenue"): 490}

    def test_each_line_keeps_the_facts_that_explain_it(self, program: Program) -> None:
        program.creator("anna", terms=cpa())
        order = program.order(at=program.at(5), lines=[("SKU-A1", 2, "49.00", "4.00")], coupon=program.coupon("anna"))
        [line] = program.lines(order)
        contract = program.contracts["anna"]
        assert (line.contract_id, line.contract_version, line.period) == (
            contract.id,
            1,
            program.at(5).strftime("%Y-%m"),
        )
        assert (line.rate, line.quantity, line.net_revenue_amount, line.payee_type) == ("8.00", 2, 9400, "creator")
        assert entry_kinds(program, line) == ["commission.accrued"]

    def test_a_creator_under_an_agency_contract_is_paid_through_the_agency(self, program: Program) -> None:
        creator = program.creator("anna", contracted=False)
        agency = factories.agency(program.db, program.brand.id)
        program.db.add(RosterEntry(agency_id=agency.id, creator_id=creator.id))
        contract = factories.contract(program.db, program.brand.id, agency_id=agency.id, terms=cpa())
        contract.starts_at = program.start
        contract.status = "accepted"
        order = program.order(at=program.at(5), lines=[("SKU-A1", 1, "49.00")], coupon=program.coupon("anna"))
        [line] = program.lines(order)
        assert (line.payee_type, line.payee_id, line.creator_id) == ("agency", agency.id, creator.id)


class TestEligibility:
    def test_a_sku_outside_the_offer_earns_nothing_and_says_why(self, db) -> None:  # type: ignore[no-untyped-def]
        program = build(db, eligible=["SKU-A1"])
        program.creator("anna", terms=cpa())
        order = program.order(
            at=program.at(5), lines=[("SKU-A1", 1, "49.00"), ("SKU-B1", 1, "24.00")], coupon=program.coupon("anna")
        )
        assert program.amounts(order) == {(1, "cpa_unit"): 800}
        _, reasons = commission_service.eligibility(
            db, order=order, lines=program.order_lines(order), campaign=program.campaign
        )
        assert reasons == {2: f"SKU SKU-B1 is not eligible for offer {_offer_code(program)}"}

    def test_an_excluded_sku_earns_nothing_and_says_why(self, db) -> None:  # type: ignore[no-untyped-def]
        program = build(db, excluded=["SKU-X1"])
        program.creator("anna", terms=cpa())
        order = program.order(
            at=program.at(5), lines=[("SKU-A1", 1, "49.00"), ("SKU-X1", 1, "25.00")], coupon=program.coupon("anna")
        )
        assert program.amounts(order) == {(1, "cpa_unit"): 800}
        _, reasons = commission_service.eligibility(
            db, order=order, lines=program.order_lines(order), campaign=program.campaign
        )
        assert reasons == {2: f"SKU SKU-X1 is excluded from offer {_offer_code(program)}"}

    def test_an_order_after_the_offer_window_earns_nothing(self, db) -> None:  # type: ignore[no-untyped-def]
        program = build(db, offer_days=10)
        program.creator("anna", terms=cpa())
        order = program.order(at=program.at(12), lines=[("SKU-A1", 1, "49.00")], coupon=program.coupon("anna"))
        assert program.lines(order) == []
        _, reasons = commission_service.eligibility(
            db, order=order, lines=program.order_lines(order), campaign=program.campaign
        )
        assert reasons == {1: f"the order is outside offer {_offer_code(program)}'s window"}

    def test_a_sku_missing_from_the_catalog_earns_nothing(self, program: Program) -> None:
        program.creator("anna", terms=cpa())
        order = program.order(at=program.at(5), lines=[("SKU-ZZ", 1, "9.00")], coupon=program.coupon("anna"))
        assert program.lines(order) == []
        _, reasons = commission_service.eligibility(
            program.db, order=order, lines=program.order_lines(order), campaign=program.campaign
        )
        assert reasons == {1: "SKU SKU-ZZ is not in the catalog"}


class TestReverse:
    def test_a_partial_return_reverses_amount_times_refunded_over_net_half_up(self, program: Program) -> None:
        program.creator("anna", terms=cpa())
        order = program.order(at=program.at(5), lines=[("SKU-B1", 1, "24.00")], coupon=program.coupon("anna"))
        program.refund(order, at=program.at(6), lines=[("SKU-B1", "15.03")])
        [line] = program.lines(order)
        assert line.reversed_amount == 251  # 400 × 15.03 / 24.00 = 250.5 → 251
        assert entry_kinds(program, line) == ["commission.accrued", "commission.reversed"]
        assert program.balance("anna", ledger.PENDING) == 149
        assert program.expense() == -149

    def test_successive_partial_refunds_end_exactly_at_the_amount(self, program: Program) -> None:
        program.creator("anna", terms=cpa())
        order = program.order(at=program.at(5), lines=[("SKU-B1", 1, "24.00")], coupon=program.coupon("anna"))
        taken = []
        for day in (6, 7, 8):
            before = program.lines(order)[0].reversed_amount
            program.refund(order, at=program.at(day), lines=[("SKU-B1", "8.00")])
            taken.append(program.lines(order)[0].reversed_amount - before)
        assert taken == [133, 133, 134]  # the refund that empties the line takes exactly what is left
        assert program.balance("anna", ledger.PENDING) == 0

    def test_rounded_reversals_never_take_more_than_was_earned(self, program: Program) -> None:
        program.creator("anna", terms=cpa(rates={"a": "8.00", "b": "4.00", "c": "0.03"}))
        order = program.order(at=program.at(5), lines=[("SKU-C1", 1, "9.50")], coupon=program.coupon("anna"))
        for amount in ("1.59", "1.59", "1.59", "4.73"):
            program.refund(order, at=program.at(6), lines=[("SKU-C1", amount)])
            line = program.lines(order)[0]
            assert line.reversed_amount <= line.amount == 3
        assert line.reversed_amount == 3
        assert program.balance("anna", ledger.PENDING) == 0

    def test_a_per_order_cpa_reverses_against_the_order_eligible_net_revenue(self, db) -> None:  # type: ignore[no-untyped-def]
        program = build(db, excluded=["SKU-X1"])
        program.creator("anna", terms=cpa("order"))
        order = program.order(
            at=program.at(5),
            lines=[("SKU-A1", 1, "49.00"), ("SKU-B1", 1, "24.00"), ("SKU-X1", 1, "25.00")],
            coupon=program.coupon("anna"),
        )
        [line] = program.lines(order)
        assert (line.line_no, line.amount) == (1, 800)
        program.refund(order, at=program.at(6), lines=[("SKU-B1", "24.00")])
        assert program.lines(order)[0].reversed_amount == 263  # 800 × 24.00 / 73.00 = 263.01
        program.refund(order, at=program.at(6), lines=[("SKU-X1", "25.00")])
        assert program.lines(order)[0].reversed_amount == 263  # an ineligible line is not in the base
        program.refund(order, at=program.at(7), lines=[("SKU-A1", "49.00")])
        assert program.lines(order)[0].reversed_amount == 800

    def test_a_hybrid_per_order_cpa_reverses_against_every_eligible_line(self, program: Program) -> None:
        terms = {
            "model": "hybrid",
            "currency": "USD",
            "cpa": {"per": "order", "rates": {"new": {"a": "8.00"}}},
            "revshare": {"basis": "net_revenue", "rates": {"new": {"b": "10"}}},
            "retainer": {"amount": "100.00"},
        }
        program.creator("anna", terms=terms)
        order = program.order(
            at=program.at(5), lines=[("SKU-A1", 1, "49.00"), ("SKU-B1", 1, "51.00")], coupon=program.coupon("anna")
        )
        assert program.amounts(order) == {(1, "cpa_order"): 800, (2, "revshare_net_revenue"): 510}
        program.refund(order, at=program.at(6), lines=[("SKU-A1", "49.00")])
        per_order = next(c for c in program.lines(order) if c.rule == "cpa_order")
        assert per_order.reversed_amount == 392  # 800 × 49.00 / 100.00, not all of it

    def test_refunding_a_line_that_earned_nothing_reverses_nothing(self, db) -> None:  # type: ignore[no-untyped-def]
        program = build(db, excluded=["SKU-X1"])
        program.creator("anna", terms=cpa())
        order = program.order(
            at=program.at(5), lines=[("SKU-A1", 1, "49.00"), ("SKU-X1", 1, "25.00")], coupon=program.coupon("anna")
        )
        program.refund(order, at=program.at(6), lines=[("SKU-X1", "25.00")])
        assert program.lines(order)[0].reversed_amount == 0

    def test_a_return_inside_the_window_reverses_from_pending(self, program: Program) -> None:
        program.creator("anna", terms=cpa())
        order = program.order(at=program.at(5), lines=[("SKU-A1", 1, "49.00")], coupon=program.coupon("anna"))
        program.refund(order, at=program.at(20), lines=[("SKU-A1", "49.00")])
        [line] = program.lines(order)
        assert line.reversed_amount == 800 and line.cleared_at is None
        assert (program.balance("anna", ledger.PENDING), program.balance("anna", ledger.AVAILABLE)) == (0, 0)

    def test_a_return_after_payout_claws_back_into_a_negative_balance_that_later_earnings_net_off(
        self, program: Program
    ) -> None:
        program.creator("anna", terms=cpa())
        code = program.coupon("anna")
        order = program.order(at=program.at(5), lines=[("SKU-A1", 1, "49.00")], coupon=code)
        commission_service.clear_due(program.db, now=program.at(36))
        pay_out(program, "anna", 800)
        program.refund(order, at=program.at(40), lines=[("SKU-A1", "49.00")])
        [line] = program.lines(order)
        assert entry_kinds(program, line) == ["commission.accrued", "commission.cleared", "commission.clawed_back"]
        assert program.balance("anna", ledger.AVAILABLE) == -800
        later = program.order(at=program.at(41), lines=[("SKU-A1", 1, "49.00")], coupon=code)
        assert program.balance("anna", ledger.AVAILABLE) == -800  # still pending: nothing nets off yet
        commission_service.clear_due(program.db, now=program.at(72))
        assert program.lines(later)[0].cleared_at is not None
        assert program.balance("anna", ledger.AVAILABLE) == 0
        assert ledger.imbalances(program.db) == []

    def test_a_return_after_the_window_but_before_the_clearing_job_claws_back_cleanly(self, program: Program) -> None:
        program.creator("anna", terms=cpa())
        order = program.order(at=program.at(5), lines=[("SKU-B1", 1, "24.00")], coupon=program.coupon("anna"))
        program.refund(order, at=program.at(70), lines=[("SKU-B1", "6.00")])  # the 60-day window ended on day 65
        [line] = program.lines(order)
        assert line.cleared_at is not None and line.reversed_amount == 100
        assert entry_kinds(program, line) == ["commission.accrued", "commission.cleared", "commission.clawed_back"]
        assert program.balance("anna", ledger.PENDING) == 0
        assert program.balance("anna", ledger.AVAILABLE) == 300

    def test_a_chargeback_reverses_like_a_return(self, program: Program) -> None:
        program.creator("anna", terms=cpa())
        code = program.coupon("anna")
        early = program.order(at=program.at(5), lines=[("SKU-B1", 1, "24.00")], coupon=code)
        late = program.order(at=program.at(5), lines=[("SKU-B1", 1, "24.00")], coupon=code)
        program.refund(early, at=program.at(6), lines=[("SKU-B1", "15.03")], kind="chargeback")
        commission_service.clear_due(program.db, now=program.at(66))
        program.refund(late, at=program.at(80), lines=[("SKU-B1", "15.03")], kind="chargeback")
        assert program.lines(early)[0].reversed_amount == program.lines(late)[0].reversed_amount == 251
        assert entry_kinds(program, program.lines(early)[0])[1] == "commission.reversed"
        assert entry_kinds(program, program.lines(late)[0])[-1] == "commission.clawed_back"
        memos = program.db.scalars(select(LedgerEntry.memo).where(LedgerEntry.kind == "commission.clawed_back"))
        assert any(memo.startswith("chargeback") for memo in memos)

    def test_the_same_refund_twice_changes_nothing(self, program: Program) -> None:
        program.creator("anna", terms=cpa())
        order = program.order(at=program.at(5), lines=[("SKU-B1", 1, "24.00")], coupon=program.coupon("anna"))
        program.refund(order, at=program.at(6), lines=[("SKU-B1", "8.00")], refund_id="R-SAME")
        program.refund(order, at=program.at(6), lines=[("SKU-B1", "8.00")], refund_id="R-SAME")
        assert program.lines(order)[0].reversed_amount == 133
        assert program.balance("anna", ledger.PENDING) == 267


class TestClearDue:
    def test_lines_clear_from_pending_to_available_when_their_window_ends(self, program: Program) -> None:
        program.creator("anna", terms=cpa())
        order = program.order(
            at=program.at(5), lines=[("SKU-A1", 1, "49.00"), ("SKU-B1", 1, "24.00")], coupon=program.coupon("anna")
        )
        assert commission_service.clear_due(program.db, now=program.at(34)) == 0
        assert commission_service.clear_due(program.db, now=program.at(35)) == 1  # SKU-A1: 30 days
        assert (program.balance("anna", ledger.PENDING), program.balance("anna", ledger.AVAILABLE)) == (400, 800)
        assert commission_service.clear_due(program.db, now=program.at(65)) == 1  # SKU-B1: 60 days
        assert commission_service.clear_due(program.db, now=program.at(90)) == 0
        assert all(c.cleared_at == program.at(65) or c.sku == "SKU-A1" for c in program.lines(order))
        assert (program.balance("anna", ledger.PENDING), program.balance("anna", ledger.AVAILABLE)) == (0, 1200)

    def test_only_what_was_not_reversed_clears(self, program: Program) -> None:
        program.creator("anna", terms=cpa())
        order = program.order(at=program.at(5), lines=[("SKU-B1", 1, "24.00")], coupon=program.coupon("anna"))
        program.refund(order, at=program.at(6), lines=[("SKU-B1", "6.00")])
        commission_service.clear_due(program.db, now=program.at(65))
        assert (program.balance("anna", ledger.PENDING), program.balance("anna", ledger.AVAILABLE)) == (0, 300)

    def test_a_rolling_reserve_holds_its_share_until_release(self, program: Program) -> None:
        program.creator("anna", terms=cpa(reserve_pct="10", reserve_release_days=30))
        order = program.order(at=program.at(5), lines=[("SKU-A1", 3, "49.00")], coupon=program.coupon("anna"))
        commission_service.clear_due(program.db, now=program.at(35))
        [line] = program.lines(order)
        assert (line.reserve_amount, line.reserve_release_at) == (240, program.at(65))
        assert (program.balance("anna", ledger.AVAILABLE), program.balance("anna", ledger.RESERVE)) == (2160, 240)


class TestReleaseReserves:
    def test_a_reserve_moves_to_available_on_its_release_date_once(self, program: Program) -> None:
        program.creator("anna", terms=cpa(reserve_pct="10", reserve_release_days=30))
        program.order(at=program.at(5), lines=[("SKU-A1", 3, "49.00")], coupon=program.coupon("anna"))
        commission_service.clear_due(program.db, now=program.at(35))
        assert commission_service.release_reserves(program.db, now=program.at(64)) == 0
        assert commission_service.release_reserves(program.db, now=program.at(65)) == 1
        assert commission_service.release_reserves(program.db, now=program.at(99)) == 0
        assert (program.balance("anna", ledger.AVAILABLE), program.balance("anna", ledger.RESERVE)) == (2400, 0)
        assert ledger.imbalances(program.db) == []


def _offer_code(program: Program) -> str:
    from clearline.models import Offer

    offer = program.db.get(Offer, program.campaign.offer_id)
    assert offer is not None
    return offer.code

"""The pure commission arithmetic: one half-up rounding per line, caps in whole minor units."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from clearline.commission import calc
from clearline.contract.terms import ContractTerms


def _terms(**overrides: Any) -> ContractTerms:
    base: dict[str, Any] = {
        "model": "cpa",
        "currency": "USD",
        "cpa": {"per": "unit", "rates": {"new": {"a": "8.00", "b": "4.00", "c": "1.00"}}},
    }
    base.update(overrides)
    return ContractTerms.model_validate(base)


def _line(line_no: int, tier: str, quantity: int = 1, net: str = "10.00", cost: str = "0") -> calc.LineInput:
    return calc.LineInput(
        order_line_id=100 + line_no,
        line_no=line_no,
        sku=f"SKU-{line_no}",
        quantity=quantity,
        net=Decimal(net),
        unit_price=Decimal(net) / quantity,
        unit_cost=Decimal(cost),
        tier=tier,
        verification_days=30,
    )


def _amounts(result: list[calc.LineCommission]) -> list[tuple[int, str, int]]:
    return [(x.line.line_no, x.rule, x.amount) for x in result]


class TestCompute:
    def test_per_unit_cpa_pays_the_tier_rate_times_quantity(self) -> None:
        result = calc.compute(
            _terms(), [_line(1, "a", 2), _line(2, "b", 1), _line(3, "c", 3)], is_new_customer=True, fx=Decimal(1)
        )
        assert _amounts(result) == [(1, "cpa_unit", 1600), (2, "cpa_unit", 400), (3, "cpa_unit", 300)]

    def test_per_order_cpa_pays_once_on_the_lowest_line_at_the_highest_rate(self) -> None:
        terms = _terms(cpa={"per": "order", "rates": {"new": {"a": "2.00", "b": "9.00", "c": "1.00"}}})
        result = calc.compute(
            terms, [_line(3, "b"), _line(1, "c", 5), _line(2, "a")], is_new_customer=True, fx=Decimal(1)
        )
        assert _amounts(result) == [(1, "cpa_order", 900)]
        assert result[0].tier == "b" and "highest tier" in result[0].note

    def test_a_line_whose_tier_has_no_rate_earns_nothing(self) -> None:
        terms = _terms(cpa={"per": "unit", "rates": {"new": {"a": "8.00"}}})
        assert _amounts(calc.compute(terms, [_line(1, "c")], is_new_customer=True, fx=Decimal(1))) == []

    def test_revshare_on_net_revenue_rounds_half_up_once(self) -> None:
        terms = _terms(model="revshare", cpa=None, revshare={"basis": "net_revenue", "rates": {"new": {"a": "10"}}})
        result = calc.compute(terms, [_line(1, "a", net="24.05")], is_new_customer=True, fx=Decimal(1))
        assert _amounts(result) == [(1, "revshare_net_revenue", 241)]  # 2.405 → 2.41, not banker's 2.40

    def test_revshare_on_gross_margin_subtracts_quantity_times_unit_cost(self) -> None:
        terms = _terms(model="revshare", cpa=None, revshare={"basis": "gross_margin", "rates": {"new": {"a": "20"}}})
        result = calc.compute(terms, [_line(1, "a", 2, net="94.00", cost="12.25")], is_new_customer=True, fx=Decimal(1))
        assert _amounts(result) == [(1, "revshare_gross_margin", 1390)]  # (94.00 − 24.50) × 20 %

    def test_a_negative_gross_margin_earns_zero_not_a_debt(self) -> None:
        terms = _terms(model="revshare", cpa=None, revshare={"basis": "gross_margin", "rates": {"new": {"a": "20"}}})
        result = calc.compute(terms, [_line(1, "a", 1, net="5.00", cost="9.00")], is_new_customer=True, fx=Decimal(1))
        assert _amounts(result) == [(1, "revshare_gross_margin", 0)]

    def test_fx_converts_the_basis_and_rounds_only_the_final_amount(self) -> None:
        terms = _terms(
            model="revshare",
            currency="EUR",
            cpa=None,
            revshare={"basis": "net_revenue", "rates": {"new": {"a": "50"}}},
        )
        result = calc.compute(terms, [_line(1, "a", net="1.00")], is_new_customer=True, fx=Decimal("0.925"))
        assert result[0].amount == 46  # 1.00 × 0.925 × 50 % = 0.4625 → 0.46 (rounding the basis first gives 0.47)
        assert result[0].basis == Decimal("0.92500")

    def test_cpa_rates_are_already_in_the_contract_currency(self) -> None:
        result = calc.compute(_terms(currency="EUR"), [_line(1, "a", 2)], is_new_customer=True, fx=Decimal("0.9"))
        assert result[0].amount == 1600

    def test_returning_customers_get_the_returning_rates(self) -> None:
        terms = _terms(cpa={"per": "unit", "rates": {"new": {"a": "8.00"}, "returning": {"a": "3.00"}}})
        returning = calc.compute(terms, [_line(1, "a", 2)], is_new_customer=False, fx=Decimal(1))
        new = calc.compute(terms, [_line(1, "a", 2)], is_new_customer=True, fx=Decimal(1))
        unknown = calc.compute(terms, [_line(1, "a", 2)], is_new_customer=None, fx=Decimal(1))
        assert [returning[0].amount, new[0].amount, unknown[0].amount] == [600, 1600, 1600]
        assert [returning[0].customer_type, unknown[0].customer_type] == ["returning", "new"]

    def test_hybrid_terms_earn_both_cpa_and_revshare_lines(self) -> None:
        terms = _terms(
            model="hybrid",
            revshare={"basis": "net_revenue", "rates": {"new": {"a": "5"}}},
            retainer={"amount": "100.00"},
        )
        result = calc.compute(terms, [_line(1, "a", 1, net="50.00")], is_new_customer=True, fx=Decimal(1))
        assert _amounts(result) == [(1, "cpa_unit", 800), (1, "revshare_net_revenue", 250)]

    def test_the_order_cap_trims_lines_in_order_and_notes_it(self) -> None:
        result = calc.compute(
            _terms(cap_per_order="10.00"), [_line(1, "a", 1), _line(2, "b", 1)], is_new_customer=True, fx=Decimal(1)
        )
        assert _amounts(result) == [(1, "cpa_unit", 800), (2, "cpa_unit", 200)]
        assert result[1].note == "order cap: 400 → 200 minor units"

    def test_the_period_cap_gives_only_the_room_left(self) -> None:
        result = calc.compute(
            _terms(),
            [_line(1, "a", 1), _line(2, "b", 1)],
            is_new_customer=True,
            fx=Decimal(1),
            period_cap_remaining=500,
        )
        assert _amounts(result) == [(1, "cpa_unit", 500), (2, "cpa_unit", 0)]

    def test_an_exhausted_period_cap_pays_nothing(self) -> None:
        result = calc.compute(
            _terms(), [_line(1, "a", 1)], is_new_customer=True, fx=Decimal(1), period_cap_remaining=-3
        )
        assert _amounts(result) == [(1, "cpa_unit", 0)]


class TestCustomerType:
    def test_returning_needs_both_the_shop_saying_so_and_returning_rates(self) -> None:
        with_rates = _terms(cpa={"per": "unit", "rates": {"new": {"a": "8"}, "returning": {"a": "3"}}})
        assert calc.customer_type(with_rates, False) == "returning"
        assert calc.customer_type(with_rates, None) == "new"
        assert calc.customer_type(_terms(), False) == "new"


class TestReversal:
    def test_a_partial_refund_reverses_in_proportion_rounded_half_up(self) -> None:
        assert calc.reversal(400, 0, 1503, 1503, 2400) == 251  # 400 × 15.03 / 24.00 = 250.5 → 251

    def test_the_refund_that_empties_the_base_takes_exactly_what_is_left(self) -> None:
        assert calc.reversal(400, 266, 800, 2400, 2400) == 134

    def test_a_reversal_never_takes_more_than_remains(self) -> None:
        assert calc.reversal(3, 2, 159, 318, 950) == 1
        assert calc.reversal(3, 3, 159, 477, 950) == 0

    def test_nothing_is_reversed_for_a_zero_refund_or_a_zero_base(self) -> None:
        assert calc.reversal(400, 0, 0, 0, 2400) == 0
        assert calc.reversal(400, 0, 100, 100, 0) == 0


class TestVolumeBonus:
    def test_each_band_pays_its_own_percentage_only(self) -> None:
        tiers = [(Decimal(0), Decimal(0)), (Decimal(1000), Decimal(2)), (Decimal(5000), Decimal(5))]
        assert calc.volume_bonus(Decimal("6000.00"), tiers, "USD") == 13000  # 4000 × 2 % + 1000 × 5 %
        assert calc.volume_bonus(Decimal("999.99"), tiers, "USD") == 0

"""Commission arithmetic, pure: order lines + contract terms → commission amounts.

Each line is computed in Decimal and rounded half-up to the contract currency's minor unit exactly
once; caps then trim whole minor units, so totals are always sums of rounded lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from clearline.contract.terms import ContractTerms, TierRates
from clearline.kit import money

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class LineInput:
    order_line_id: int
    line_no: int
    sku: str
    quantity: int
    net: Decimal  # order currency: quantity × unit price − discount
    unit_price: Decimal  # SKU snapshot, order currency
    unit_cost: Decimal  # SKU snapshot, order currency
    tier: str
    verification_days: int

    @property
    def gross_margin(self) -> Decimal:
        return self.net - self.unit_cost * self.quantity


@dataclass(frozen=True)
class LineCommission:
    line: LineInput
    rule: str
    tier: str
    rate: Decimal
    customer_type: str
    basis: Decimal  # contract currency (money) or units
    amount: int  # minor units, contract currency
    note: str = ""


def _rates(table: TierRates, customer_type: str) -> dict[str, Decimal]:
    if customer_type == "returning" and table.returning is not None:
        return table.returning
    return table.new


def customer_type(terms: ContractTerms, is_new_customer: bool | None) -> str:
    """Returning rates apply only when the shop says the customer is returning and the contract has them."""
    tables = [plan.rates for plan in (terms.cpa, terms.revshare) if plan is not None]
    if is_new_customer is False and any(t.returning is not None for t in tables):
        return "returning"
    return "new"


def compute(
    terms: ContractTerms,
    lines: list[LineInput],
    *,
    is_new_customer: bool | None,
    fx: Decimal,
    period_cap_remaining: int | None = None,
) -> list[LineCommission]:
    """Commission for the eligible lines of one attributed order (``lines`` are the eligible ones)."""
    currency = terms.currency
    kind = customer_type(terms, is_new_customer)
    result: list[LineCommission] = []
    ordered = sorted(lines, key=lambda x: x.line_no)
    if terms.cpa is not None:
        rates = _rates(terms.cpa.rates, kind)
        if terms.cpa.per == "unit":
            for line in ordered:
                if line.tier not in rates:
                    continue
                rate = rates[line.tier]
                result.append(
                    LineCommission(
                        line,
                        "cpa_unit",
                        line.tier,
                        rate,
                        kind,
                        Decimal(line.quantity),
                        money.to_minor(rate * line.quantity, currency),
                    )
                )
        else:
            priced = [line for line in ordered if line.tier in rates]
            if priced:
                top = max(priced, key=lambda x: (rates[x.tier], -x.line_no))
                rate = rates[top.tier]
                result.append(
                    LineCommission(
                        priced[0],
                        "cpa_order",
                        top.tier,
                        rate,
                        kind,
                        Decimal(1),
                        money.to_minor(rate, currency),
                        note=f"per order, at the highest tier among eligible lines ({top.tier})",
                    )
                )
    if terms.revshare is not None:
        rates = _rates(terms.revshare.rates, kind)
        rule = f"revshare_{terms.revshare.basis}"
        for line in ordered:
            if line.tier not in rates:
                continue
            base = line.net if terms.revshare.basis == "net_revenue" else max(line.gross_margin, Decimal(0))
            basis = base * fx
            result.append(
                LineCommission(
                    line,
                    rule,
                    line.tier,
                    rates[line.tier],
                    kind,
                    basis,
                    money.to_minor(basis * rates[line.tier] / HUNDRED, currency),
                )
            )
    result = _cap(
        result, money.to_minor(terms.cap_per_order, currency) if terms.cap_per_order is not None else None, "order cap"
    )
    return _cap(result, period_cap_remaining, "period cap")


def _cap(lines: list[LineCommission], cap: int | None, label: str) -> list[LineCommission]:
    if cap is None:
        return lines
    room = max(cap, 0)
    capped = []
    for item in lines:
        take = min(item.amount, room)
        room -= take
        if take != item.amount:
            note = f"{label}: {item.amount} → {take} minor units"
            item = LineCommission(
                item.line,
                item.rule,
                item.tier,
                item.rate,
                item.customer_type,
                item.basis,
                take,
                "; ".join(x for x in (item.note, note) if x),
            )
        capped.append(item)
    return capped


def reversal(amount: int, reversed_so_far: int, refunded_now: int, refunded_total: int, base: int) -> int:
    """The share of a commission a refund takes back: amount × refunded ÷ base, half-up, never more than
    what remains; the refund that empties the base takes exactly what is left."""
    remaining = amount - reversed_so_far
    if remaining <= 0 or refunded_now <= 0 or base <= 0:
        return 0
    if refunded_total >= base:
        return remaining
    return min(money.round_units(Decimal(amount) * refunded_now / base), remaining)


def volume_bonus(revenue: Decimal, tiers: list[tuple[Decimal, Decimal]], currency: str) -> int:
    """Marginal bonus: each tier's % applies only to the revenue inside its band."""
    bonus = Decimal(0)
    bounds = [t[0] for t in tiers[1:]] + [None]
    for (start, pct), end in zip(tiers, bounds, strict=True):
        top = revenue if end is None else min(revenue, end)
        if top > start:
            bonus += (top - start) * pct / HUNDRED
    return money.to_minor(bonus, currency)

"""Money properties, checked by hypothesis on random programs of orders, partial refunds, clearing runs,
reserve releases and replays, all through the real services (ingest → attribution → commission → ledger).

An independent oracle recomputes every commission line from the spec's Decimal formulas (rounded half-up
once) and every reversal from amount × refunded ÷ base; the database must agree to the minor unit.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clearline.commission import service as commission_service
from clearline.ledger import service as ledger
from clearline.models import Attribution, CommissionLine, LedgerEntry, LedgerPosting, Order, OrderLine, Refund
from tests.commission.program import Program, build

FX_USD_EUR = Decimal("0.9137")

TERMS: dict[str, dict[str, Any]] = {
    "unit": {
        "model": "cpa",
        "currency": "USD",
        "cpa": {
            "per": "unit",
            "rates": {"new": {"a": "8.00", "b": "4.00", "c": "1.00"}, "returning": {"a": "3.25", "b": "1.5", "c": "0"}},
        },
    },
    "order": {
        "model": "cpa",
        "currency": "USD",
        "cpa": {
            "per": "order",
            "rates": {"new": {"a": "2.00", "b": "9.00", "c": "1.50"}, "returning": {"a": "1", "b": "2", "c": "3"}},
        },
    },
    "net": {
        "model": "revshare",
        "currency": "USD",
        "revshare": {
            "basis": "net_revenue",
            "rates": {"new": {"a": "10", "b": "12.5", "c": "7.25"}, "returning": {"a": "5", "b": "6.125", "c": "1"}},
        },
    },
    "margin": {
        "model": "revshare",
        "currency": "USD",
        "revshare": {"basis": "gross_margin", "rates": {"new": {"a": "20", "b": "15", "c": "33.3333"}}},
        "reserve_pct": "10",
        "reserve_release_days": 20,
    },
    "hybrid": {
        "model": "hybrid",
        "currency": "USD",
        "cpa": {"per": "unit", "rates": {"new": {"a": "3.00", "b": "2.00", "c": "0.75"}}},
        "revshare": {"basis": "net_revenue", "rates": {"new": {"a": "5", "b": "5", "c": "5"}}},
        "retainer": {"amount": "100.00"},
        "cap_per_order": "15.00",
    },
    "eur": {
        "model": "revshare",
        "currency": "EUR",
        "revshare": {"basis": "net_revenue", "rates": {"new": {"a": "9", "b": "9", "c": "9"}}},
    },
}
# tier and unit cost (SKU-B1 gives a 55 % margin: 24.00 × 45 % = 10.80) of the catalog in program.CATALOG
CATALOG: dict[str, tuple[str, Decimal]] = {
    "SKU-A1": ("a", Decimal("12.25")),
    "SKU-A2": ("a", Decimal("20.00")),
    "SKU-B1": ("b", Decimal("24.00") * (1 - Decimal("0.55"))),
    "SKU-B2": ("b", Decimal("6.00")),
    "SKU-C1": ("c", Decimal("3.10")),
    "SKU-X1": ("c", Decimal("25.00")),
}
SKUS = [*CATALOG, "SKU-ZZ"]  # SKU-ZZ is not in the catalog: it never earns


def half_up(value: Decimal) -> int:
    """Round an amount in major units to whole minor units (2-digit currencies), half-up."""
    return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def half_up_units(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class LineSpec:
    line_no: int
    sku: str
    quantity: int
    net: int  # minor units


def oracle(terms: dict[str, Any], lines: list[LineSpec], new_customer: bool | None) -> dict[tuple[int, str], int]:
    """C2 and the rules that hold everywhere, straight from the spec."""
    plans = [terms[p] for p in ("cpa", "revshare") if p in terms]
    returning = new_customer is False and any("returning" in plan["rates"] for plan in plans)

    def rates(plan: dict[str, Any]) -> dict[str, Decimal]:
        table = plan["rates"].get("returning") if returning else None
        return {tier: Decimal(rate) for tier, rate in (table or plan["rates"]["new"]).items()}

    eligible = sorted((x for x in lines if x.sku in CATALOG), key=lambda x: x.line_no)
    fx = FX_USD_EUR if terms["currency"] == "EUR" else Decimal(1)
    result: list[tuple[tuple[int, str], int]] = []
    if "cpa" in terms:
        table = rates(terms["cpa"])
        if terms["cpa"]["per"] == "unit":
            result += [((x.line_no, "cpa_unit"), half_up(table[CATALOG[x.sku][0]] * x.quantity)) for x in eligible]
        elif eligible:
            best = max(table[CATALOG[x.sku][0]] for x in eligible)
            result.append(((eligible[0].line_no, "cpa_order"), half_up(best)))
    if "revshare" in terms:
        basis = terms["revshare"]["basis"]
        table = rates(terms["revshare"])
        for x in eligible:
            tier, unit_cost = CATALOG[x.sku]
            net = Decimal(x.net) / 100
            base = net if basis == "net_revenue" else max(net - x.quantity * unit_cost, Decimal(0))
            result.append(((x.line_no, f"revshare_{basis}"), half_up(base * fx * table[tier] / 100)))
    if "cap_per_order" in terms:
        room = half_up(Decimal(terms["cap_per_order"]))
        capped = []
        for key, amount in result:
            take = min(amount, room)
            room -= take
            capped.append((key, take))
        result = capped
    return dict(result)


def expected_reversal(amount: int, reversed_so_far: int, refunded_now: int, refunded_total: int, base: int) -> int:
    remaining = amount - reversed_so_far
    if remaining <= 0 or refunded_now <= 0 or base <= 0:
        return 0
    if refunded_total >= base:
        return remaining
    return min(half_up_units(Decimal(amount) * refunded_now / base), remaining)


# --- the random programs ---------------------------------------------------------------------------

line_strategy = st.tuples(
    st.sampled_from(SKUS),
    st.integers(1, 5),
    st.integers(1, 40_000),  # unit price, cents
    st.sampled_from([0, 0, 0, 7, 25, 100]),  # discount as % of the line's gross
)
order_step = st.fixed_dictionaries(
    {
        "step": st.just("order"),
        "creator": st.sampled_from(sorted(TERMS)),
        "day": st.integers(0, 45),
        "new": st.sampled_from([True, False, None]),
        "lines": st.lists(line_strategy, min_size=1, max_size=4, unique_by=lambda x: x[0]),
    }
)
refund_step = st.fixed_dictionaries(
    {
        "step": st.just("refund"),
        "order": st.integers(0, 20),
        "line": st.integers(0, 3),
        "share": st.sampled_from(["all", 1, 10, 33, 50, 99]),
        "after": st.integers(0, 120),
        "kind": st.sampled_from(["return", "return", "chargeback"]),
    }
)
clock_step = st.fixed_dictionaries({"step": st.sampled_from(["clear", "release"]), "day": st.integers(0, 220)})
replay_step = st.fixed_dictionaries({"step": st.just("replay"), "event": st.integers(0, 30)})
programs = st.lists(
    st.one_of(order_step, order_step, refund_step, refund_step, clock_step, replay_step), min_size=1, max_size=14
)


@dataclass
class Run:
    program: Program
    coupons: dict[str, str]
    events: list[tuple[str, Any]] = field(default_factory=list)  # what was sent, for replays
    orders: list[tuple[Order, str, list[LineSpec], int]] = field(default_factory=list)  # order, creator, lines, day
    expected_reversed: dict[tuple[int, int, str], int] = field(default_factory=dict)
    refunded: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))
    now: int = 0

    def send_order(self, step: dict[str, Any]) -> None:
        program = self.program
        lines = []
        sent = []
        for number, (sku, quantity, price, discount_pct) in enumerate(step["lines"], start=1):
            gross = quantity * price
            discount = gross * discount_pct // 100
            lines.append(LineSpec(number, sku, quantity, gross - discount))
            sent.append((sku, quantity, _money(price), _money(discount)))
        order_id = f"P-{len(self.orders)}"
        kwargs = {
            "at": program.at(step["day"]),
            "lines": sent,
            "coupon": self.coupons[step["creator"]],
            "new_customer": step["new"],
            "shipping": "4.95",
            "tax": "1.10",
        }
        order = program.order(order_id, **kwargs)  # type: ignore[arg-type]
        self.events.append(("order", (order_id, kwargs)))
        self.orders.append((order, step["creator"], lines, step["day"]))
        want = oracle(TERMS[step["creator"]], lines, step["new"])
        got = {(c.line_no, c.rule): c.amount for c in program.lines(order)}
        assert got == want
        for line_no, rule in want:
            self.expected_reversed[(len(self.orders) - 1, line_no, rule)] = 0

    def send_refund(self, step: dict[str, Any]) -> None:
        if not self.orders:
            return
        index = step["order"] % len(self.orders)
        order, creator, lines, day = self.orders[index]
        line = lines[step["line"] % len(lines)]
        remaining = line.net - self.refunded[(index, line.line_no)]
        if remaining <= 0:
            return
        amount = remaining if step["share"] == "all" else max(1, remaining * step["share"] // 100)
        refund_id = f"R-{len(self.events)}"
        kwargs = {
            "at": self.program.at(day + step["after"]),
            "lines": [(line.sku, _money(amount))],
            "kind": step["kind"],
            "refund_id": refund_id,
        }
        self.program.refund(order, **kwargs)  # type: ignore[arg-type]
        self.events.append(("refund", (index, kwargs)))
        self.refunded[(index, line.line_no)] += amount
        self._expect_reversals(index, {line.line_no: amount})

    def _expect_reversals(self, index: int, now: dict[int, int]) -> None:
        order, creator, lines, _ = self.orders[index]
        eligible = [x for x in lines if x.sku in CATALOG]
        for c in self.program.lines(order):
            key = (index, c.line_no, c.rule)
            if c.rule == "cpa_order":
                base = sum(x.net for x in eligible)
                refunded_now = sum(now.get(x.line_no, 0) for x in eligible)
                total = sum(self.refunded[(index, x.line_no)] for x in eligible)
            else:
                spec = next(x for x in lines if x.line_no == c.line_no)
                base, refunded_now, total = spec.net, now.get(c.line_no, 0), self.refunded[(index, c.line_no)]
            self.expected_reversed[key] += expected_reversal(
                c.amount, self.expected_reversed[key], refunded_now, total, base
            )

    def replay(self, step: dict[str, Any]) -> None:
        if not self.events:
            return
        kind, payload = self.events[step["event"] % len(self.events)]
        if kind == "order":
            order_id, kwargs = payload
            self.program.order(order_id, **kwargs)
        else:
            index, kwargs = payload
            self.program.refund(self.orders[index][0], **kwargs)


def snapshot(db: Session, brand_id: int) -> tuple[Any, ...]:
    db.flush()  # what the unit of work's commit would do; expiring unflushed changes would discard them
    db.expire_all()
    tables = (Order, OrderLine, Refund, Attribution, CommissionLine, LedgerEntry, LedgerPosting)
    sizes = tuple(db.scalar(select(func.count()).select_from(t)) for t in tables)
    reversed_total = db.scalar(select(func.coalesce(func.sum(CommissionLine.reversed_amount), 0)))
    return sizes, reversed_total, ledger.balances(db, brand_id=brand_id)


def check(run: Run) -> None:
    program, db = run.program, run.program.db
    db.flush()
    db.expire_all()
    assert ledger.imbalances(db) == []
    by_payee: dict[tuple[str, str], list[CommissionLine]] = defaultdict(list)
    expense: dict[str, int] = defaultdict(int)
    for index, (order, creator, lines, _) in enumerate(run.orders):
        commission_lines = program.lines(order)
        for c in commission_lines:
            assert 0 <= c.reversed_amount <= c.amount
            assert c.reversed_amount == run.expected_reversed[(index, c.line_no, c.rule)]
            by_payee[(creator, c.currency)].append(c)
            expense[c.currency] -= c.amount - c.reversed_amount
        for c in commission_lines:
            if c.rule == "cpa_order":
                eligible = [x for x in lines if x.sku in CATALOG]
                emptied = sum(x.net for x in eligible) > 0 and all(
                    run.refunded[(index, x.line_no)] == x.net for x in eligible
                )
            else:
                spec = next(x for x in lines if x.line_no == c.line_no)
                emptied = spec.net > 0 and run.refunded[(index, c.line_no)] == spec.net
            if emptied:
                assert c.reversed_amount == c.amount
    for (creator, currency), lines_of_payee in by_payee.items():
        owed = sum(c.amount - c.reversed_amount for c in lines_of_payee)
        uncleared = sum(c.amount - c.reversed_amount for c in lines_of_payee if c.cleared_at is None)
        held = sum(c.reserve_amount for c in lines_of_payee if c.reserve_released_at is None)
        pending = program.balance(creator, ledger.PENDING, currency)
        available = program.balance(creator, ledger.AVAILABLE, currency)
        reserve = program.balance(creator, ledger.RESERVE, currency)
        assert pending + available + reserve == owed
        assert pending == uncleared  # nothing is ever stranded in pending
        assert reserve == held
    for currency, total in expense.items():
        assert program.expense(currency) == total


@pytest.fixture
def run_setup(db: Session) -> tuple[Program, dict[str, str]]:
    program = build(db)
    program.fx(program.at(-1).date(), "USD", "EUR", str(FX_USD_EUR))
    coupons = {}
    for handle, terms in TERMS.items():
        program.creator(handle, terms=terms)
        coupons[handle] = program.coupon(handle)
    return program, coupons


class TestMoneyProperties:
    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(steps=programs)
    def test_random_orders_refunds_and_replays_keep_every_money_invariant(
        self, run_setup: tuple[Program, dict[str, str]], steps: list[dict[str, Any]]
    ) -> None:
        program, coupons = run_setup
        savepoint = program.db.begin_nested()
        try:
            run = Run(program, coupons)
            for step in steps:
                if step["step"] == "order":
                    run.send_order(step)
                elif step["step"] == "refund":
                    run.send_refund(step)
                elif step["step"] == "clear":
                    commission_service.clear_due(program.db, now=program.at(step["day"]), brand_id=program.brand.id)
                elif step["step"] == "release":
                    commission_service.release_reserves(
                        program.db, now=program.at(step["day"]), brand_id=program.brand.id
                    )
                else:
                    run.replay(step)
                check(run)
            before = snapshot(program.db, program.brand.id)
            for index in range(len(run.events)):
                run.replay({"event": index})
            assert snapshot(program.db, program.brand.id) == before
            check(run)
        finally:
            savepoint.rollback()


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"

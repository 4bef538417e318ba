"""Batch processing (`ingest.processing`, as the drainer, replays and the CSV import run it) gives exactly what
processing each stored event alone with `service.process` gives: the same orders and lines, attributions with
the same reasons, commission lines to the cent, refunds, reversals and clawbacks, ledger entries and balances,
and the same events kept with the same errors."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clearline.ingest import service
from clearline.ledger import service as ledger
from clearline.models import (
    Attribution,
    CommissionLine,
    InboxEvent,
    LedgerAccount,
    LedgerEntry,
    LedgerPosting,
    Order,
    OrderLine,
    Refund,
    RosterEntry,
)
from tests import factories
from tests.commission.program import Program, build

TERMS: dict[str, dict[str, Any]] = {
    "unit": {
        "model": "cpa",
        "currency": "USD",
        "cpa": {
            "per": "unit",
            "rates": {"new": {"a": "8.00", "b": "4.00", "c": "1.00"}, "returning": {"a": "3.25", "b": "1.5", "c": "0"}},
        },
        "verification_window_days": 10,
    },
    "order": {
        "model": "cpa",
        "currency": "USD",
        "cpa": {"per": "order", "rates": {"new": {"a": "2.00", "b": "9.00", "c": "1.50"}}},
        "cap_per_order": "5.00",
    },
    "margin": {
        "model": "revshare",
        "currency": "USD",
        "revshare": {"basis": "gross_margin", "rates": {"new": {"a": "20", "b": "15", "c": "33.3333"}}},
        "reserve_pct": "10",
        "reserve_release_days": 20,
        "verification_window_days": 7,
    },
    "capped": {
        "model": "hybrid",
        "currency": "USD",
        "cpa": {"per": "unit", "rates": {"new": {"a": "3.00", "b": "2.00", "c": "0.75"}}},
        "revshare": {"basis": "net_revenue", "rates": {"new": {"a": "5", "b": "5", "c": "5"}}},
        "retainer": {"amount": "100.00"},
        "cap_per_period": "20.00",  # reached inside one batch: later orders of the month get less, then nothing
    },
}
HANDLES = list(TERMS)
SKUS = ["SKU-A1", "SKU-A2", "SKU-B1", "SKU-B2", "SKU-C1", "SKU-ZZ"]  # SKU-ZZ is not in the catalog
PRICES = {"SKU-A1": 4900, "SKU-A2": 5900, "SKU-B1": 2400, "SKU-B2": 1800, "SKU-C1": 950, "SKU-ZZ": 1000}


class Scenario:
    """The program's creators (one per kind of terms, each with a link, a coupon and clicks) and the inbox."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.coupons: dict[str, str] = {}
        self.clicks: dict[str, list[str]] = {}
        for handle, terms in TERMS.items():
            program.creator(handle, terms=terms)
            self.coupons[handle] = program.coupon(handle)
            link = program.link(handle)
            self.clicks[handle] = [program.click(link, at=program.at(day)) for day in (2, 20, 40)]
        program.creator("ghost", contracted=False)  # UTM names a creator without a contract: no commission
        self.coupons["ghost"] = program.coupon("ghost")
        # An agency's contract covers its roster: "roster" has none of its own, "unit" has (its own comes first).
        program.creator("roster", contracted=False)
        agency = factories.agency(program.db, program.brand.id)
        for handle in ("roster", "unit"):
            program.db.add(RosterEntry(agency_id=agency.id, creator_id=program.creators[handle].id))
        contract = factories.contract(program.db, program.brand.id, agency_id=agency.id, terms=TERMS["margin"])
        contract.starts_at, contract.status = program.start, "accepted"
        self.coupons["roster"] = program.coupon("roster")
        link = program.link("roster")
        self.clicks["roster"] = [program.click(link, at=program.at(day)) for day in (2, 20, 40)]
        program.db.flush()
        self.events: list[InboxEvent] = []

    def store(self, kind: str, external_id: str, body: dict[str, Any]) -> None:
        event, duplicate = service.store(
            self.program.db,
            brand_id=self.program.brand.id,
            source="postback",
            kind=kind,
            external_id=external_id,
            body=json.dumps(body, default=str),
        )
        if not duplicate:
            self.events.append(event)

    def order(self, number: int, spec: dict[str, Any]) -> None:
        at = self.program.at(spec["day"], spec["hour"])
        body: dict[str, Any] = {
            "order_id": f"O-{number}",
            "created_at": at.isoformat(),
            "currency": "USD",
            "customer": {"id": f"c-{number % 3}", "new_customer": spec["new_customer"]},
            "lines": [
                {
                    "sku": sku,
                    "quantity": quantity,
                    "unit_price": str(Decimal(PRICES[sku]) / 100),
                    "discount": "1.00" if discounted else "0",
                }
                for sku, quantity, discounted in spec["lines"]
            ],
            "shipping": "4.95",
            "ip": "203.0.113.9",
        }
        via, handle = spec["via"]
        if via in ("coupon", "both"):
            body["coupon_codes"] = [self.coupons[handle]]
        if via in ("click", "both"):
            linked = [*HANDLES, "roster"]
            other = linked[(linked.index(handle) + 1) % len(linked)] if via == "both" else handle
            body["click_id"] = self.clicks[other][spec["click"]]
        if via == "clid":
            body["landing_url"] = f"https://shop.example.com/p?clid={self.clicks[handle][spec['click']]}"
        if via == "utm":
            body["landing_url"] = f"https://shop.example.com/?utm_content={handle}&utm_campaign=spring"
        if via == "forged":
            body["click_id"] = self.clicks[handle][0][:-2] + "xx"
        self.store("order", body["order_id"], body)

    def refund(self, number: int, spec: dict[str, Any], orders: list[dict[str, Any]]) -> None:
        target = spec["order"] % (len(orders) + 1)
        if target == len(orders):  # an order never received: the refund waits for it
            order_id, day, sku = "O-missing", 10, "SKU-A1"
        else:
            order = orders[target]
            order_id, day = f"O-{target}", order["day"]
            sku = order["lines"][spec["line"] % len(order["lines"])][0]
        refund_id = f"R-{spec['same_as'] if spec['same_as'] is not None and spec['same_as'] < number else number}"
        body = {
            "refund_id": refund_id,
            "order_id": order_id,
            "created_at": self.program.at(day + spec["after"]).isoformat(),
            "kind": spec["kind"],
            "lines": [{"sku": sku, "quantity": 1, "amount": str(Decimal(spec["cents"]) / 100)}],
        }
        self.store("refund", f"{refund_id}@{number}" if spec["same_as"] is not None else refund_id, body)


def _normal_key(key: str, lines: dict[int, tuple[str, int, str]], refunds: dict[int, str]) -> str:
    """A ledger key with its commission line id and refund id replaced by what they stand for."""
    parts = key.split(":")
    if len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) in lines:
        parts[1] = "/".join(map(str, lines[int(parts[1])]))
    if len(parts) == 3 and parts[2].isdigit() and int(parts[2]) in refunds:
        parts[2] = refunds[int(parts[2])]
    return ":".join(parts)


def snapshot(db: Session, brand_id: int) -> dict[str, Any]:
    """Everything processing wrote for the brand, with database ids replaced by the business keys."""
    db.flush()
    db.expire_all()
    orders = {o.id: o for o in db.scalars(select(Order).where(Order.brand_id == brand_id))}
    order_lines = {x.id: x for x in db.scalars(select(OrderLine).where(OrderLine.order_id.in_(orders))) if orders}
    attributions = {a.id: a for a in db.scalars(select(Attribution).where(Attribution.brand_id == brand_id))}
    commission_lines = {c.id: c for c in db.scalars(select(CommissionLine).where(CommissionLine.brand_id == brand_id))}
    refunds = {r.id: r for r in db.scalars(select(Refund).where(Refund.brand_id == brand_id))}
    line_names = {
        c.id: (orders[c.order_id].external_id, c.line_no, c.rule) for c in commission_lines.values() if c.order_id
    }
    refund_names = {r.id: r.external_id for r in refunds.values()}
    for c in commission_lines.values():
        line = order_lines[c.order_line_id]  # type: ignore[index]
        assert c.key == f"line:{line.id}:attr:{c.attribution_id}:{c.rule}"
    entries = list(db.scalars(select(LedgerEntry).where(LedgerEntry.brand_id == brand_id)))
    postings = {
        entry_id: sorted(values)
        for entry_id, values in _group(
            db.execute(
                select(LedgerPosting.entry_id, LedgerAccount.code, LedgerPosting.amount)
                .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
                .where(LedgerPosting.entry_id.in_([e.id for e in entries]))
            )
        ).items()
    }
    balances: dict[str, int] = {}
    for values in postings.values():
        for code, amount in values:
            balances[code] = balances.get(code, 0) + amount
    return {
        "orders": sorted(
            (
                o.external_id,
                o.ordered_at,
                o.currency,
                o.customer_ref,
                o.is_new_customer,
                o.click_id,
                o.coupon_codes,
                o.landing_url,
                o.shipping_amount,
                o.tax_amount,
                o.ip_hash,
            )
            for o in orders.values()
        ),
        "order_lines": sorted(
            (
                orders[x.order_id].external_id,
                x.line_no,
                x.sku,
                x.quantity,
                x.unit_price_amount,
                x.discount_amount,
                x.net_amount,
                x.refunded_amount,
                x.refunded_quantity,
            )
            for x in order_lines.values()
        ),
        "attributions": sorted(
            (
                orders[a.order_id].external_id,
                a.via,
                a.creator_id,
                a.campaign_id,
                a.link_id,
                a.contract_id,
                a.click_id,
                a.coupon_code,
                a.reason,
                json.dumps(a.conflict, sort_keys=True),
                a.is_current,
            )
            for a in attributions.values()
        ),
        "commission_lines": sorted(
            (
                *line_names[c.id],
                c.sku,
                c.contract_id,
                c.payee_type,
                c.payee_id,
                c.period,
                c.tier,
                c.rate,
                c.customer_type,
                c.quantity,
                c.net_revenue_amount,
                c.gross_margin_amount,
                c.unit_price_amount,
                c.unit_cost_amount,
                c.fx_rate,
                c.currency,
                c.amount,
                c.reversed_amount,
                c.note,
                c.earned_at,
                c.eligible_at,
                c.cleared_at is not None,
                c.reserve_amount,
                c.reserve_release_at,
            )
            for c in commission_lines.values()
        ),
        "refunds": sorted(
            (
                r.external_id,
                orders[r.order_id].external_id,
                r.kind,
                r.refunded_at,
                [(x["line_no"], x["sku"], x["amount"]) for x in r.lines],
            )
            for r in refunds.values()
        ),
        "ledger": sorted(
            (
                e.kind,
                _normal_key(e.key, line_names, refund_names),
                e.memo,
                e.effective_at,
                postings.get(e.id, []),
            )
            for e in entries
        ),
        "balances": balances,
        "inbox": sorted(
            (e.kind, e.external_id, e.handled_at is not None, re.sub(r"\d{4}-\d\d-\d\d", "<day>", e.error))
            for e in db.scalars(select(InboxEvent).where(InboxEvent.brand_id == brand_id))
        ),
    }


def _group(rows: Any) -> dict[int, list[tuple[str, int]]]:
    grouped: dict[int, list[tuple[str, int]]] = {}
    for entry_id, code, amount in rows:
        grouped.setdefault(entry_id, []).append((code, amount))
    return grouped


def one_by_one(db: Session, events: list[InboxEvent]) -> dict[int, str]:
    """The reference: each event alone, orders before refunds, each in the order stored (as `replay` goes)."""
    ordered = [e for e in events if e.kind == "order"] + [e for e in events if e.kind != "order"]
    return {event.id: service.process(db, event) for event in ordered}


def compare(db: Session, program: Program, events: list[InboxEvent]) -> tuple[dict[str, Any], dict[int, str]]:
    """Process ``events`` one by one in a savepoint rolled back afterwards, then as one batch; both snapshots."""
    savepoint = db.begin_nested()
    alone = one_by_one(db, events)
    reference = snapshot(db, program.brand.id)
    savepoint.rollback()
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Order).where(Order.brand_id == program.brand.id)) == 0
    batch = service.process_batch(db, events)
    names = {event.id: f"{event.kind} {event.external_id}" for event in events}
    assert {names[k]: v for k, v in batch.items()} == {names[k]: v for k, v in alone.items()}
    got = snapshot(db, program.brand.id)
    assert {k: v for k, v in got.items() if v != reference[k]} == {}, {
        k: v for k, v in reference.items() if v != got[k]
    }
    assert ledger.imbalances(db) == []
    return reference, batch


order_specs = st.fixed_dictionaries(
    {
        "day": st.integers(min_value=1, max_value=60),
        "hour": st.integers(min_value=0, max_value=23),
        "new_customer": st.sampled_from([True, False, None]),
        "via": st.tuples(
            st.sampled_from(["coupon", "click", "clid", "utm", "both", "forged", "none"]),
            st.sampled_from([*HANDLES, "ghost", "roster"]),
        ).map(lambda v: (v[0], "unit") if v[1] == "ghost" and v[0] not in ("coupon", "utm") else v),
        "click": st.integers(min_value=0, max_value=2),
        "lines": st.lists(
            st.tuples(st.sampled_from(SKUS), st.integers(min_value=1, max_value=3), st.booleans()),
            min_size=1,
            max_size=4,
        ),
    }
)
refund_specs = st.fixed_dictionaries(
    {
        "order": st.integers(min_value=0, max_value=50),
        "line": st.integers(min_value=0, max_value=3),
        "cents": st.sampled_from([1, 99, 500, 1000, 2350, 4900, 20000]),
        "after": st.sampled_from([0, 1, 5, 30, 90]),  # days after the order: inside or after the windows
        "kind": st.sampled_from(["return", "chargeback"]),
        "same_as": st.none() | st.integers(min_value=0, max_value=5),  # the id of an earlier refund again
    }
)


@pytest.fixture
def scenario(db: Session) -> Scenario:
    return Scenario(build(db))


class TestProcessBatchMatchesOneByOne:
    @settings(
        max_examples=25,
        deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking two database runs an example takes minutes
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        orders=st.lists(order_specs, min_size=1, max_size=14),
        refunds=st.lists(refund_specs, max_size=8),
    )
    def test_random_orders_and_refunds_come_out_the_same(
        self, scenario: Scenario, orders: list[dict[str, Any]], refunds: list[dict[str, Any]]
    ) -> None:
        db = scenario.program.db
        outer = db.begin_nested()
        try:
            scenario.events = []
            for number, spec in enumerate(orders):
                scenario.order(number, spec)
            for number, spec in enumerate(refunds):
                scenario.refund(number, spec, orders)
            compare(db, scenario.program, scenario.events)

            # A replay may still apply what waited (a refund id whose first event did not fit), alike either way;
            # a second replay changes nothing.
            service.replay(db, brand_id=scenario.program.brand.id, include_handled=True)
            replayed = snapshot(db, scenario.program.brand.id)
            again = service.replay(db, brand_id=scenario.program.brand.id, include_handled=True)
            assert again["processed"] == 0
            assert snapshot(db, scenario.program.brand.id) == replayed
            assert ledger.imbalances(db) == []
        finally:
            outer.rollback()

    def test_a_mixed_batch_with_every_kind_of_refund(self, scenario: Scenario) -> None:
        orders = [
            {"day": 3, "hour": 9, "new_customer": True, "via": ("coupon", "unit"), "click": 0,
             "lines": [("SKU-A1", 2, True), ("SKU-B1", 1, False), ("SKU-A1", 1, False)]},
            {"day": 3, "hour": 10, "new_customer": False, "via": ("click", "order"), "click": 0,
             "lines": [("SKU-B2", 1, False), ("SKU-C1", 3, False)]},
            {"day": 21, "hour": 11, "new_customer": True, "via": ("clid", "margin"), "click": 1,
             "lines": [("SKU-A2", 1, False), ("SKU-ZZ", 1, False)]},
            {"day": 22, "hour": 12, "new_customer": None, "via": ("utm", "capped"), "click": 0,
             "lines": [("SKU-A1", 3, False), ("SKU-A2", 3, False)]},
            {"day": 23, "hour": 12, "new_customer": True, "via": ("utm", "capped"), "click": 0,
             "lines": [("SKU-A1", 3, False)]},
            {"day": 24, "hour": 1, "new_customer": True, "via": ("both", "unit"), "click": 1,
             "lines": [("SKU-B1", 2, False)]},
            {"day": 25, "hour": 2, "new_customer": True, "via": ("utm", "ghost"), "click": 0,
             "lines": [("SKU-C1", 1, False)]},
            {"day": 26, "hour": 3, "new_customer": True, "via": ("forged", "unit"), "click": 0,
             "lines": [("SKU-C1", 1, False)]},
            {"day": 27, "hour": 4, "new_customer": True, "via": ("coupon", "roster"), "click": 0,
             "lines": [("SKU-A2", 2, False)]},
        ]  # fmt: skip
        refunds = [
            {"order": 0, "line": 0, "cents": 2350, "after": 1, "kind": "return", "same_as": None},
            {"order": 0, "line": 0, "cents": 4900, "after": 2, "kind": "return", "same_as": None},  # 2nd on line
            {"order": 0, "line": 0, "cents": 20000, "after": 3, "kind": "return", "same_as": None},  # too much
            {"order": 0, "line": 1, "cents": 500, "after": 4, "kind": "return", "same_as": None},  # after a failure
            {"order": 1, "line": 1, "cents": 950, "after": 1, "kind": "return", "same_as": None},  # per-order CPA
            {"order": 2, "line": 0, "cents": 1000, "after": 30, "kind": "chargeback", "same_as": None},  # clawback
            {"order": 9, "line": 0, "cents": 99, "after": 1, "kind": "return", "same_as": None},  # unknown order
            {"order": 3, "line": 1, "cents": 1, "after": 1, "kind": "return", "same_as": 4},  # R-4 again
        ]
        for number, spec in enumerate(orders):
            scenario.order(number, spec)
        for number, spec in enumerate(refunds):
            scenario.refund(number, spec, orders)

        reference, results = compare(scenario.program.db, scenario.program, scenario.events)

        failed = sorted(e.external_id for e in scenario.events if results[e.id])
        assert failed == ["R-2", "R-6"]
        vias = {row[0]: row[1] for row in reference["attributions"]}
        assert vias == {
            "O-0": "coupon", "O-1": "click", "O-2": "click", "O-3": "utm", "O-4": "utm", "O-5": "coupon",
            "O-6": "utm", "O-7": "none", "O-8": "coupon",
        }  # fmt: skip
        payees = {row[0]: row[5] for row in reference["commission_lines"]}
        assert payees["O-8"] == "agency" and payees["O-0"] == "creator"
        kinds = {row[0] for row in reference["ledger"]}
        assert {"commission.accrued", "commission.reversed", "commission.cleared", "commission.clawed_back"} <= kinds
        capped = [row for row in reference["commission_lines"] if row[0] in ("O-3", "O-4")]
        assert sum(row[-8] for row in capped) == 2000  # the period cap, reached inside the batch
        assert any("period cap" in row[-6] for row in capped)

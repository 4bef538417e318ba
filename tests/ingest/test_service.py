"""The inbox: every accepted event is stored raw before it is processed, kept with its error when it cannot
be processed yet, and replayed safely any number of times."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from clearline.auth import service as auth_service
from clearline.commission import fx
from clearline.contract import service as contract_service
from clearline.ingest import service
from clearline.kit.errors import ConflictError, ValidationFailedError
from clearline.ledger import service as ledger
from clearline.link import coupon
from clearline.models import Brand, CommissionLine, InboxEvent, Order, OrderLine, Refund
from tests import factories
from tests.ingest.conftest import WOO_ORDERS_LIST, counts, fixture_bytes, fixture_skus, order_body

REVSHARE_TERMS = {
    "model": "revshare",
    "currency": "USD",
    "revshare": {"basis": "net_revenue", "rates": {"new": {"a": "10", "b": "10", "c": "10"}}},
}
FX_CSV = "day,base,quote,rate\n2026-11-01,EUR,USD,1.08\n"


def _receive(db, shop, body: bytes, *, kind: str = "order", source: str = "postback") -> service.Intake:  # type: ignore[no-untyped-def]
    brand = db.get(Brand, shop.brand_id)
    return service.receive(db, brand=brand, source=source, kind=kind, body=body)


def _refund_body(order_id: str = "1001", refund_id: str = "r-1", amount: str = "23.50", sku: str = "SKU-A1") -> bytes:
    return json.dumps(
        {
            "refund_id": refund_id,
            "order_id": order_id,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "kind": "return",
            "lines": [{"sku": sku, "quantity": 1, "amount": amount}],
        }
    ).encode()


def _event(db, intake: service.Intake) -> InboxEvent:  # type: ignore[no-untyped-def]
    """The inbox row as the database has it (written, not just changed in memory)."""
    db.flush()
    event = db.get(InboxEvent, intake.event_id)
    db.expire(event)
    return event


def _euro_creator_code(db, shop) -> str:  # type: ignore[no-untyped-def]
    """A creator on a USD rev-share contract (10 % of net revenue) with coupon EVA10 on the shop's campaign."""
    creator = factories.creator(db, shop.brand_id, handle="eva.euro")
    contract = factories.contract(db, shop.brand_id, creator_id=creator.id, terms=REVSHARE_TERMS)
    user = factories.user(db, ("creator", shop.brand_id), creator_id=creator.id, password=None)
    contract_service.accept_contract(db, auth_service.actor_for(db, user), contract_id=contract.id)
    ops = factories.actor(db, ("social_ops", shop.brand_id))
    return coupon.issue_creator_code(db, ops, campaign_id=shop.campaign_id, creator_id=creator.id, code="EVA10").code


def _lines(db, external_id: str) -> list[CommissionLine]:  # type: ignore[no-untyped-def]
    order = db.scalar(select(Order).where(Order.external_id == external_id))
    return list(
        db.scalars(select(CommissionLine).where(CommissionLine.order_id == order.id).order_by(CommissionLine.line_no))
    )


class TestReceive:
    def test_an_order_is_stored_raw_then_processed(self, db, shop):
        body = order_body("1001", coupon_codes=[shop.coupon_code])

        intake = _receive(db, shop, body)

        event = _event(db, intake)
        assert (intake.external_id, intake.duplicate, intake.processed) == ("1001", False, True)
        assert event.body == body.decode()
        assert event.handled_at is not None and event.error == ""
        assert counts(db, shop.brand_id) | {"ledger_entries": 0} == {
            "events": 1,
            "orders": 1,
            "refunds": 0,
            "commission_lines": 2,
            "ledger_entries": 0,
        }

    def test_the_same_event_twice_changes_nothing(self, db, shop):
        body = order_body("1001", coupon_codes=[shop.coupon_code])
        _receive(db, shop, body)
        before = counts(db, shop.brand_id)

        again = _receive(db, shop, body)

        assert again.duplicate is True
        assert counts(db, shop.brand_id) == before

    def test_the_same_content_serialised_differently_is_the_same_event(self, db, shop):
        body = order_body("1001")
        _receive(db, shop, body)
        reserialised = json.dumps(json.loads(body), indent=2, sort_keys=True).encode()

        assert _receive(db, shop, reserialised).duplicate is True

    def test_the_same_order_id_with_another_body_is_a_conflict(self, db, shop):
        _receive(db, shop, order_body("1001"))

        with pytest.raises(ConflictError):
            _receive(db, shop, order_body("1001", shipping="6.00"))

    def test_an_invalid_body_is_refused_before_anything_is_stored(self, db, shop):
        with pytest.raises(ValidationFailedError):
            _receive(db, shop, b'{"order_id": "1"}')

        assert counts(db, shop.brand_id)["events"] == 0

    def test_a_refund_before_its_order_is_stored_with_its_error(self, db, shop):
        intake = _receive(db, shop, _refund_body(), kind="refund")

        event = _event(db, intake)
        assert intake.processed is False
        assert "order 1001 is not known yet" in event.error
        assert event.handled_at is None

    def test_an_unexpected_failure_keeps_the_event_with_its_error(self, db, shop, monkeypatch):
        from clearline.attribution import service as attribution_service

        def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise KeyError("campaign")

        monkeypatch.setattr(attribution_service, "attribute", broken)

        intake = _receive(db, shop, order_body("1001"))

        event = _event(db, intake)
        assert intake.processed is False
        assert event.error == "KeyError: 'campaign'"
        assert counts(db, shop.brand_id)["orders"] == 0  # the savepoint took the half-made order back
        monkeypatch.undo()
        assert service.replay(db, brand_id=shop.brand_id)["processed"] == 1
        assert counts(db, shop.brand_id)["orders"] == 1


class TestReplay:
    def test_a_refund_that_waited_for_its_order_is_applied_by_a_replay(self, db, shop):
        _receive(db, shop, _refund_body(), kind="refund")
        _receive(db, shop, order_body("1001", coupon_codes=[shop.coupon_code]))

        result = service.replay(db, brand_id=shop.brand_id)

        assert result == {"seen": 1, "processed": 1, "failed": 0, "unchanged": 0}
        refund = db.scalar(select(Refund).where(Refund.external_id == "r-1"))
        assert refund is not None and refund.lines[0]["amount"] == 2350
        line_a = _lines(db, "1001")[0]
        assert (line_a.amount, line_a.reversed_amount) == (1600, 400)  # 16.00 × 23.50 ÷ 94.00
        assert ledger.imbalances(db) == []

    def test_replaying_everything_changes_nothing(self, db, shop):
        _receive(db, shop, _refund_body(), kind="refund")
        _receive(db, shop, order_body("1001", coupon_codes=[shop.coupon_code]))
        service.replay(db, brand_id=shop.brand_id)
        before = counts(db, shop.brand_id)

        result = service.replay(db, brand_id=shop.brand_id, include_handled=True)

        assert result == {"seen": 2, "processed": 0, "failed": 0, "unchanged": 2}
        assert counts(db, shop.brand_id) == before

    def test_an_order_without_its_fx_rate_waits_then_earns_at_the_kept_rate(self, db, shop):
        code = _euro_creator_code(db, shop)
        intake = _receive(db, shop, order_body("E-1", currency="EUR", coupon_codes=[code]))
        assert intake.processed is False
        assert "no FX rate" in _event(db, intake).error
        assert counts(db, shop.brand_id)["orders"] == 0

        assert service.replay(db, brand_id=shop.brand_id)["failed"] == 1  # still no rate: still waiting
        fx.import_rates(db, factories.SYSTEM, data=FX_CSV)
        result = service.replay(db, brand_id=shop.brand_id)

        assert result["processed"] == 1
        lines = _lines(db, "E-1")
        # 10 % of the net revenue in EUR at 1.08: 94.00 → 10.152 → 10.15 USD; 24.00 → 2.592 → 2.59 USD.
        assert [(c.fx_rate, c.order_currency, c.currency, c.amount) for c in lines] == [
            ("1.08", "EUR", "USD", 1015),
            ("1.08", "EUR", "USD", 259),
        ]
        assert _event(db, intake).error == ""

    def test_orders_are_replayed_before_refunds(self, db, shop):
        code = _euro_creator_code(db, shop)
        _receive(db, shop, order_body("E-1", currency="EUR", coupon_codes=[code]))
        _receive(db, shop, _refund_body("E-1"), kind="refund")
        fx.import_rates(db, factories.SYSTEM, data=FX_CSV)

        result = service.replay(db, brand_id=shop.brand_id)

        assert result == {"seen": 2, "processed": 2, "failed": 0, "unchanged": 0}
        assert counts(db, shop.brand_id)["refunds"] == 1

    def test_a_replay_can_be_limited_to_some_events(self, db, shop):
        first = _receive(db, shop, _refund_body("1001", "r-1"), kind="refund")
        _receive(db, shop, _refund_body("1001", "r-2", amount="1.00"), kind="refund")
        _receive(db, shop, order_body("1001"))

        result = service.replay(db, brand_id=shop.brand_id, event_ids=[first.event_id])

        assert result == {"seen": 1, "processed": 1, "failed": 0, "unchanged": 0}
        assert [r.external_id for r in db.scalars(select(Refund).where(Refund.brand_id == shop.brand_id))] == ["r-1"]

    def test_a_replay_only_touches_its_brand(self, db, shop):
        _receive(db, shop, _refund_body(), kind="refund")
        other = factories.brand(db)

        assert service.replay(db, brand_id=other.id) == {"seen": 0, "processed": 0, "failed": 0, "unchanged": 0}


def _store(db, shop, external_id: str, body: bytes) -> InboxEvent:  # type: ignore[no-untyped-def]
    event, _ = service.store(
        db, brand_id=shop.brand_id, source="postback", kind="order", external_id=external_id, body=body
    )
    return event


def _outcome(db, external_id: str) -> list[tuple[str, str, int, int]]:  # type: ignore[no-untyped-def]
    """What an order earned: each commission line's rule, reason and amount, and its accrual in the ledger."""
    order = db.scalar(select(Order).where(Order.external_id == external_id))
    return [
        (
            c.rule,
            c.sku,
            c.amount,
            ledger.balance(db, ledger.Account(c.brand_id, c.payee_type, c.payee_id, "pending", c.currency)),
        )
        for c in _lines(db, order.external_id)
    ]


class TestProcessBatch:
    def test_a_batch_earns_exactly_what_processing_each_order_alone_earns(self, db, shop):
        bodies = [order_body(f"B-{i}", coupon_codes=[shop.coupon_code] if i % 2 else []) for i in range(6)]
        alone = [_store(db, shop, f"B-{i}", body) for i, body in enumerate(bodies[:3])]
        for event in alone:
            assert service.process(db, event) == ""
        batch = [_store(db, shop, f"B-{i}", body) for i, body in enumerate(bodies) if i >= 3]

        result = service.process_batch(db, batch)

        assert result == {event.id: "" for event in batch}
        assert [len(_lines(db, f"B-{i}")) for i in range(6)] == [0, 2, 0, 2, 0, 2]
        assert [c.amount for c in _lines(db, "B-1")] == [c.amount for c in _lines(db, "B-3")]
        assert [c.amount for c in _lines(db, "B-1")] == [c.amount for c in _lines(db, "B-5")]
        for i in (1, 3, 5):
            keys = [f"commission.accrued:{c.id}" for c in _lines(db, f"B-{i}")]
            posted = ledger.transfers_for_line(db, _lines(db, f"B-{i}")[0].id)
            assert [e["key"] for e in posted] == keys[:1]
        assert ledger.imbalances(db) == []
        db.flush()
        assert all(db.get(InboxEvent, event.id).handled_at is not None for event in batch)

    def test_a_bad_order_keeps_its_error_and_the_rest_of_the_batch_proceeds(self, db, shop):
        code = _euro_creator_code(db, shop)
        events = [
            _store(db, shop, "G-1", order_body("G-1", coupon_codes=[shop.coupon_code])),
            _store(db, shop, "E-1", order_body("E-1", currency="EUR", coupon_codes=[code])),  # no EUR→USD rate
            _store(db, shop, "G-2", order_body("G-2", coupon_codes=[shop.coupon_code])),
        ]

        result = service.process_batch(db, events)

        assert result[events[0].id] == result[events[2].id] == ""
        assert "no FX rate" in result[events[1].id]
        db.flush()
        assert "no FX rate" in db.get(InboxEvent, events[1].id).error
        assert db.get(InboxEvent, events[1].id).handled_at is None
        assert counts(db, shop.brand_id)["orders"] == 2
        assert len(_lines(db, "G-1")) == len(_lines(db, "G-2")) == 2
        assert ledger.imbalances(db) == []

    def test_an_unreadable_body_fails_alone(self, db, shop):
        good = _store(db, shop, "G-1", order_body("G-1"))
        bad = _store(db, shop, "X-1", b'{"order_id": "X-1"}')

        result = service.process_batch(db, [bad, good])

        assert result[good.id] == "" and result[bad.id] != ""
        assert counts(db, shop.brand_id)["orders"] == 1

    def test_processing_a_batch_again_changes_nothing(self, db, shop):
        events = [_store(db, shop, f"R-{i}", order_body(f"R-{i}", coupon_codes=[shop.coupon_code])) for i in range(4)]
        service.process_batch(db, events)
        before = counts(db, shop.brand_id)

        again = service.replay(db, brand_id=shop.brand_id, include_handled=True)
        for event in events:
            db.refresh(event)
            event.handled_at = None  # as if the handled mark had been lost: the order id still guards
        service.process_batch(db, events)

        assert again == {"seen": 4, "processed": 0, "failed": 0, "unchanged": 4}
        assert counts(db, shop.brand_id) == before

    def test_two_events_for_one_order_apply_it_once(self, db, shop):
        first = _store(db, shop, "D-1", order_body("D-1", coupon_codes=[shop.coupon_code]))
        event, _ = service.store(
            db,
            brand_id=shop.brand_id,
            source="csv",
            kind="order",
            external_id="D-1",
            body=order_body("D-1", coupon_codes=[shop.coupon_code]),
        )

        result = service.process_batch(db, [first, event])

        assert set(result.values()) == {""}
        assert counts(db, shop.brand_id)["orders"] == 1
        assert len(_lines(db, "D-1")) == 2


def _woo_723(**changes) -> dict:  # type: ignore[no-untyped-def, type-arg]
    order = next(o for o in json.loads(fixture_bytes(WOO_ORDERS_LIST)) if o["id"] == 723)
    order.update(changes)
    return order


class TestWoocommerceRefunds:
    def test_refunds_are_spread_over_what_is_left_so_the_last_cent_is_refundable(self, db, shop):
        lines = _woo_723()["line_items"]
        lines[0] |= {"sku": "SKU-A1", "subtotal": "0.01", "total": "0.01"}
        lines[1] |= {"sku": "SKU-B1", "subtotal": "0.01", "total": "0.01"}
        payload = _woo_723(line_items=lines, refunds=[{"id": 1, "total": "-0.01"}, {"id": 2, "total": "-0.01"}])

        intake = _receive(db, shop, json.dumps(payload).encode(), source="woocommerce")

        assert intake.refunds == ["1", "2"]
        refunded = db.scalars(select(OrderLine.refunded_amount).join(Order).where(Order.external_id == "723"))
        assert sorted(refunded) == [1, 1]
        errors = db.scalars(select(InboxEvent.error).where(InboxEvent.kind == "refund"))
        assert list(errors) == ["", ""]

    def test_an_order_that_waits_for_its_fx_rate_gets_its_refunds_when_replayed(self, db, shop):
        fixture_skus(db, shop.brand_id)
        code = _euro_creator_code(db, shop)
        today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        payload = _woo_723(
            currency="EUR",
            coupon_lines=[{"id": 1, "code": code}],
            date_created_gmt=today,
            date_modified_gmt=today,
        )

        intake = _receive(db, shop, json.dumps(payload).encode(), source="woocommerce")
        assert (intake.processed, intake.refunds) == (False, [])
        fx.import_rates(db, factories.SYSTEM, data=FX_CSV)
        result = service.replay(db, brand_id=shop.brand_id)

        assert result["processed"] == 1
        refunds = db.scalars(select(Refund).where(Refund.brand_id == shop.brand_id).order_by(Refund.external_id))
        assert [(r.external_id, sum(x["amount"] for x in r.lines)) for r in refunds] == [("724", 900), ("726", 1000)]
        assert sum(c.reversed_amount for c in _lines(db, "723")) > 0


class TestAllocate:
    def test_largest_remainders_take_the_odd_cents(self):
        assert service.allocate(1000, [900, 2000]) == [310, 690]

    def test_ties_go_to_the_earlier_line(self):
        assert service.allocate(1, [5, 5]) == [1, 0]

    def test_a_total_above_the_weights_is_capped_at_them(self):
        assert service.allocate(5000, [900, 2000]) == [900, 2000]

    def test_nothing_to_spread_over_gives_zeros(self):
        assert service.allocate(100, [0, 0]) == [0, 0]

    @given(
        total=st.integers(min_value=0, max_value=10**9),
        weights=st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=30),
    )
    def test_the_parts_add_up_exactly_and_stay_within_one_unit_of_the_exact_share(self, total, weights):
        parts = service.allocate(total, weights)

        whole = sum(weights)
        expected = min(total, whole) if whole else 0
        assert sum(parts) == expected
        for part, weight in zip(parts, weights, strict=True):
            assert 0 <= part <= weight
            if whole:
                assert abs(part * whole - expected * weight) < whole

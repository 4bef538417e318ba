"""`clearline orders reattribute`: finance moves an order by hand, with a reason; anyone else is refused."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.ingest import service as ingest
from clearline.kit.db import engine_for
from clearline.models import Attribution, AuditEvent, Brand, CommissionLine, Creator, Order
from tests import factories
from tests.cli.test_orders_cli import Program, _flat, database, program, run  # noqa: F401 - fixtures

__all__ = ["database", "program"]


def _sold(program: Program) -> tuple[int, int]:
    """O-1 sold by coupon, and a second creator of the brand (no contract) to move it to; (order, creator)."""
    with Session(engine_for(program.url), expire_on_commit=False) as session:
        brand = session.get(Brand, program.brand_id)
        assert brand is not None
        body = {
            "order_id": "O-1",
            "created_at": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat(),
            "currency": "USD",
            "coupon_codes": [program.coupon_code],
            "lines": [{"sku": "SKU-A1", "quantity": 1, "unit_price": "49.00"}],
        }
        assert ingest.receive(session, brand=brand, source="postback", kind="order", body=json.dumps(body).encode())
        other = factories.creator(session, program.brand_id)
        order_id = session.scalar(select(Order.id).where(Order.brand_id == brand.id, Order.external_id == "O-1"))
        session.commit()
        assert order_id is not None
        return order_id, other.id


def _current(program: Program, order_id: int) -> Attribution:
    with Session(engine_for(program.url)) as session:
        found = session.scalar(select(Attribution).where(Attribution.order_id == order_id, Attribution.is_current))
        assert found is not None
        session.expunge(found)
        return found


class TestReattributeCommand:
    def test_finance_moves_the_order_with_its_evidence_and_the_old_commission_is_reversed(self, program):
        order_id, other = _sold(program)
        with Session(engine_for(program.url)) as session:
            handle = session.get(Creator, other).handle  # type: ignore[union-attr]
            earned = session.scalar(select(CommissionLine.amount).where(CommissionLine.order_id == order_id))
        assert earned and earned > 0
        result = run(
            "orders", "reattribute", "O-1", "--brand", program.slug, "--creator", handle, "--via", "click",
            "--reason", "the coupon leaked", "--as", program.finance,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert f"order O-1 re-attributed to @{handle}: reversed {earned} minor units" in _flat(result.stdout)
        now = _current(program, order_id)
        assert (now.creator_id, now.via) == (other, "click")
        with Session(engine_for(program.url)) as session:
            event = session.scalar(select(AuditEvent).where(AuditEvent.action == "order.reattributed"))
            assert event is not None and event.reason == "the coupon leaked"

    def test_without_evidence_for_a_creator_no_touch_names_it_exits_non_zero_naming_via(self, program):
        order_id, other = _sold(program)
        with Session(engine_for(program.url)) as session:
            handle = session.get(Creator, other).handle  # type: ignore[union-attr]
        result = run(
            "orders", "reattribute", "O-1", "--brand", program.slug, "--creator", handle,
            "--reason", "the coupon leaked", "--as", program.finance,
        )  # fmt: skip
        assert result.exit_code == 1
        assert "say which evidence applies" in _flat(result.output)
        assert _current(program, order_id).via == "coupon"

    def test_ops_is_refused_and_nothing_changes(self, program):
        order_id, _ = _sold(program)
        result = run(
            "orders", "reattribute", "O-1", "--brand", program.slug, "--nobody", "--reason", "mine", "--as", program.ops
        )
        assert result.exit_code == 1
        assert _current(program, order_id).via == "coupon"

    def test_creator_and_nobody_together_are_refused(self, program):
        result = run("orders", "reattribute", "O-1", "--brand", program.slug, "--nobody", "--creator", "x",
                     "--reason", "why")  # fmt: skip
        assert result.exit_code != 0
        assert "exactly one of --creator HANDLE or --nobody" in _flat(result.output)

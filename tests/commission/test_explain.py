"""Any line can be explained: order → attribution → rule → contract version → rate → amount → ledger."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.auth import service as auth_service
from clearline.auth.actor import Actor
from clearline.commission import explain
from clearline.kit.errors import NotFoundError
from clearline.models import Offer, User
from tests import factories
from tests.commission.program import Program, build


class TestExplainOrder:
    def test_every_line_says_whether_and_why_it_earned(self, db: Session) -> None:
        program = build(db, excluded=["SKU-X1"])
        program.creator("anna", terms={**_gross_margin(), "cap_per_order": "12.00"})
        code = program.coupon("anna")
        program.order(
            "O-7",
            at=program.at(5),
            lines=[("SKU-A1", 2, "49.00", "4.00"), ("SKU-X1", 1, "25.00"), ("SKU-ZZ", 1, "3.00")],
            coupon=code,
        )
        found = explain.explain_order(db, program.finance, brand_id=program.brand.id, order_id="O-7")
        rule = found["commissions"][0]["rule"]
        assert [x["ineligible_reason"] for x in found["lines"]] == [
            "",
            f"SKU SKU-X1 is excluded from offer {_offer(program)}",
            "SKU SKU-ZZ is not in the catalog",
        ]
        [attribution] = found["attributions"]
        assert attribution["via"] == "coupon" and code in attribution["reason"]
        assert found["contract_id"] == program.contracts["anna"].id
        [line] = found["commissions"]
        assert rule["rule"] == "revshare_gross_margin" and rule["rate"] == "20"
        assert rule["text"] == "Rev share 20 % of gross margin 69.50 USD (net 94.00 − 2 × unit cost 12.25) × FX 1"
        assert rule["note"] == "order cap: 1390 → 1200 minor units"
        assert (line["amount"], line["reversed"], line["net"], line["currency"]) == ("12.00", "0.00", "12.00", "USD")
        assert line["contract"]["version"] == 1 and line["contract"]["accepted_at"] is not None
        assert [entry["kind"] for entry in line["ledger"]] == ["commission.accrued"]
        assert sorted(p["amount"] for p in line["ledger"][0]["postings"]) == ["-12.00", "12.00"]

    def test_a_refund_shows_in_the_explanation(self, program: Program) -> None:
        program.creator("anna")
        order = program.order("O-8", at=program.at(5), lines=[("SKU-B1", 1, "24.00")], coupon=program.coupon("anna"))
        program.refund(order, at=program.at(6), lines=[("SKU-B1", "15.03")])
        found = explain.explain_order(program.db, program.finance, brand_id=program.brand.id, order_id="O-8")
        [line] = found["commissions"]
        assert (line["amount"], line["reversed"], line["net"]) == ("4.00", "2.51", "1.49")
        assert line["order"]["refunded"] == "15.03"
        assert [entry["kind"] for entry in line["ledger"]] == ["commission.accrued", "commission.reversed"]

    def test_another_brand_cannot_read_the_order(self, program: Program) -> None:
        program.creator("anna")
        program.order("O-9", at=program.at(5), lines=[("SKU-B1", 1, "24.00")], coupon=program.coupon("anna"))
        other = factories.brand(program.db)
        outsider = factories.actor(program.db, ("finance", other.id))
        with pytest.raises(NotFoundError):
            explain.explain_order(program.db, outsider, brand_id=program.brand.id, order_id="O-9")


class TestExplainLine:
    def test_a_creator_can_explain_its_own_line_but_not_anothers(self, program: Program) -> None:
        program.creator("anna")
        program.creator("ben")
        order = program.order("O-1", at=program.at(5), lines=[("SKU-A1", 1, "49.00")], coupon=program.coupon("anna"))
        [line] = program.lines(order)
        anna = _creator_actor(program, "anna")
        ben = _creator_actor(program, "ben")
        found = explain.explain_line(program.db, anna, line.id)
        assert found["rule"]["text"] == "CPA per unit, tier a (new customer): 8.00 USD × 1"
        assert found["payee"] == {"type": "creator", "id": program.creators["anna"].id}
        with pytest.raises(NotFoundError):
            explain.explain_line(program.db, ben, line.id)

    def test_a_per_order_line_says_it_is_paid_once(self, program: Program) -> None:
        program.creator(
            "anna",
            terms={
                "model": "cpa",
                "currency": "USD",
                "cpa": {"per": "order", "rates": {"new": {"a": "8.00", "b": "4.00"}}},
            },
        )
        order = program.order(
            "O-2",
            at=program.at(5),
            lines=[("SKU-B1", 1, "24.00"), ("SKU-A1", 1, "49.00")],
            coupon=program.coupon("anna"),
        )
        [line] = program.lines(order)
        found = explain.explain_line(program.db, program.finance, line.id)
        assert found["rule"]["text"] == "CPA per order, tier a (new customer): 8.00 USD once"
        assert found["order"]["line_no"] == 1


def _gross_margin() -> dict[str, object]:
    return {
        "model": "revshare",
        "currency": "USD",
        "revshare": {"basis": "gross_margin", "rates": {"new": {"a": "20", "b": "20", "c": "20"}}},
    }


def _offer(program: Program) -> str:
    offer = program.db.get(Offer, program.campaign.offer_id)
    assert offer is not None
    return offer.code


def _creator_actor(program: Program, handle: str) -> Actor:
    user = program.db.scalar(select(User).where(User.creator_id == program.creators[handle].id))
    assert user is not None
    return auth_service.actor_for(program.db, user)

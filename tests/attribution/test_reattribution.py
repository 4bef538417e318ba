"""Re-attribution: finance only, audited, never an edit — the old row is kept and its money reversed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from clearline.attribution.reattribution import reattribute
from clearline.commission import service as commission_service
from clearline.kit.errors import ForbiddenError, NotFoundError, ValidationFailedError
from clearline.ledger import service as ledger
from clearline.models import Attribution, AuditEvent, Order
from tests import factories
from tests.commission.program import Program


def _order(program: Program) -> Order:
    program.creator("anna.glow")
    program.creator("ben.makes")
    return program.order(
        "O-1",
        at=program.at(5),
        lines=[("SKU-A1", 1, "49.00"), ("SKU-B1", 1, "24.00")],
        coupon=program.coupon("anna.glow"),
    )


def _move(
    program: Program,
    handle: str | None,
    reason: str = "coupon leaked; ben's click drove the sale",
    via: str | None = "",
) -> dict:  # type: ignore[type-arg]
    """Finance moves O-1; ben.makes has no touch on the order, so finance states the evidence (a click)."""
    return reattribute(
        program.db,
        program.finance,
        brand_id=program.brand.id,
        order_id="O-1",
        creator_id=program.creators[handle].id if handle else None,
        campaign_id=None,
        reason=reason,
        via=("click" if handle == "ben.makes" else None) if via == "" else via,
    )


def _kinds(program: Program, order: Order) -> list[tuple[str, str]]:
    return [
        (str(t["kind"]), str(t["key"]).split(":")[-1])
        for c in program.lines(order, current_only=False)
        for t in ledger.transfers_for_line(program.db, c.id)
    ]


class TestReattribute:
    def test_the_order_moves_to_the_new_creator_and_the_old_row_is_kept(self, program: Program) -> None:
        order = _order(program)
        old = program.attribution(order)
        result = _move(program, "ben.makes")
        rows = list(
            program.db.scalars(select(Attribution).where(Attribution.order_id == order.id).order_by(Attribution.id))
        )
        assert [(a.id, a.is_current) for a in rows] == [(old.id, False), (result["attribution_id"], True)]
        new = rows[1]
        assert (new.via, new.creator_id, new.campaign_id) == (
            "click",
            program.creators["ben.makes"].id,
            old.campaign_id,
        )
        assert new.contract_id == program.contracts["ben.makes"].id
        assert (
            new.reason.endswith(": coupon leaked; ben's click drove the sale")
            and new.created_by == program.finance.label
        )
        assert old.reason.startswith("Attributed by rule 1 (coupon)")  # the superseded reason is untouched

    def test_the_old_commission_is_reversed_from_pending_and_the_new_creator_accrues(self, program: Program) -> None:
        order = _order(program)
        result = _move(program, "ben.makes")
        assert result["reversed_amount"] == 1200
        assert program.balance("anna.glow", ledger.PENDING) == 0
        assert program.balance("ben.makes", ledger.PENDING) == 1200
        assert sorted(c.amount for c in program.lines(order)) == [400, 800]
        assert {c.creator_id for c in program.lines(order)} == {program.creators["ben.makes"].id}
        old_lines = [
            c for c in program.lines(order, current_only=False) if c.creator_id == program.creators["anna.glow"].id
        ]
        assert all(c.reversed_amount == c.amount for c in old_lines)
        assert ("commission.reversed", "reattributed") in _kinds(program, order)
        assert program.expense() == -1200
        assert ledger.imbalances(program.db) == []

    def test_cleared_commission_is_clawed_back_from_available(self, program: Program) -> None:
        order = _order(program)
        commission_service.clear_due(program.db, now=program.at(36))  # SKU-A1 (30 days) cleared, SKU-B1 not
        _move(program, "ben.makes")
        assert program.balance("anna.glow", ledger.AVAILABLE) == 0
        assert program.balance("anna.glow", ledger.PENDING) == 0
        kinds = _kinds(program, order)
        assert ("commission.clawed_back", "reattributed") in kinds and ("commission.reversed", "reattributed") in kinds

    def test_paid_commission_claws_back_into_a_negative_balance(self, program: Program) -> None:
        order = _order(program)
        commission_service.clear_due(program.db, now=program.at(70))
        anna = program.creators["anna.glow"].id
        brand_payouts = ledger.Account(program.brand.id, "brand", program.brand.id, ledger.PAYOUTS, "USD")
        ledger.post(
            program.db,
            [
                ledger.Transfer(
                    "test.paid", "payout.paid", program.account("anna.glow", ledger.AVAILABLE), brand_payouts, 1200
                )
            ],
        )
        _move(program, "ben.makes")
        assert program.balance("anna.glow", ledger.AVAILABLE) == -1200
        assert anna not in {c.creator_id for c in program.lines(order)}
        assert ledger.imbalances(program.db) == []

    def test_the_new_creator_earns_only_on_what_was_not_refunded(self, program: Program) -> None:
        order = _order(program)
        program.refund(order, at=program.at(6), lines=[("SKU-B1", "12.00")])
        assert program.balance("anna.glow", ledger.PENDING) == 1000
        _move(program, "ben.makes")
        by_sku = {c.sku: (c.amount, c.reversed_amount) for c in program.lines(order)}
        assert by_sku == {"SKU-A1": (800, 0), "SKU-B1": (400, 200)}
        assert program.balance("ben.makes", ledger.PENDING) == 1000
        assert program.balance("anna.glow", ledger.PENDING) == 0
        program.refund(order, at=program.at(7), lines=[("SKU-B1", "12.00")])
        assert program.balance("ben.makes", ledger.PENDING) == 800

    def test_moving_an_order_to_no_one_reverses_and_accrues_nothing(self, program: Program) -> None:
        order = _order(program)
        result = _move(program, None, reason="self-referral confirmed")
        assert result == {
            "attribution_id": program.attribution(order).id,
            "reversed_amount": 1200,
            "commission_line_ids": [],
        }
        assert program.attribution(order).via == "none"
        assert program.balance("anna.glow", ledger.PENDING) == 0

    def test_it_is_audited_with_before_after_and_reason(self, program: Program) -> None:
        order = _order(program)
        old = program.attribution(order)
        result = _move(program, "ben.makes")
        event = program.db.scalar(select(AuditEvent).where(AuditEvent.action == "order.reattributed"))
        assert event is not None
        assert (event.entity_type, event.entity_id, event.brand_id) == ("orders", str(order.id), program.brand.id)
        assert event.before == {"attribution_id": old.id, "creator_id": program.creators["anna.glow"].id}
        assert event.after is not None and event.after["reversed"] == 1200
        assert event.after["new_lines"] == result["commission_line_ids"]
        assert event.reason == "coupon leaked; ben's click drove the sale"

    def test_only_finance_may_reattribute(self, program: Program) -> None:
        order = _order(program)
        for grants in (("social_ops", program.brand.id), ("marketing", program.brand.id), ("legal", program.brand.id)):
            with pytest.raises(ForbiddenError):
                reattribute(
                    program.db,
                    factories.actor(program.db, grants),
                    brand_id=program.brand.id,
                    order_id="O-1",
                    creator_id=program.creators["ben.makes"].id,
                    campaign_id=None,
                    reason="why not",
                )
        assert program.attribution(order).creator_id == program.creators["anna.glow"].id

    def test_finance_of_another_brand_cannot_see_the_order(self, program: Program) -> None:
        _order(program)
        other = factories.brand(program.db)
        with pytest.raises((NotFoundError, ForbiddenError)):
            reattribute(
                program.db,
                factories.actor(program.db, ("finance", other.id)),
                brand_id=program.brand.id,
                order_id="O-1",
                creator_id=None,
                campaign_id=None,
                reason="mine now",
            )

    def test_a_reason_is_required(self, program: Program) -> None:
        _order(program)
        with pytest.raises(ValidationFailedError, match="reason"):
            _move(program, "ben.makes", reason="  ")

    def test_an_unknown_order_is_not_found(self, program: Program) -> None:
        with pytest.raises(NotFoundError):
            reattribute(
                program.db,
                program.finance,
                brand_id=program.brand.id,
                order_id="nope",
                creator_id=None,
                campaign_id=None,
                reason="x",
            )

    def test_moving_back_and_forth_keeps_every_row_and_the_ledger_balanced(self, program: Program) -> None:
        order = _order(program)
        _move(program, "ben.makes")
        _move(program, "anna.glow", reason="ben's click was a bot after all")
        rows = list(program.db.scalars(select(Attribution).where(Attribution.order_id == order.id)))
        assert [a.is_current for a in rows] == [False, False, True]
        assert program.balance("anna.glow", ledger.PENDING) == 1200
        assert program.balance("ben.makes", ledger.PENDING) == 0
        assert ledger.imbalances(program.db) == []


class TestEvidence:
    """The payout detail file reports `attributed_via` as coupon, click or utm: a re-attribution keeps one."""

    def test_without_a_touch_for_the_new_creator_finance_must_state_the_evidence(self, program: Program) -> None:
        order = _order(program)
        with pytest.raises(ValidationFailedError, match="evidence") as refused:
            _move(program, "ben.makes", via=None)
        assert refused.value.details == [{"loc": ["via"], "msg": "required: coupon, click or utm"}]
        assert program.attribution(order).creator_id == program.creators["anna.glow"].id

    def test_an_unknown_kind_of_evidence_is_refused(self, program: Program) -> None:
        _order(program)
        with pytest.raises(ValidationFailedError, match="via"):
            _move(program, "ben.makes", via="manual")

    def test_the_touch_that_named_the_new_creator_is_kept_as_the_evidence(self, program: Program) -> None:
        program.creator("anna.glow")
        program.creator("ben.makes")
        ben_link = program.link("ben.makes")
        clid = program.click(ben_link, at=program.at(4))
        order = program.order(
            "O-1", at=program.at(5), lines=[("SKU-A1", 1, "49.00")], coupon=program.coupon("anna.glow"), click_id=clid
        )
        assert program.attribution(order).via == "coupon"  # the coupon won; the click is a recorded conflict
        _move(program, "ben.makes", via=None)
        now = program.attribution(order)
        assert (now.via, now.creator_id, now.link_id, now.click_id, now.coupon_code) == (
            "click",
            program.creators["ben.makes"].id,
            ben_link.id,
            clid.split(".")[0],  # stored as the click's id, as rule 2 stores it
            "",
        )
        assert [c.creator_id for c in program.lines(order)] == [program.creators["ben.makes"].id]

"""Re-attribution: an explicit, audited action. It never edits what was decided or paid: the current
attribution is superseded, its commissions are reversed through the ledger, and the order earns anew."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.attribution.service import Touch, current, find
from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.commission import service as commission_service
from clearline.creator import repository as creator_repository
from clearline.kit.clock import utcnow
from clearline.kit.errors import NotFoundError, ValidationFailedError
from clearline.ledger import service as ledger
from clearline.link import repository as link_repository
from clearline.models import Attribution, Campaign, CommissionLine, Order, OrderLine


def reattribute(
    session: Session,
    actor: Actor,
    *,
    brand_id: int,
    order_id: str,
    creator_id: int | None,
    campaign_id: int | None,
    reason: str,
    via: str | None = None,
) -> dict[str, Any]:
    """Finance moves an order to another creator (or to none), with a reason: the current attribution is
    superseded and kept, its commissions are reversed (clawed back if cleared), and the new creator's
    commissions accrue — less the share of the order already refunded. Audited as ``order.reattributed``.

    The new row keeps the evidence the payout detail file reports (`attributed_via` is coupon, click or utm):
    the touch on the order that names the new creator (its code, signed click or UTM), or else the evidence
    finance states in ``via``."""
    brand = brand_repository.get(session, actor, brand_id)
    actor.require("finance", brand_id=brand.id)
    if not reason.strip():
        raise ValidationFailedError("a reason is required", details=[{"loc": ["reason"], "msg": "required"}])
    order = session.scalar(select(Order).where(Order.brand_id == brand.id, Order.external_id == order_id))
    if order is None:
        raise NotFoundError(f"no order {order_id}")
    before = current(session, order.id)
    if creator_id is not None:
        creator_repository.get_creator(session, actor, creator_id)
    if campaign_id is not None:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.brand_id != brand.id:
            raise NotFoundError(f"no campaign {campaign_id}")
    evidence = _evidence(session, order, creator_id, via)
    now = utcnow()
    reversed_total = 0
    if before is not None:
        lines = list(session.scalars(select(CommissionLine).where(CommissionLine.attribution_id == before.id)))
        transfers = []
        for c in lines:
            remaining = c.amount - c.reversed_amount
            if remaining <= 0:
                continue
            # Money that already cleared is clawed back from available (it may go negative and nets off
            # later); money still in its verification window is simply reversed out of pending.
            cleared = c.cleared_at is not None
            source = ledger.AVAILABLE if cleared else ledger.PENDING
            kind = "commission.clawed_back" if cleared else "commission.reversed"
            c.reversed_amount = c.amount
            reversed_total += remaining
            transfers.append(
                ledger.Transfer(
                    key=f"{kind}:{c.id}:reattributed",
                    kind=kind,
                    debit=commission_service.account(c, source),
                    credit=commission_service.account(c, ledger.EXPENSE),
                    amount=remaining,
                    commission_line_id=c.id,
                    effective_at=now,
                    memo=f"re-attribution: {reason}",
                )
            )
        ledger.post(session, transfers)
        commission_service.mark_superseded(session, before.id)
    contract = None
    if creator_id is not None:
        contract = link_repository.accepted_contract_for(
            session, brand_id=brand.id, creator_id=creator_id, at=order.ordered_at
        )
    after = Attribution(
        order_id=order.id,
        brand_id=brand.id,
        via=evidence.via if evidence else "none",
        creator_id=creator_id,
        campaign_id=campaign_id or (evidence and evidence.campaign_id) or (before.campaign_id if before else None),
        link_id=evidence.link_id if evidence else None,
        click_id=evidence.click_id if evidence else "",
        coupon_code=evidence.coupon_code if evidence else "",
        contract_id=contract.id if contract else None,
        reason=f"Re-attributed by {actor.label}: {reason}",
        is_current=True,
        created_by=actor.label,
    )
    session.add(after)
    session.flush()
    created = []
    if contract is not None:
        order_lines = list(session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)))
        created = commission_service.accrue(session, order=order, lines=order_lines, attribution=after)
        commission_service.reverse_earlier_refunds(
            session, order=order, commission_lines=created, attribution_id=after.id, at=now
        )
    audit.record(
        session,
        actor,
        "order.reattributed",
        order,
        before={"attribution_id": before.id if before else None, "creator_id": before.creator_id if before else None},
        after={
            "attribution_id": after.id,
            "creator_id": creator_id,
            "reversed": reversed_total,
            "new_lines": [c.id for c in created],
        },
        reason=reason,
    )
    return {
        "attribution_id": after.id,
        "reversed_amount": reversed_total,
        "commission_line_ids": [c.id for c in created],
    }


VIAS = ("coupon", "click", "utm")


def _evidence(session: Session, order: Order, creator_id: int | None, via: str | None) -> Touch | None:
    if creator_id is None:
        return None
    if via is not None and via not in VIAS:
        raise ValidationFailedError("via must be coupon, click or utm", details=[{"loc": ["via"], "msg": "invalid"}])
    touches = [t for t in find(session, order).touches if t.creator_id == creator_id]
    if via is not None:
        touches = [t for t in touches if t.via == via] or [Touch(via=via, creator_id=creator_id, campaign_id=None)]
    if not touches:
        raise ValidationFailedError(
            "no coupon, click or UTM touch on the order names this creator: say which evidence applies",
            details=[{"loc": ["via"], "msg": "required: coupon, click or utm"}],
        )
    return touches[0]

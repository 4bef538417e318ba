from __future__ import annotations

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.auth.scope import brand_filter
from clearline.commission.explain import READERS, readable_lines
from clearline.models import Attribution, CommissionLine, Dispute, Order


def list_orders(
    session: Session, actor: Actor, *, brand_id: int, limit: int = 200, offset: int = 0
) -> list[tuple[Order, Attribution | None, int, int]]:
    """Orders with their current attribution and commission totals (earned, reversed)."""
    totals = (
        select(
            CommissionLine.order_id,
            func.sum(CommissionLine.amount).label("earned"),
            func.sum(CommissionLine.reversed_amount).label("reversed"),
        )
        .group_by(CommissionLine.order_id)
        .subquery()
    )
    stmt = (
        select(Order, Attribution, totals.c.earned, totals.c.reversed)
        .outerjoin(Attribution, (Attribution.order_id == Order.id) & Attribution.is_current.is_(True))
        .outerjoin(totals, totals.c.order_id == Order.id)
        .where(Order.brand_id == brand_id, brand_filter(actor, Order.brand_id, READERS))
        .order_by(Order.ordered_at.desc(), Order.id.desc())  # the id breaks ties: pages neither skip nor repeat
        .limit(limit)
        .offset(offset)
    )
    return [(o, a, int(e or 0), int(r or 0)) for o, a, e, r in session.execute(stmt)]


def list_lines(
    session: Session, actor: Actor, *, brand_id: int | None = None, creator_id: int | None = None, limit: int = 500
) -> list[CommissionLine]:
    stmt = select(CommissionLine).where(readable_lines(actor)).order_by(CommissionLine.id.desc()).limit(limit)
    if brand_id is not None:
        stmt = stmt.where(CommissionLine.brand_id == brand_id)
    if creator_id is not None:
        stmt = stmt.where(CommissionLine.creator_id == creator_id)
    return list(session.scalars(stmt))


def _own_payee(actor: Actor):  # type: ignore[no-untyped-def]
    """Lines that pay the actor itself: its creator, or its agency (not a roster creator's own deal)."""
    clauses = []
    if actor.creator_id is not None:
        clauses.append((CommissionLine.payee_type == "creator") & (CommissionLine.payee_id == actor.creator_id))
    if actor.agency_id is not None:
        clauses.append((CommissionLine.payee_type == "agency") & (CommissionLine.payee_id == actor.agency_id))
    return or_(*clauses) if clauses else None


def payee_totals(session: Session, actor: Actor) -> list[tuple[str, str, int, int]]:
    """The actor's own earnings per currency and state ('pending' = not cleared, 'cleared'), as
    (currency, state, earned net of reversals, reserve still held back)."""
    own = _own_payee(actor)
    if own is None:
        return []
    # Grouped by a parameter-free expression: PostgreSQL would not match a CASE with bound labels to its
    # GROUP BY twin.
    is_pending = CommissionLine.cleared_at.is_(None)
    held = case((CommissionLine.reserve_released_at.is_(None), CommissionLine.reserve_amount), else_=0)
    stmt = (
        select(
            CommissionLine.currency,
            is_pending,
            func.sum(CommissionLine.amount - CommissionLine.reversed_amount),
            func.sum(held),
        )
        .where(own, readable_lines(actor))
        .group_by(CommissionLine.currency, is_pending)
    )
    return [
        (currency, "pending" if pending else "cleared", int(net or 0), int(h or 0))
        for currency, pending, net, h in session.execute(stmt)
    ]


def payee_adjustments(session: Session, actor: Actor) -> dict[str, int]:
    """currency -> the sum of upheld dispute adjustments on the actor's own lines (payee's view, either sign)."""
    own = _own_payee(actor)
    if own is None:
        return {}
    stmt = (
        select(CommissionLine.currency, func.sum(Dispute.adjustment_amount))
        .join(Dispute, Dispute.commission_line_id == CommissionLine.id)
        .where(own, readable_lines(actor), Dispute.status == "upheld")
        .group_by(CommissionLine.currency)
    )
    return {currency: int(total or 0) for currency, total in session.execute(stmt)}


def order_numbers(session: Session, actor: Actor, order_ids: list[int]) -> dict[int, str]:
    """order id -> the shop's order number, for orders behind commission lines the actor may read."""
    wanted = sorted({i for i in order_ids if i is not None})
    if not wanted:
        return {}
    readable = select(CommissionLine.order_id).where(CommissionLine.order_id.in_(wanted), readable_lines(actor))
    stmt = select(Order.id, Order.external_id).where(Order.id.in_(readable))
    return {order_id: external_id for order_id, external_id in session.execute(stmt)}


def order_line_ids(session: Session, actor: Actor, *, brand_id: int, external_id: str) -> list[int]:
    """The commission lines of one order (by the shop's number) that the actor may read, in order."""
    stmt = (
        select(CommissionLine.id)
        .join(Order, Order.id == CommissionLine.order_id)
        .where(Order.brand_id == brand_id, Order.external_id == external_id, readable_lines(actor))
        .order_by(CommissionLine.id)
    )
    return list(session.scalars(stmt))

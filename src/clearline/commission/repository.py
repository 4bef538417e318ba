from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.auth.scope import brand_filter
from clearline.commission.explain import READERS, readable_lines
from clearline.models import Attribution, CommissionLine, Order


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
        .order_by(Order.ordered_at.desc())
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

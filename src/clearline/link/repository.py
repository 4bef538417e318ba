from __future__ import annotations

import datetime as dt

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.auth.scope import brand_filter
from clearline.contract.repository import agency_brand_ids
from clearline.creator.repository import readable_creators
from clearline.kit.errors import NotFoundError
from clearline.models import (
    Click,
    Contract,
    CouponCode,
    Creator,
    Link,
    LinkChange,
    Notification,
    RosterEntry,
    UtmTemplate,
)


def _roster_owned(agency_id: int, creator_column, brand_column):  # type: ignore[no-untyped-def]
    """An agency's roster creators' rows, only with the brands the agency works for: a roster creator's own
    links and codes with another brand are not the agency's business."""
    roster = select(RosterEntry.creator_id).where(RosterEntry.agency_id == agency_id)
    return creator_column.in_(roster) & brand_column.in_(agency_brand_ids(agency_id))


def readable_links(actor: Actor):  # type: ignore[no-untyped-def]
    clauses = [brand_filter(actor, Link.brand_id)]
    if actor.creator_id is not None:
        clauses.append(Link.creator_id == actor.creator_id)
    if actor.agency_id is not None:
        clauses.append(_roster_owned(actor.agency_id, Link.creator_id, Link.brand_id))
    return or_(*clauses)


def list_links(
    session: Session,
    actor: Actor,
    *,
    brand_id: int | None = None,
    creator_id: int | None = None,
    status: str | None = None,
) -> list[Link]:
    stmt = select(Link).where(readable_links(actor)).order_by(Link.id)
    if brand_id is not None:
        stmt = stmt.where(Link.brand_id == brand_id)
    if creator_id is not None:
        stmt = stmt.where(Link.creator_id == creator_id)
    if status is not None:
        stmt = stmt.where(Link.status == status)
    return list(session.scalars(stmt))


def get_link(session: Session, actor: Actor, link_id: int) -> Link:
    found = session.scalar(select(Link).where(Link.id == link_id, readable_links(actor)))
    if found is None:
        raise NotFoundError(f"no link {link_id}")
    return found


def get_link_by_code(session: Session, actor: Actor, code: str) -> Link:
    found = session.scalar(select(Link).where(Link.code == code, readable_links(actor)))
    if found is None:
        raise NotFoundError(f"no link with code {code!r}")
    return found


def count_live(session: Session, *, brand_id: int | None = None) -> int:
    stmt = select(func.count()).select_from(Link).where(Link.status == "live")
    if brand_id is not None:
        stmt = stmt.where(Link.brand_id == brand_id)
    return session.scalar(stmt) or 0


def creator_handles(session: Session, creator_ids: list[int]) -> dict[int, str]:
    if not creator_ids:
        return {}
    stmt = select(Creator.id, Creator.handle).where(Creator.id.in_(sorted(set(creator_ids))))
    return {creator_id: handle for creator_id, handle in session.execute(stmt)}


def canonical(session: Session, *, campaign_id: int, creator_id: int, sku: str) -> Link | None:
    return session.scalar(
        select(Link).where(Link.campaign_id == campaign_id, Link.creator_id == creator_id, Link.sku == sku)
    )


def readable_creators_by_handle(session: Session, actor: Actor, handles: list[str]) -> dict[str, Creator]:
    """handle -> creator, for the handles among the creators ``actor`` may see."""
    if not handles:
        return {}
    stmt = select(Creator).where(Creator.handle.in_(handles), readable_creators(actor))
    return {creator.handle: creator for creator in session.scalars(stmt)}


def code_taken(session: Session, code: str) -> bool:
    return session.scalar(select(Link.id).where(Link.code == code)) is not None


def template(session: Session, brand_id: int) -> UtmTemplate | None:
    return session.scalar(select(UtmTemplate).where(UtmTemplate.brand_id == brand_id))


def touch(session: Session, link_id: int) -> None:
    """Tell every redirect worker that this link changed."""
    session.add(LinkChange(link_id=link_id))


def accepted_contract_for(session: Session, *, brand_id: int, creator_id: int, at: dt.datetime) -> Contract | None:
    """The creator's accepted contract with the brand at ``at``: its own, or its agency's."""
    roster_agencies = select(RosterEntry.agency_id).where(RosterEntry.creator_id == creator_id)
    stmt = (
        select(Contract)
        .where(
            Contract.brand_id == brand_id,
            Contract.status == "accepted",
            or_(Contract.creator_id == creator_id, Contract.agency_id.in_(roster_agencies)),
            Contract.starts_at <= at,
            or_(Contract.ends_at.is_(None), Contract.ends_at > at),
        )
        .order_by(Contract.creator_id.is_(None), Contract.id.desc())
    )
    return session.scalars(stmt).first()


def click_counts(session: Session, link_ids: list[int]) -> dict[int, tuple[int, int]]:
    """link id -> (human clicks, unique human visitors) for the given links."""
    if not link_ids:
        return {}
    stmt = (
        select(Click.link_id, func.count(), func.count(func.distinct(Click.click_id)))
        .where(Click.link_id.in_(link_ids), Click.is_bot.is_(False))
        .group_by(Click.link_id)
    )
    return {link_id: (total, unique) for link_id, total, unique in session.execute(stmt)}


def coupons(
    session: Session,
    actor: Actor,
    *,
    brand_id: int | None = None,
    creator_id: int | None = None,
    campaign_id: int | None = None,
) -> list[CouponCode]:
    clauses = [brand_filter(actor, CouponCode.brand_id)]
    if actor.creator_id is not None:
        clauses.append(CouponCode.creator_id == actor.creator_id)
    if actor.agency_id is not None:
        clauses.append(_roster_owned(actor.agency_id, CouponCode.creator_id, CouponCode.brand_id))
    stmt = select(CouponCode).where(or_(*clauses)).order_by(CouponCode.id)
    if brand_id is not None:
        stmt = stmt.where(CouponCode.brand_id == brand_id)
    if creator_id is not None:
        stmt = stmt.where(CouponCode.creator_id == creator_id)
    if campaign_id is not None:
        stmt = stmt.where(CouponCode.campaign_id == campaign_id)
    return list(session.scalars(stmt))


def coupon_codes_taken(session: Session, brand_id: int, codes: list[str]) -> set[str]:
    if not codes:
        return set()
    stmt = select(CouponCode.code).where(CouponCode.brand_id == brand_id, CouponCode.code.in_(codes))
    return set(session.scalars(stmt))


def notifications(
    session: Session, actor: Actor, *, brand_id: int | None = None, limit: int = 100
) -> list[Notification]:
    clauses = [brand_filter(actor, Notification.brand_id)]
    if actor.creator_id is not None:
        clauses.append(Notification.creator_id == actor.creator_id)
    stmt = select(Notification).where(or_(*clauses)).order_by(Notification.id.desc()).limit(limit)
    if brand_id is not None:
        stmt = stmt.where(Notification.brand_id == brand_id)
    return list(session.scalars(stmt))

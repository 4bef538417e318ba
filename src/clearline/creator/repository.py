from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.auth.scope import brand_filter
from clearline.kit.errors import NotFoundError
from clearline.models import Agency, Contract, Creator, RosterEntry


def readable_creators(actor: Actor):  # type: ignore[no-untyped-def]
    """Staff: creators onboarded by or contracted with their brands; a creator: itself; an agency: its roster."""
    clauses = [
        brand_filter(actor, Creator.brand_id),
        Creator.id.in_(select(Contract.creator_id).where(brand_filter(actor, Contract.brand_id))),
    ]
    if actor.creator_id is not None:
        clauses.append(Creator.id == actor.creator_id)
    if actor.agency_id is not None:
        clauses.append(
            Creator.id.in_(select(RosterEntry.creator_id).where(RosterEntry.agency_id == actor.agency_id))
        )
    return or_(*clauses)


def readable_agencies(actor: Actor):  # type: ignore[no-untyped-def]
    clauses = [
        brand_filter(actor, Agency.brand_id),
        Agency.id.in_(select(Contract.agency_id).where(brand_filter(actor, Contract.brand_id))),
    ]
    if actor.agency_id is not None:
        clauses.append(Agency.id == actor.agency_id)
    return or_(*clauses)


def list_creators(session: Session, actor: Actor, *, brand_id: int | None = None) -> list[Creator]:
    stmt = select(Creator).where(readable_creators(actor)).order_by(Creator.handle)
    if brand_id is not None:
        in_brand = Creator.id.in_(select(Contract.creator_id).where(Contract.brand_id == brand_id))
        stmt = stmt.where(or_(Creator.brand_id == brand_id, in_brand))
    return list(session.scalars(stmt))


def get_creator(session: Session, actor: Actor, creator_id: int) -> Creator:
    creator = session.scalar(select(Creator).where(Creator.id == creator_id, readable_creators(actor)))
    if creator is None:
        raise NotFoundError(f"no creator {creator_id}")
    return creator


def creators_by_handle(session: Session, handles: list[str]) -> dict[str, Creator]:
    return {c.handle: c for c in session.scalars(select(Creator).where(Creator.handle.in_(handles)))}


def rosterable_by_handle(session: Session, agency: Agency, handles: list[str]) -> dict[str, Creator]:
    """Creators an agency may take on: onboarded by, or contracted with, a brand the agency works for.
    Any other creator is reported as unknown, so a roster import cannot reach another brand's creators."""
    from clearline.contract.repository import agency_brand_ids

    brands = agency_brand_ids(agency.id)
    stmt = select(Creator).where(
        Creator.handle.in_(handles),
        or_(
            Creator.brand_id.in_(brands),
            Creator.id.in_(select(Contract.creator_id).where(Contract.brand_id.in_(brands))),
        ),
    )
    return {c.handle: c for c in session.scalars(stmt)}


def list_agencies(session: Session, actor: Actor) -> list[Agency]:
    return list(session.scalars(select(Agency).where(readable_agencies(actor)).order_by(Agency.name)))


def get_agency(session: Session, actor: Actor, agency_id: int) -> Agency:
    agency = session.scalar(select(Agency).where(Agency.id == agency_id, readable_agencies(actor)))
    if agency is None:
        raise NotFoundError(f"no agency {agency_id}")
    return agency


def roster(session: Session, agency_id: int) -> list[int]:
    stmt = (
        select(RosterEntry.creator_id)
        .where(RosterEntry.agency_id == agency_id)
        .order_by(RosterEntry.creator_id)
    )
    return list(session.scalars(stmt))

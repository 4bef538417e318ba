from __future__ import annotations

from sqlalchemy import and_, or_, select, union
from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.auth.scope import brand_filter
from clearline.kit.errors import NotFoundError
from clearline.models import (
    Agency,
    Contract,
    ContractAcceptance,
    ContractTemplate,
    ContractTemplateVersion,
    RosterEntry,
)

CONTRACT_READERS = ("legal", "finance", "social_ops", "marketing", "brand_steward")


def agency_brand_ids(agency_id: int):  # type: ignore[no-untyped-def]
    """The brands an agency works for: the one that onboarded it and those it holds contracts with."""
    return union(
        select(Agency.brand_id).where(Agency.id == agency_id),
        select(Contract.brand_id).where(Contract.agency_id == agency_id),
    )


def roster_contracts(agency_id: int):  # type: ignore[no-untyped-def]
    """Contracts of the agency's roster creators, but only with the brands the agency works for: a
    roster creator's own deal with another brand is not the agency's business."""
    roster = select(RosterEntry.creator_id).where(RosterEntry.agency_id == agency_id)
    return and_(Contract.creator_id.in_(roster), Contract.brand_id.in_(agency_brand_ids(agency_id)))


def readable_contracts(actor: Actor):  # type: ignore[no-untyped-def]
    clauses = [brand_filter(actor, Contract.brand_id, CONTRACT_READERS)]
    if actor.creator_id is not None:
        clauses.append(Contract.creator_id == actor.creator_id)
    if actor.agency_id is not None:
        clauses.append(Contract.agency_id == actor.agency_id)
        clauses.append(roster_contracts(actor.agency_id))
    return or_(*clauses)


def list_contracts(
    session: Session, actor: Actor, *, brand_id: int | None = None
) -> list[tuple[Contract, ContractTemplateVersion, ContractAcceptance | None]]:
    stmt = (
        select(Contract, ContractTemplateVersion, ContractAcceptance)
        .join(ContractTemplateVersion, ContractTemplateVersion.id == Contract.template_version_id)
        .outerjoin(ContractAcceptance, ContractAcceptance.contract_id == Contract.id)
        .where(readable_contracts(actor))
        .order_by(Contract.id)
    )
    if brand_id is not None:
        stmt = stmt.where(Contract.brand_id == brand_id)
    return [(c, v, a) for c, v, a in session.execute(stmt)]


def get_contract(session: Session, actor: Actor, contract_id: int) -> Contract:
    found = session.scalar(select(Contract).where(Contract.id == contract_id, readable_contracts(actor)))
    if found is None:
        raise NotFoundError(f"no contract {contract_id}")
    return found


def acceptance(session: Session, contract_id: int) -> ContractAcceptance | None:
    return session.scalar(select(ContractAcceptance).where(ContractAcceptance.contract_id == contract_id))


def readable_templates(actor: Actor):  # type: ignore[no-untyped-def]
    return or_(ContractTemplate.brand_id.is_(None), brand_filter(actor, ContractTemplate.brand_id))


def list_templates(session: Session, actor: Actor) -> list[ContractTemplate]:
    if not actor.is_staff:
        return []
    return list(
        session.scalars(
            select(ContractTemplate).where(readable_templates(actor)).order_by(ContractTemplate.name)
        )
    )


def get_template(session: Session, actor: Actor, template_id: int) -> ContractTemplate:
    found = None
    if actor.is_staff:
        found = session.scalar(
            select(ContractTemplate).where(ContractTemplate.id == template_id, readable_templates(actor))
        )
    if found is None:
        raise NotFoundError(f"no contract template {template_id}")
    return found


def versions(session: Session, template_id: int) -> list[ContractTemplateVersion]:
    stmt = (
        select(ContractTemplateVersion)
        .where(ContractTemplateVersion.template_id == template_id)
        .order_by(ContractTemplateVersion.version)
    )
    return list(session.scalars(stmt))


def get_version(session: Session, version_id: int) -> ContractTemplateVersion | None:
    return session.get(ContractTemplateVersion, version_id)

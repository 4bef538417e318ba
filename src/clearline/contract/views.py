"""Read models for the contract pages and the creator/agency portal (no queries here: every read goes
through the scoped repositories, so a creator's portal can only ever hold its own contracts)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from clearline.auth import repository as auth_repository
from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.contract import repository
from clearline.creator import repository as creator_repository
from clearline.kit.errors import ForbiddenError
from clearline.models import (
    Agency,
    Contract,
    ContractAcceptance,
    ContractTemplate,
    ContractTemplateVersion,
    Creator,
)


@dataclass
class ContractLine:
    contract: Contract
    brand_name: str
    party: str
    party_kind: str  # "creator" or "agency"
    template_name: str | None
    version: ContractTemplateVersion
    accepted_at: dt.datetime | None
    accepted_by: str | None

    @property
    def template_label(self) -> str:
        return f"{self.template_name or 'Agreement'} v{self.version.version}"


@dataclass
class TemplateLine:
    template: ContractTemplate
    brand_name: str
    versions: list[ContractTemplateVersion]
    authors: dict[int, str]
    can_publish: bool

    @property
    def latest(self) -> ContractTemplateVersion | None:
        return self.versions[-1] if self.versions else None


@dataclass
class ContractsView:
    contracts: list[ContractLine]
    templates: list[TemplateLine]


@dataclass
class ContractDetail:
    line: ContractLine
    acceptance: ContractAcceptance | None
    can_accept: bool


@dataclass
class PortalView:
    creator: Creator | None
    agency: Agency | None
    roster: list[Creator] = field(default_factory=list)
    contracts: list[ContractLine] = field(default_factory=list)


def _party(contract: Contract, creators: dict[int, Creator], agencies: dict[int, Agency]) -> tuple[str, str]:
    if contract.creator_id is not None:
        creator = creators.get(contract.creator_id)
        return ("@" + creator.handle if creator else f"creator #{contract.creator_id}"), "creator"
    agency = agencies.get(contract.agency_id or 0)
    return (agency.name if agency else f"agency #{contract.agency_id}"), "agency"


def _lines(
    session: Session,
    actor: Actor,
    rows: Iterable[tuple[Contract, ContractTemplateVersion, ContractAcceptance | None]],
    templates: list[ContractTemplate],
) -> list[ContractLine]:
    rows = list(rows)
    creators = {c.id: c for c in creator_repository.list_creators(session, actor)}
    agencies = {a.id: a for a in creator_repository.list_agencies(session, actor)}
    brands = {b.id: b.name for b in brand_repository.list_brands(session, actor)}
    template_names = {t.id: t.name for t in templates}
    signers = auth_repository.user_names(session, (a.accepted_by_id for _, _, a in rows if a is not None))
    lines = []
    for contract, version, accepted in rows:
        party, kind = _party(contract, creators, agencies)
        lines.append(
            ContractLine(
                contract=contract,
                brand_name=brands.get(contract.brand_id, f"brand #{contract.brand_id}"),
                party=party,
                party_kind=kind,
                template_name=template_names.get(version.template_id),
                version=version,
                accepted_at=accepted.accepted_at if accepted else None,
                accepted_by=signers.get(accepted.accepted_by_id) if accepted else None,
            )
        )
    return lines


def contracts_overview(session: Session, actor: Actor, *, brand_id: int | None = None) -> ContractsView:
    """Legal's view: every readable contract with its template version and acceptance, and the templates."""
    templates = repository.list_templates(session, actor)
    contracts = _lines(session, actor, repository.list_contracts(session, actor, brand_id=brand_id), templates)
    brands = {b.id: b.name for b in brand_repository.list_brands(session, actor)}
    template_lines = []
    for template in templates:
        versions = repository.versions(session, template.id)
        template_lines.append(
            TemplateLine(
                template=template,
                brand_name="all brands"
                if template.brand_id is None
                else brands.get(template.brand_id, f"brand #{template.brand_id}"),
                versions=versions,
                authors=auth_repository.user_names(session, (v.created_by_id for v in versions)),
                can_publish=actor.has_any(("legal", "admin"), template.brand_id),
            )
        )
    return ContractsView(contracts=contracts, templates=template_lines)


def _is_party(actor: Actor, contract: Contract) -> bool:
    return (contract.creator_id is not None and contract.creator_id == actor.creator_id) or (
        contract.agency_id is not None and contract.agency_id == actor.agency_id
    )


def contract_detail(session: Session, actor: Actor, *, contract_id: int) -> ContractDetail:
    """One contract as its reader may see it: terms, template version and acceptance (404 when foreign)."""
    contract = repository.get_contract(session, actor, contract_id)
    version = repository.get_version(session, contract.template_version_id)
    assert version is not None  # a foreign key: every contract has its version
    acceptance = repository.acceptance(session, contract.id)
    line = _lines(session, actor, [(contract, version, acceptance)], repository.list_templates(session, actor))[0]
    return ContractDetail(
        line=line,
        acceptance=acceptance,
        can_accept=contract.status == "offered" and _is_party(actor, contract),
    )


def portal(session: Session, actor: Actor) -> PortalView:
    """A creator's or agency's own contracts (and an agency's roster)."""
    if actor.creator_id is None and actor.agency_id is None:
        raise ForbiddenError("the portal is for creator and agency accounts")
    creator = None if actor.creator_id is None else creator_repository.get_creator(session, actor, actor.creator_id)
    agency = None if actor.agency_id is None else creator_repository.get_agency(session, actor, actor.agency_id)
    roster: list[Creator] = []
    roster_ids: set[int] = set()
    if agency is not None:
        roster_ids = set(creator_repository.roster(session, agency.id))
        roster = [c for c in creator_repository.list_creators(session, actor) if c.id in roster_ids]
    # A portal user who also holds a staff role still sees only the contracts that are theirs here.
    own = [
        row
        for row in repository.list_contracts(session, actor)
        if _is_party(actor, row[0]) or row[0].creator_id in roster_ids
    ]
    contracts = _lines(session, actor, own, [])
    return PortalView(creator=creator, agency=agency, roster=roster, contracts=contracts)

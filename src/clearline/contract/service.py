"""Contract templates (legal only), contracts with structured terms, and their acceptance."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.catalog import repository as catalog_repository
from clearline.contract import repository
from clearline.contract.schemas import ContractCreate, TemplateCreate
from clearline.creator import repository as creator_repository
from clearline.kit.clock import utcnow
from clearline.kit.errors import ConflictError, ForbiddenError, ValidationFailedError
from clearline.models import Contract, ContractAcceptance, ContractTemplate, ContractTemplateVersion


def create_template(
    session: Session, actor: Actor, *, data: TemplateCreate, reason: str = ""
) -> ContractTemplate:
    """Create a template with version 1. Only legal edits templates."""
    if data.brand_id is not None:
        brand_repository.get(session, actor, data.brand_id)
    actor.require("legal", brand_id=data.brand_id)
    template = ContractTemplate(brand_id=data.brand_id, name=data.name)
    session.add(template)
    session.flush()
    version = ContractTemplateVersion(
        template_id=template.id, version=1, body=data.body, created_by_id=actor.user_id
    )
    session.add(version)
    session.flush()
    audit.record(
        session,
        actor,
        "contract_template.created",
        template,
        after={"name": data.name, "version": 1},
        reason=reason,
    )
    return template


def add_template_version(
    session: Session, actor: Actor, *, template_id: int, body: str, reason: str = ""
) -> ContractTemplateVersion:
    """A template is never edited in place: each change is a new version; signed contracts keep theirs."""
    template = repository.get_template(session, actor, template_id)
    actor.require("legal", brand_id=template.brand_id)
    existing = repository.versions(session, template.id)
    number = (existing[-1].version if existing else 0) + 1
    version = ContractTemplateVersion(
        template_id=template.id, version=number, body=body, created_by_id=actor.user_id
    )
    session.add(version)
    session.flush()
    audit.record(
        session,
        actor,
        "contract_template.versioned",
        ("contract_templates", template.id, template.brand_id),
        before={"version": number - 1},
        after={"version": number},
        reason=reason,
    )
    return version


def create_contract(
    session: Session, actor: Actor, *, brand_id: int, data: ContractCreate, reason: str = ""
) -> Contract:
    """Offer a contract to a creator or agency on one template version (legal); terms are validated."""
    brand = brand_repository.get(session, actor, brand_id)
    actor.require("legal", brand_id=brand.id)
    version = repository.get_version(session, data.template_version_id)
    if version is None:
        raise ValidationFailedError(
            "unknown template version", details=[{"loc": ["template_version_id"], "msg": "no such version"}]
        )
    template = session.get(ContractTemplate, version.template_id)
    if template is not None and template.brand_id not in (None, brand.id):
        raise ValidationFailedError(
            "template belongs to another brand",
            details=[{"loc": ["template_version_id"], "msg": "other brand"}],
        )
    if data.creator_id is not None:
        creator_repository.get_creator(session, actor, data.creator_id)
    else:
        creator_repository.get_agency(session, actor, data.agency_id)  # type: ignore[arg-type]
    tiers = {sku.tier for sku in catalog_repository.skus_by_code(session, brand_id=brand.id).values()}
    unknown = [
        {"loc": ["terms", plan_name, "rates", table_name, tier], "msg": f"unknown tier {tier!r}"}
        for plan_name, plan in (("cpa", data.terms.cpa), ("revshare", data.terms.revshare))
        if plan is not None and tiers
        for table_name, table in (("new", plan.rates.new), ("returning", plan.rates.returning or {}))
        for tier in sorted(table)
        if tier not in tiers
    ]
    if unknown:
        raise ValidationFailedError(
            f"terms name tiers the catalog does not have: {', '.join('.'.join(e['loc']) for e in unknown)}",
            details=unknown,
        )
    contract = Contract(
        brand_id=brand.id,
        creator_id=data.creator_id,
        agency_id=data.agency_id,
        template_version_id=version.id,
        model=data.terms.model,
        currency=data.terms.currency,
        terms=data.terms.to_json(),
        status="offered",
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        created_by_id=actor.user_id,
    )
    session.add(contract)
    session.flush()
    audit.record(
        session,
        actor,
        "contract.created",
        contract,
        after={
            "party": {"creator_id": data.creator_id, "agency_id": data.agency_id},
            "template_version": version.version,
            "terms": contract.terms,
        },
        reason=reason,
    )
    return contract


def terms_digest(terms: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(terms, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def accept_contract(session: Session, actor: Actor, *, contract_id: int) -> ContractAcceptance:
    """The party (the creator, or the agency) accepts; who, when and which version are recorded."""
    contract = repository.get_contract(session, actor, contract_id)
    is_party = (contract.creator_id is not None and contract.creator_id == actor.creator_id) or (
        contract.agency_id is not None and contract.agency_id == actor.agency_id
    )
    if not is_party:
        raise ForbiddenError("only the contract's creator or agency can accept it")
    if contract.status != "offered":
        raise ConflictError(f"contract is {contract.status}, not offered")
    now = utcnow()
    if contract.ends_at is not None and contract.ends_at <= now:
        raise ConflictError("contract has ended")
    acceptance = ContractAcceptance(
        contract_id=contract.id,
        template_version_id=contract.template_version_id,
        accepted_by_id=actor.user_id,
        accepted_at=now,
        terms_sha256=terms_digest(contract.terms),
    )
    session.add(acceptance)
    contract.status = "accepted"
    session.flush()
    audit.record(
        session,
        actor,
        "contract.accepted",
        contract,
        before={"status": "offered"},
        after={
            "status": "accepted",
            "template_version_id": contract.template_version_id,
            "terms_sha256": acceptance.terms_sha256,
        },
    )
    return acceptance


def terminate_contract(session: Session, actor: Actor, *, contract_id: int, reason: str) -> Contract:
    contract = repository.get_contract(session, actor, contract_id)
    actor.require("legal", brand_id=contract.brand_id)
    if not reason:
        raise ValidationFailedError("a reason is required", details=[{"loc": ["reason"], "msg": "required"}])
    if contract.status == "terminated":
        raise ConflictError("contract is already terminated")
    before = contract.status
    contract.status = "terminated"
    contract.ends_at = utcnow()
    audit.record(
        session,
        actor,
        "contract.terminated",
        contract,
        before={"status": before},
        after={"status": "terminated"},
        reason=reason,
    )
    return contract

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from clearline.auth.deps import CurrentActor, DbSession
from clearline.contract import repository, service
from clearline.contract.schemas import (
    ContractCreate,
    ContractRead,
    TemplateCreate,
    TemplateRead,
    TemplateVersionCreate,
    TemplateVersionRead,
)

router = APIRouter(tags=["contracts"])


class Reason(BaseModel):
    reason: str = Field(min_length=1)


def _contract_read(session: DbSession, contract: object) -> ContractRead:
    read = ContractRead.model_validate(contract)
    version = repository.get_version(session, read.template_version_id)
    accepted = repository.acceptance(session, read.id)
    return read.model_copy(
        update={
            "template_version": version.version if version else None,
            "accepted_at": accepted.accepted_at if accepted else None,
            "accepted_by_id": accepted.accepted_by_id if accepted else None,
        }
    )


@router.get("/contract-templates", response_model=list[TemplateRead])
def list_templates(session: DbSession, actor: CurrentActor) -> object:
    return [
        TemplateRead.model_validate(t).model_copy(
            update={
                "versions": [
                    TemplateVersionRead.model_validate(v) for v in repository.versions(session, t.id)
                ]
            }
        )
        for t in repository.list_templates(session, actor)
    ]


@router.post("/contract-templates", response_model=TemplateRead, status_code=201)
def create_template(body: TemplateCreate, session: DbSession, actor: CurrentActor) -> object:
    """Create a contract template at version 1 (legal only)."""
    template = service.create_template(session, actor, data=body)
    return TemplateRead.model_validate(template).model_copy(
        update={
            "versions": [
                TemplateVersionRead.model_validate(v) for v in repository.versions(session, template.id)
            ]
        }
    )


@router.post(
    "/contract-templates/{template_id}/versions", response_model=TemplateVersionRead, status_code=201
)
def add_version(
    template_id: int, body: TemplateVersionCreate, session: DbSession, actor: CurrentActor
) -> object:
    """Publish a new template version (legal only); existing contracts keep the version they were signed on."""
    return service.add_template_version(
        session, actor, template_id=template_id, body=body.body, reason=body.reason
    )


@router.get("/contracts", response_model=list[ContractRead])
def list_contracts(session: DbSession, actor: CurrentActor, brand_id: int | None = None) -> object:
    return [
        _contract_read(session, c) for c, _, _ in repository.list_contracts(session, actor, brand_id=brand_id)
    ]


@router.get("/contracts/{contract_id}", response_model=ContractRead)
def get_contract(contract_id: int, session: DbSession, actor: CurrentActor) -> object:
    return _contract_read(session, repository.get_contract(session, actor, contract_id))


@router.post("/brands/{brand_id}/contracts", response_model=ContractRead, status_code=201)
def create_contract(brand_id: int, body: ContractCreate, session: DbSession, actor: CurrentActor) -> object:
    """Offer a contract with structured terms on a template version (legal)."""
    return _contract_read(session, service.create_contract(session, actor, brand_id=brand_id, data=body))


@router.post("/contracts/{contract_id}/accept", response_model=ContractRead)
def accept_contract(contract_id: int, session: DbSession, actor: CurrentActor) -> object:
    """Accept as the contract's creator or agency; records who, when and which template version."""
    service.accept_contract(session, actor, contract_id=contract_id)
    return _contract_read(session, repository.get_contract(session, actor, contract_id))


@router.post("/contracts/{contract_id}/terminate", response_model=ContractRead)
def terminate_contract(contract_id: int, body: Reason, session: DbSession, actor: CurrentActor) -> object:
    return _contract_read(
        session, service.terminate_contract(session, actor, contract_id=contract_id, reason=body.reason)
    )

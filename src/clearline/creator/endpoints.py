from __future__ import annotations

from fastapi import APIRouter, UploadFile

from clearline.auth.deps import CurrentActor, DbSession
from clearline.creator import repository, service
from clearline.creator.schemas import AgencyCreate, AgencyRead, CreatorCreate, CreatorRead, ImportReport

router = APIRouter(tags=["creators"])


@router.get("/creators", response_model=list[CreatorRead])
def list_creators(session: DbSession, actor: CurrentActor, brand_id: int | None = None) -> object:
    """Creators you may see: your brands' creators, yourself as a creator, your roster as an agency."""
    return repository.list_creators(session, actor, brand_id=brand_id)


@router.get("/creators/{creator_id}", response_model=CreatorRead)
def get_creator(creator_id: int, session: DbSession, actor: CurrentActor) -> object:
    return repository.get_creator(session, actor, creator_id)


@router.post("/brands/{brand_id}/creators", response_model=CreatorRead, status_code=201)
def create_creator(brand_id: int, body: CreatorCreate, session: DbSession, actor: CurrentActor) -> object:
    return service.create_creator(session, actor, brand_id=brand_id, data=body)


@router.post("/brands/{brand_id}/creators/import", response_model=ImportReport)
async def import_creators(brand_id: int, file: UploadFile, session: DbSession, actor: CurrentActor) -> object:
    """Import creators from CSV (handle,name,email,channels,country,vendor_id,payout_reference); all or none."""
    return service.import_creators(session, actor, brand_id=brand_id, data=await file.read())


@router.get("/agencies", response_model=list[AgencyRead])
def list_agencies(session: DbSession, actor: CurrentActor) -> object:
    return [
        AgencyRead.model_validate(a).model_copy(update={"creator_ids": repository.roster(session, a.id)})
        for a in repository.list_agencies(session, actor)
    ]


@router.get("/agencies/{agency_id}", response_model=AgencyRead)
def get_agency(agency_id: int, session: DbSession, actor: CurrentActor) -> object:
    agency = repository.get_agency(session, actor, agency_id)
    return AgencyRead.model_validate(agency).model_copy(
        update={"creator_ids": repository.roster(session, agency.id)}
    )


@router.post("/brands/{brand_id}/agencies", response_model=AgencyRead, status_code=201)
def create_agency(brand_id: int, body: AgencyCreate, session: DbSession, actor: CurrentActor) -> object:
    return service.create_agency(session, actor, brand_id=brand_id, data=body)


@router.post("/agencies/{agency_id}/roster/import", response_model=ImportReport)
async def import_roster(agency_id: int, file: UploadFile, session: DbSession, actor: CurrentActor) -> object:
    """Add creators to an agency's roster from a CSV with a `handle` column; unknown handles fail the file."""
    return service.import_roster(session, actor, agency_id=agency_id, data=await file.read())

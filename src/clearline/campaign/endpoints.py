from __future__ import annotations

from fastapi import APIRouter

from clearline.auth.deps import CurrentActor, DbSession
from clearline.brand import repository as brand_repository
from clearline.campaign import repository, service
from clearline.campaign.schemas import CampaignCreate, CampaignRead

router = APIRouter(tags=["campaigns"])


@router.get("/brands/{brand_id}/campaigns", response_model=list[CampaignRead])
def list_campaigns(brand_id: int, session: DbSession, actor: CurrentActor) -> object:
    brand = brand_repository.get(session, actor, brand_id)
    return repository.list_campaigns(session, actor, brand_id=brand.id)


@router.get("/campaigns/{campaign_id}", response_model=CampaignRead)
def get_campaign(campaign_id: int, session: DbSession, actor: CurrentActor) -> object:
    return repository.get(session, actor, campaign_id)


@router.post("/brands/{brand_id}/campaigns", response_model=CampaignRead, status_code=201)
def create_campaign(brand_id: int, body: CampaignCreate, session: DbSession, actor: CurrentActor) -> object:
    return service.create_campaign(session, actor, brand_id=brand_id, data=body)

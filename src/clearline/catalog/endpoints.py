from __future__ import annotations

from fastapi import APIRouter, UploadFile

from clearline.auth.deps import CurrentActor, DbSession
from clearline.brand import repository as brand_repository
from clearline.catalog import repository, service
from clearline.catalog.schemas import LanguageApproval, OfferCreate, OfferRead, SkuImportReport, SkuRead

router = APIRouter(tags=["catalog"])


@router.get("/brands/{brand_id}/skus", response_model=list[SkuRead])
def list_skus(brand_id: int, session: DbSession, actor: CurrentActor) -> object:
    brand = brand_repository.get(session, actor, brand_id)
    actor.require(
        "brand_ops", "brand_steward", "marketing", "legal", "social_ops", "finance", brand_id=brand.id
    )
    return repository.list_skus(session, actor, brand_id=brand.id)


@router.post("/brands/{brand_id}/skus/import", response_model=SkuImportReport)
async def import_skus(brand_id: int, file: UploadFile, session: DbSession, actor: CurrentActor) -> object:
    """Import SKUs from CSV (sku,name,category,tier,price,currency,unit_cost,margin_pct,return_rate_pct).

    A file with any bad row imports nothing; the 422 lists every bad row by line and column.
    """
    return service.import_skus(session, actor, brand_id=brand_id, data=await file.read())


@router.get("/brands/{brand_id}/offers", response_model=list[OfferRead])
def list_offers(brand_id: int, session: DbSession, actor: CurrentActor) -> object:
    brand = brand_repository.get(session, actor, brand_id)
    return repository.list_offers(session, actor, brand_id=brand.id)


@router.post("/brands/{brand_id}/offers", response_model=OfferRead, status_code=201)
def create_offer(brand_id: int, body: OfferCreate, session: DbSession, actor: CurrentActor) -> object:
    return service.create_offer(session, actor, brand_id=brand_id, data=body)


@router.post("/offers/{offer_id}/language-approval", response_model=OfferRead)
def approve_language(
    offer_id: int, body: LanguageApproval, session: DbSession, actor: CurrentActor
) -> object:
    """Legal approves the offer's language (with any redline); approver and time are kept."""
    return service.approve_offer_language(
        session, actor, offer_id=offer_id, language=body.language, reason=body.reason
    )

from __future__ import annotations

from fastapi import APIRouter

from clearline.auth.deps import CurrentActor, DbSession
from clearline.brand import repository, service
from clearline.brand.schemas import BrandCreate, BrandRead, BrandUpdate

router = APIRouter(tags=["brands"])


@router.get("/brands", response_model=list[BrandRead])
def list_brands(session: DbSession, actor: CurrentActor) -> object:
    return repository.list_brands(session, actor)


@router.post("/brands", response_model=BrandRead, status_code=201)
def create_brand(body: BrandCreate, session: DbSession, actor: CurrentActor) -> object:
    """Create a brand (admin)."""
    return service.create_brand(session, actor, data=body)


@router.get("/brands/{brand_id}", response_model=BrandRead)
def get_brand(brand_id: int, session: DbSession, actor: CurrentActor) -> object:
    return repository.get(session, actor, brand_id)


@router.patch("/brands/{brand_id}", response_model=BrandRead)
def update_brand(brand_id: int, body: BrandUpdate, session: DbSession, actor: CurrentActor) -> object:
    """Change a brand's name, allowed landing domains, GL account or cost centre (admin)."""
    return service.update_brand(session, actor, brand_id=brand_id, data=body)

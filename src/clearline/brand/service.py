from __future__ import annotations

from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.brand import repository
from clearline.brand.schemas import BrandCreate, BrandUpdate
from clearline.kit.errors import ConflictError
from clearline.models import Brand


def snapshot(brand: Brand) -> dict[str, object]:
    return {
        "slug": brand.slug,
        "name": brand.name,
        "default_currency": brand.default_currency,
        "allowed_domains": list(brand.allowed_domains),
        "gl_account": brand.gl_account,
        "cost_center": brand.cost_center,
    }


def create_brand(session: Session, actor: Actor, *, data: BrandCreate, reason: str = "") -> Brand:
    """Create a brand (admin on all brands)."""
    actor.require("admin")
    if repository.by_slug(session, data.slug) is not None:
        raise ConflictError(f"brand slug {data.slug!r} is taken")
    brand = Brand(**data.model_dump())
    session.add(brand)
    session.flush()
    audit.record(session, actor, "brand.created", brand, after=snapshot(brand), reason=reason)
    return brand


def update_brand(session: Session, actor: Actor, *, brand_id: int, data: BrandUpdate) -> Brand:
    """Change a brand's name, landing-domain allow-list or GL coding (admin)."""
    brand = repository.get(session, actor, brand_id)
    actor.require("admin", brand_id=brand.id)
    before = snapshot(brand)
    for key, value in data.model_dump(exclude_unset=True, exclude={"reason"}).items():
        if value is not None:
            setattr(brand, key, value)
    session.flush()
    audit.record(
        session, actor, "brand.updated", brand, before=before, after=snapshot(brand), reason=data.reason
    )
    return brand

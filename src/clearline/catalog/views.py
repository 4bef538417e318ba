"""Read models for the catalog pages, assembled from the scoped repositories (no queries here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from clearline.auth import repository as auth_repository
from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.catalog import repository
from clearline.catalog.service import CATALOG_WRITERS
from clearline.models import Brand, Offer, Sku

CATALOG_READERS = ("brand_ops", "brand_steward", "marketing", "legal", "social_ops", "finance")


@dataclass
class OfferLine:
    offer: Offer
    approved_by: str | None

    @property
    def is_approved(self) -> bool:
        return self.offer.language_approved_at is not None


@dataclass
class CatalogView:
    brands: list[Brand]
    brand: Brand | None = None
    skus: list[Sku] = field(default_factory=list)
    offers: list[OfferLine] = field(default_factory=list)
    can_import: bool = False


def catalog(session: Session, actor: Actor, *, brand_id: int | None) -> CatalogView:
    """One brand's SKUs and offers (the first readable brand when none is named)."""
    brands = [
        b for b in brand_repository.list_brands(session, actor) if actor.has_any((*CATALOG_READERS, "admin"), b.id)
    ]
    if brand_id is None:
        if not brands:
            return CatalogView(brands=brands)
        brand = brands[0]
    else:
        brand = brand_repository.get(session, actor, brand_id)
    actor.require(*CATALOG_READERS, brand_id=brand.id)
    offers = repository.list_offers(session, actor, brand_id=brand.id)
    names = auth_repository.user_names(session, (o.language_approved_by_id for o in offers))
    return CatalogView(
        brands=brands,
        brand=brand,
        skus=repository.list_skus(session, actor, brand_id=brand.id),
        offers=[
            OfferLine(o, names.get(o.language_approved_by_id) if o.language_approved_by_id else None) for o in offers
        ],
        can_import=actor.has_any((*CATALOG_WRITERS, "admin"), brand.id),
    )

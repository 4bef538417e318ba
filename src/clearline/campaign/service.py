from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.campaign import repository
from clearline.campaign.schemas import CampaignCreate
from clearline.catalog import repository as catalog_repository
from clearline.kit.errors import ConflictError, ValidationFailedError
from clearline.models import Brand, Campaign


def host_allowed(brand: Brand, url: str) -> bool:
    """A URL may only point at one of the brand's allow-listed domains (or their subdomains)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        return False
    return any(host == d or host.endswith("." + d) for d in brand.allowed_domains)


def create_campaign(
    session: Session, actor: Actor, *, brand_id: int, data: CampaignCreate, reason: str = ""
) -> Campaign:
    """Create a campaign on a brand (marketing); its fallback URL must be on the brand's domains."""
    brand = brand_repository.get(session, actor, brand_id)
    actor.require("marketing", brand_id=brand.id)
    if data.offer_id is not None:
        offer = catalog_repository.get_offer(session, actor, data.offer_id)
        if offer.brand_id != brand.id:
            raise ValidationFailedError(
                "offer belongs to another brand",
                details=[{"loc": ["offer_id"], "msg": "not this brand's offer"}],
            )
    if not host_allowed(brand, str(data.fallback_url)):
        raise ValidationFailedError(
            "fallback_url is not on the brand's allowed domains",
            details=[{"loc": ["fallback_url"], "msg": "domain not allow-listed"}],
        )
    if any(c.slug == data.slug for c in repository.list_campaigns(session, actor, brand_id=brand.id)):
        raise ConflictError(f"campaign slug {data.slug!r} exists on this brand")
    campaign = Campaign(brand_id=brand.id, **{**data.model_dump(), "fallback_url": str(data.fallback_url)})
    session.add(campaign)
    session.flush()
    audit.record(
        session, actor, "campaign.created", campaign, after=data.model_dump(mode="json"), reason=reason
    )
    return campaign

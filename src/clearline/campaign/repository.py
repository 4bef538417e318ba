from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.auth.scope import brand_filter
from clearline.kit.errors import NotFoundError
from clearline.models import Campaign


def list_campaigns(session: Session, actor: Actor, *, brand_id: int) -> list[Campaign]:
    stmt = (
        select(Campaign)
        .where(Campaign.brand_id == brand_id, brand_filter(actor, Campaign.brand_id))
        .order_by(Campaign.starts_at)
    )
    return list(session.scalars(stmt))


def get(session: Session, actor: Actor, campaign_id: int) -> Campaign:
    found = session.scalar(
        select(Campaign).where(Campaign.id == campaign_id, brand_filter(actor, Campaign.brand_id))
    )
    if found is None:
        raise NotFoundError(f"no campaign {campaign_id}")
    return found

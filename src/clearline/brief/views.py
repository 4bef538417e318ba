"""Read models for the brief and approval pages, assembled from the brief services (no queries here)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.brief import approval, creative, service
from clearline.campaign import repository as campaign_repository
from clearline.catalog import repository as catalog_repository
from clearline.creator import repository as creator_repository
from clearline.kit.clock import utcnow
from clearline.models import ApprovalStep, Brand, Brief, Campaign, Creative, CreativeVersion, Offer


@dataclass
class BriefsView:
    brands: list[Brand]
    brand: Brand | None = None
    briefs: list[Brief] = field(default_factory=list)
    campaigns: list[Campaign] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    collisions: list[dict[str, Any]] = field(default_factory=list)
    can_write: bool = False


@dataclass
class BriefView:
    brief: Brief
    steps: list[ApprovalStep]
    creatives: list[tuple[Creative, list[dict[str, str]]]]
    can_write: bool
    can_schedule: bool
    creative_steps: dict[int, list[ApprovalStep]] = field(default_factory=dict)
    versions: dict[int, list[CreativeVersion]] = field(default_factory=dict)
    handles: dict[int, str] = field(default_factory=dict)
    now: dt.datetime | None = None

    def is_late(self, step: ApprovalStep) -> bool:
        """Decided after its due time, or still open past it."""
        return (step.decided_at or self.now or step.due_at) > step.due_at


@dataclass
class QueueItem:
    step: ApprovalStep
    title: str
    overdue: bool


def briefs(session: Session, actor: Actor, *, brand_id: int | None) -> BriefsView:
    brands = [b for b in brand_repository.list_brands(session, actor)
              if actor.has_any(("marketing", "legal", "social_ops", "brand_steward", "admin"), b.id)]
    if brand_id is None:
        if not brands:
            return BriefsView(brands)
        brand_id = brands[0].id
    brand = brand_repository.get(session, actor, brand_id)
    return BriefsView(
        brands=brands, brand=brand, briefs=service.list_briefs(session, actor, brand_id=brand.id),
        campaigns=campaign_repository.list_campaigns(session, actor, brand_id=brand.id),
        offers=catalog_repository.list_offers(session, actor, brand_id=brand.id),
        duplicates=service.duplicates(session, actor), collisions=service.collisions(session, actor),
        can_write=actor.has_any(("marketing", "admin"), brand.id))


def brief_detail(session: Session, actor: Actor, *, brief_id: int) -> BriefView:
    brief = service.get_brief(session, actor, brief_id)
    now = utcnow()
    made = creative.list_creatives(session, actor, brief_id=brief.id)
    ids = [c.id for c in made]
    creative_steps: dict[int, list[ApprovalStep]] = {}
    for step in approval.steps_for(session, actor, subject_type="creative", subject_ids=ids):
        creative_steps.setdefault(step.subject_id, []).append(step)
    return BriefView(
        brief=brief,
        steps=approval.steps_for(session, actor, subject_type="brief", subject_ids=[brief.id]),
        creatives=[(c, creative.missing_for_schedule(session, c, at=now)) for c in made],
        can_write=actor.has_any(("marketing", "admin"), brief.brand_id),
        can_schedule=actor.has_any(("social_ops", "admin"), brief.brand_id),
        creative_steps=creative_steps,
        versions=creative.versions_of(session, actor, ids),
        handles={c.id: f"@{c.handle}"
                 for c in creator_repository.list_creators(session, actor, brand_id=brief.brand_id)},
        now=now)


def approvals(session: Session, actor: Actor) -> list[QueueItem]:
    now = utcnow()
    items = []
    for step in approval.queue(session, actor):
        if step.subject_type == "brief":
            title = f"Brief: {service.get_brief(session, actor, step.subject_id).title}"
        else:
            made = creative.get_creative(session, actor, step.subject_id)
            title = f"Creative #{made.id} for {made.channel} (brief {made.brief_id})"
        items.append(QueueItem(step, title, step.due_at < now))
    return items

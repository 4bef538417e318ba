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
from clearline.link import service as link_service
from clearline.models import (
    ApprovalStep,
    Brand,
    Brief,
    Campaign,
    Creative,
    CreativeVersion,
    Link,
    Offer,
    ProofOfPosting,
)

OPS_ROLES = ("social_ops", "admin")
SCHEDULE_GATE = ("contract", "link", "approval")  # the items creative.missing_for_schedule may name


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
    proofs: dict[int, list[ProofOfPosting]] = field(default_factory=dict)
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
    creative: Creative | None = None
    version: CreativeVersion | None = None  # a creative's latest version: the one in review


@dataclass
class SignoffLine:
    link: Link
    creator: str
    is_overdue: bool


@dataclass
class ScheduleLine:
    creative: Creative
    creator: str
    brief_title: str
    missing: list[dict[str, str]]

    @property
    def gate(self) -> dict[str, bool]:
        """Each item of the scheduling rule, True when it is there."""
        absent = {m["item"] for m in self.missing}
        return {item: item not in absent for item in SCHEDULE_GATE}

    @property
    def is_ready(self) -> bool:
        return not self.missing


@dataclass
class OpsQueue:
    """Social ops' queue on one brand: links waiting for sign-off (due first) and approved creatives to schedule."""

    brand: Brand
    signoffs: list[SignoffLine] = field(default_factory=list)
    schedule: list[ScheduleLine] = field(default_factory=list)

    @property
    def overdue(self) -> int:
        return sum(1 for line in self.signoffs if line.is_overdue)

    @property
    def ready(self) -> int:
        return sum(1 for line in self.schedule if line.is_ready)


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
        proofs=creative.proofs_of(session, actor, ids),
        handles={c.id: f"@{c.handle}"
                 for c in creator_repository.list_creators(session, actor, brand_id=brief.brand_id)},
        now=now)


def approvals(session: Session, actor: Actor) -> list[QueueItem]:
    now = utcnow()
    items = []
    steps = approval.queue(session, actor)
    versions = creative.versions_of(session, actor, [s.subject_id for s in steps if s.subject_type == "creative"])
    for step in steps:
        if step.subject_type == "brief":
            title = f"Brief: {service.get_brief(session, actor, step.subject_id).title}"
            items.append(QueueItem(step, title, step.due_at < now))
        else:
            made = creative.get_creative(session, actor, step.subject_id)
            title = f"Creative #{made.id} for {made.channel} (brief {made.brief_id})"
            latest = versions.get(made.id, [None])[0]
            items.append(QueueItem(step, title, step.due_at < now, creative=made, version=latest))
    return items


def _handle(handles: dict[int, str], creator_id: int) -> str:
    return handles.get(creator_id, f"creator #{creator_id}")


def ops_queues(session: Session, actor: Actor, *, now: dt.datetime | None = None) -> list[OpsQueue]:
    """One queue per brand the actor runs social ops for (or administers); none for anyone else."""
    now = now or utcnow()
    queues = []
    for brand in brand_repository.list_brands(session, actor):
        if not actor.has_any(OPS_ROLES, brand.id):
            continue
        handles = {c.id: f"@{c.handle}" for c in creator_repository.list_creators(session, actor, brand_id=brand.id)}
        titles = {b.id: b.title for b in service.list_briefs(session, actor, brand_id=brand.id)}

        pending = link_service.signoff_queue(session, actor, brand_id=brand.id, now=now)["pending"]
        queues.append(
            OpsQueue(
                brand=brand,
                signoffs=[
                    SignoffLine(x, _handle(handles, x.creator_id),
                                is_overdue=x.signoff_due_at is not None and x.signoff_due_at < now)
                    for x in pending
                ],
                schedule=[
                    ScheduleLine(c, _handle(handles, c.creator_id), titles.get(c.brief_id, f"brief {c.brief_id}"),
                                 missing)
                    for c, missing in creative.schedule_queue(session, actor, brand_id=brand.id, at=now)
                ],
            )
        )
    return queues

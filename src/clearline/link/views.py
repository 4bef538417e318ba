"""Read models for social ops' links page, assembled from the scoped repositories and the link service
(no queries here): every link with its readiness and clicks, the sign-off queue and the recent alerts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.creator import repository as creator_repository
from clearline.kit.clock import utcnow
from clearline.link import repository, service
from clearline.models import Brand, Link, Notification

ALERTS_SHOWN = 20


@dataclass
class LinkLine:
    link: Link
    creator: str
    readiness: dict[str, bool]
    clicks: int
    visitors: int

    @property
    def is_ready(self) -> bool:
        return all(self.readiness.values())


@dataclass
class PendingLine:
    link: Link
    creator: str
    is_overdue: bool


@dataclass
class LinksView:
    brands: list[Brand]
    brand: Brand | None = None
    links: list[LinkLine] = field(default_factory=list)
    pending: list[PendingLine] = field(default_factory=list)
    late_signoffs: int = 0  # signed off after their due time
    alerts: list[Notification] = field(default_factory=list)
    can_sign_off: bool = False

    @property
    def overdue(self) -> int:
        return sum(1 for line in self.pending if line.is_overdue)

    @property
    def live(self) -> int:
        return sum(1 for line in self.links if line.link.status == "live")

    def find(self, link_id: int | None) -> Link | None:
        return next((line.link for line in self.links if line.link.id == link_id), None)


def links_overview(
    session: Session, actor: Actor, *, brand_id: int | None, now: dt.datetime | None = None
) -> LinksView:
    """One brand's links (the first the user runs links for when none is named): readiness, clicks, the
    pending sign-offs due first, and the brand's recent alerts for staff (messages to creators left out)."""
    now = now or utcnow()
    brands = [
        b for b in brand_repository.list_brands(session, actor) if actor.has_any((*service.LINK_OPS, "admin"), b.id)
    ]
    if brand_id is None:
        if not brands:
            return LinksView(brands=brands)
        brand = brands[0]
    else:
        brand = brand_repository.get(session, actor, brand_id)
    actor.require(*service.LINK_OPS, brand_id=brand.id)
    links = repository.list_links(session, actor, brand_id=brand.id)
    handles = {c.id: c.handle for c in creator_repository.list_creators(session, actor)}
    clicks = repository.click_counts(session, [x.id for x in links])
    queue = service.signoff_queue(session, actor, brand_id=brand.id, now=now)

    def handle(link: Link) -> str:
        return "@" + handles[link.creator_id] if link.creator_id in handles else f"creator #{link.creator_id}"

    return LinksView(
        brands=brands,
        brand=brand,
        links=[
            LinkLine(
                link=x,
                creator=handle(x),
                readiness=service.readiness(session, x, at=now),
                clicks=clicks.get(x.id, (0, 0))[0],
                visitors=clicks.get(x.id, (0, 0))[1],
            )
            for x in links
        ],
        pending=[
            PendingLine(x, handle(x), x.signoff_due_at is not None and x.signoff_due_at < now) for x in queue["pending"]
        ],
        late_signoffs=sum(1 for x in queue["breaches"] if x.status != "pending_signoff"),
        alerts=[
            n
            for n in repository.notifications(session, actor, brand_id=brand.id, limit=ALERTS_SHOWN * 2)
            if n.creator_id is None
        ][:ALERTS_SHOWN],
        can_sign_off=actor.has_any((*service.LINK_OPS, "admin"), brand.id),
    )

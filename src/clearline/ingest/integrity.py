"""What the database no longer enforces for the inbox by foreign key.

``inbox_events.brand_id`` has no foreign key (migration 7d3b9e4a2c15: its per-row check was a third of
PostgreSQL's time storing a bulk order file). Every writer takes the brand id from a brand it has looked up,
and brands are never deleted; `orphans` lists any exception, to be run after a manual repair.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.models import Brand, InboxEvent


def orphans(session: Session, *, limit: int = 20) -> list[str]:
    """One line per inbox event whose brand does not exist (at most ``limit``); empty when sound."""
    missing = (
        select(InboxEvent.id, InboxEvent.brand_id)
        .outerjoin(Brand, Brand.id == InboxEvent.brand_id)
        .where(Brand.id.is_(None))
        .order_by(InboxEvent.id)
        .limit(limit)
    )
    found = session.execute(missing)
    return [f"inbox event {event_id}: brand {brand_id} does not exist" for event_id, brand_id in found]

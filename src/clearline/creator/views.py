"""Read models for the creator pages, assembled from the scoped repositories (no queries here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.creator import repository
from clearline.creator.service import CREATOR_WRITERS
from clearline.models import Agency, Brand, Creator


@dataclass
class AgencyLine:
    agency: Agency
    roster: list[Creator]
    hidden: int = 0  # roster members this user may not see


@dataclass
class CreatorsView:
    creators: list[Creator]
    agencies: list[AgencyLine]
    brand_names: dict[int, str] = field(default_factory=dict)
    import_brands: list[Brand] = field(default_factory=list)


def creators(session: Session, actor: Actor) -> CreatorsView:
    """The creators and agencies this user may see, each agency with its roster, and where they may import."""
    visible = repository.list_creators(session, actor)
    by_id = {c.id: c for c in visible}
    agencies = []
    for agency in repository.list_agencies(session, actor):
        ids = repository.roster(session, agency.id)
        members = sorted((by_id[i] for i in ids if i in by_id), key=lambda c: c.handle)
        agencies.append(AgencyLine(agency, members, hidden=len(ids) - len(members)))
    brands = brand_repository.list_brands(session, actor)
    return CreatorsView(
        creators=visible,
        agencies=agencies,
        brand_names={b.id: b.name for b in brands},
        import_brands=[b for b in brands if actor.has_any((*CREATOR_WRITERS, "admin"), b.id)],
    )

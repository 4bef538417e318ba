"""Creators, agencies and rosters, including their CSV imports."""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.creator import repository
from clearline.creator.schemas import AgencyCreate, CreatorCreate, ImportReport
from clearline.kit import csvio
from clearline.kit.errors import ConflictError
from clearline.models import Agency, Creator, RosterEntry

CREATOR_WRITERS = ("social_ops", "marketing")
CREATOR_COLUMNS = ["handle", "name"]
CREATOR_OPTIONAL = ["email", "channels", "country", "vendor_id", "payout_reference"]


def _public(creator: Creator) -> dict[str, object]:
    return {
        "handle": creator.handle,
        "name": creator.name,
        "channels": list(creator.channels),
        "country": creator.country,
        "vendor_id": creator.vendor_id,
    }


def create_creator(
    session: Session, actor: Actor, *, brand_id: int, data: CreatorCreate, reason: str = ""
) -> Creator:
    brand = brand_repository.get(session, actor, brand_id)
    actor.require(*CREATOR_WRITERS, brand_id=brand.id)
    if repository.creators_by_handle(session, [data.handle]):
        raise ConflictError(f"creator handle {data.handle!r} is taken")
    creator = Creator(brand_id=brand.id, **data.model_dump())
    session.add(creator)
    session.flush()
    audit.record(session, actor, "creator.created", creator, after=_public(creator), reason=reason)
    return creator


def _parse_creator(row: dict[str, str]) -> CreatorCreate:
    try:
        return CreatorCreate(
            handle=row["handle"].lower(),
            name=row["name"],
            email=row.get("email", ""),
            channels=[c.strip().lower() for c in row.get("channels", "").split(";") if c.strip()],
            country=row.get("country", "").upper(),
            vendor_id=row.get("vendor_id", ""),
            payout_reference=row.get("payout_reference", ""),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise csvio.RowInvalid(str(first["loc"][0]), first["msg"]) from None


def import_creators(
    session: Session, actor: Actor, *, brand_id: int, data: bytes | str, reason: str = ""
) -> ImportReport:
    """Import creators from CSV (handle,name,email,channels,country,vendor_id,payout_reference); all or none."""
    brand = brand_repository.get(session, actor, brand_id)
    actor.require(*CREATOR_WRITERS, brand_id=brand.id)
    parsed = csvio.parse(data, required=CREATOR_COLUMNS, optional=CREATOR_OPTIONAL, convert=_parse_creator)
    seen: dict[str, int] = {}
    for line, row in parsed.rows:
        if row.handle in seen:
            parsed.errors.append(
                csvio.RowError(line, "handle", f"{row.handle} repeats line {seen[row.handle]}")
            )
        seen[row.handle] = line
    taken = repository.creators_by_handle(session, list(seen))
    for handle in taken:
        parsed.errors.append(csvio.RowError(seen[handle], "handle", f"{handle} already exists"))
    parsed.errors.sort(key=lambda e: e.line)
    csvio.raise_if_errors(parsed, "creator import")
    for _, row in parsed.rows:
        session.add(Creator(brand_id=brand.id, **row.model_dump()))
    session.flush()
    audit.record(
        session,
        actor,
        "creator.imported",
        ("creators", f"brand:{brand.id}", brand.id),
        after={"handles": sorted(seen)},
        reason=reason,
    )
    return ImportReport(created=len(parsed.rows))


def create_agency(
    session: Session, actor: Actor, *, brand_id: int, data: AgencyCreate, reason: str = ""
) -> Agency:
    brand = brand_repository.get(session, actor, brand_id)
    actor.require(*CREATOR_WRITERS, brand_id=brand.id)
    agency = Agency(brand_id=brand.id, **data.model_dump())
    session.add(agency)
    session.flush()
    audit.record(session, actor, "agency.created", agency, after={"name": agency.name}, reason=reason)
    return agency


def import_roster(
    session: Session, actor: Actor, *, agency_id: int, data: bytes | str, reason: str = ""
) -> ImportReport:
    """Add creators (by handle) to an agency's roster from CSV; unknown handles fail the whole file."""
    agency = repository.get_agency(session, actor, agency_id)
    if actor.agency_id != agency.id:
        actor.require(*CREATOR_WRITERS, brand_id=agency.brand_id)

    def handle_of(row: dict[str, str]) -> str:
        if not row.get("handle"):
            raise csvio.RowInvalid("handle", "required")
        return row["handle"].lower()

    parsed = csvio.parse(data, required=["handle"], convert=handle_of)
    known = repository.rosterable_by_handle(session, agency, [h for _, h in parsed.rows])
    for line, handle in parsed.rows:
        if handle not in known:
            parsed.errors.append(csvio.RowError(line, "handle", f"no creator {handle!r}"))
    parsed.errors.sort(key=lambda e: e.line)
    csvio.raise_if_errors(parsed, "roster import")
    current = set(repository.roster(session, agency.id))
    added = 0
    for _, handle in parsed.rows:
        creator_id = known[handle].id
        if creator_id not in current:
            session.add(RosterEntry(agency_id=agency.id, creator_id=creator_id))
            current.add(creator_id)
            added += 1
    session.flush()
    audit.record(
        session,
        actor,
        "agency.roster_imported",
        agency,
        after={"added": added, "roster": sorted(current)},
        reason=reason,
    )
    return ImportReport(created=added)

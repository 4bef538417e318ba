"""Coupon codes: one readable code per creator per campaign, single-use batches, imports, validity windows."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.campaign import repository as campaign_repository
from clearline.creator import repository as creator_repository
from clearline.kit import csvio
from clearline.kit.clock import parse_datetime
from clearline.kit.errors import ConflictError, ValidationFailedError
from clearline.kit.signing import CROCKFORD, random_code
from clearline.link import repository
from clearline.models import Campaign, CouponCode

COUPON_OPS = ("social_ops", "marketing")
CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,63}$")
BATCH_MAX = 10_000


def _readable_base(handle: str, campaign: Campaign) -> str:
    """ANNAGLOW + a short campaign marker: what a creator can say out loud in a video."""
    person = re.sub(r"[^A-Z0-9]", "", handle.upper())[:10] or "CREATOR"
    marker = re.sub(r"[^A-Z0-9]", "", campaign.slug.upper())[:4]
    return f"{person}{marker}"


def issue_creator_code(
    session: Session,
    actor: Actor,
    *,
    campaign_id: int,
    creator_id: int,
    code: str | None = None,
    valid_until: dt.datetime | None = None,
) -> CouponCode:
    """The creator's unique code for a campaign; collisions get a numeric suffix, never a duplicate."""
    campaign = campaign_repository.get(session, actor, campaign_id)
    actor.require(*COUPON_OPS, brand_id=campaign.brand_id)
    creator = creator_repository.get_creator(session, actor, creator_id)
    existing = [
        c
        for c in repository.coupons(session, actor, campaign_id=campaign.id, creator_id=creator.id)
        if not c.is_single_use
    ]
    if existing:
        raise ConflictError(f"{creator.handle} already has code {existing[0].code} for this campaign")
    if valid_until is not None:
        if valid_until.tzinfo is None:
            raise ValidationFailedError(
                "valid_until needs a UTC offset", details=[{"loc": ["valid_until"], "msg": "needs a UTC offset"}]
            )
        if valid_until <= campaign.starts_at:
            raise ValidationFailedError(
                "valid_until is before the campaign starts",
                details=[{"loc": ["valid_until"], "msg": "must be after the campaign starts"}],
            )
    if code is not None:
        code = code.strip().upper()
        if not CODE_PATTERN.match(code):
            raise ValidationFailedError("invalid code", details=[{"loc": ["code"], "msg": "A-Z, 0-9, _ or -"}])
        if repository.coupon_codes_taken(session, campaign.brand_id, [code]):
            raise ConflictError(f"code {code} is taken on this brand")
        chosen = code
    else:
        base = _readable_base(creator.handle, campaign)
        chosen, suffix = base, 1
        while repository.coupon_codes_taken(session, campaign.brand_id, [chosen]):
            suffix += 1
            chosen = f"{base}{suffix}"
    coupon = CouponCode(
        brand_id=campaign.brand_id,
        campaign_id=campaign.id,
        creator_id=creator.id,
        code=chosen,
        valid_from=campaign.starts_at,
        valid_until=valid_until or campaign.ends_at,
    )
    session.add(coupon)
    session.flush()
    audit.record(session, actor, "coupon.issued", coupon, after={"code": chosen, "creator": creator.handle})
    return coupon


def issue_batch(
    session: Session, actor: Actor, *, campaign_id: int, count: int, prefix: str = "", creator_id: int | None = None
) -> list[CouponCode]:
    """N single-use codes (PREFIX-XXXX-XXXX, Crockford alphabet), guaranteed unique on the brand."""
    campaign = campaign_repository.get(session, actor, campaign_id)
    actor.require(*COUPON_OPS, brand_id=campaign.brand_id)
    if not 1 <= count <= BATCH_MAX:
        raise ValidationFailedError("bad count", details=[{"loc": ["count"], "msg": f"1 to {BATCH_MAX}"}])
    if creator_id is not None:
        creator_repository.get_creator(session, actor, creator_id)
    prefix = (prefix or campaign.slug[:6]).upper()
    if not re.match(r"^[A-Z0-9]{1,12}$", re.sub(r"[^A-Z0-9]", "", prefix)):
        raise ValidationFailedError("bad prefix", details=[{"loc": ["prefix"], "msg": "letters and digits"}])
    prefix = re.sub(r"[^A-Z0-9]", "", prefix)
    batch = random_code(6, CROCKFORD)
    codes: set[str] = set()
    while len(codes) < count:
        wanted = count - len(codes)
        fresh = {f"{prefix}-{random_code(4, CROCKFORD)}-{random_code(4, CROCKFORD)}" for _ in range(wanted)}
        fresh -= repository.coupon_codes_taken(session, campaign.brand_id, sorted(fresh))
        codes |= fresh
    made = [
        CouponCode(
            brand_id=campaign.brand_id,
            campaign_id=campaign.id,
            creator_id=creator_id,
            code=code,
            batch=batch,
            is_single_use=True,
            valid_from=campaign.starts_at,
            valid_until=campaign.ends_at,
        )
        for code in sorted(codes)
    ]
    session.add_all(made)
    session.flush()
    audit.record(
        session,
        actor,
        "coupon.batch_issued",
        ("coupon_codes", f"batch:{batch}", campaign.brand_id),
        after={"batch": batch, "count": count, "campaign": campaign.slug, "creator_id": creator_id},
    )
    return made


IMPORT_COLUMNS = ["code", "creator_handle"]
IMPORT_OPTIONAL = ["valid_from", "valid_until", "single_use"]


def import_codes(session: Session, actor: Actor, *, campaign_id: int, data: bytes | str) -> int:
    """Import existing codes (code,creator_handle,valid_from,valid_until,single_use); all rows or none."""
    campaign = campaign_repository.get(session, actor, campaign_id)
    actor.require(*COUPON_OPS, brand_id=campaign.brand_id)

    def convert(row: dict[str, str]) -> dict[str, object]:
        code = row["code"].upper()
        if not CODE_PATTERN.match(code):
            raise csvio.RowInvalid("code", f"{row['code']!r}: use A-Z, 0-9, _ or -")
        parsed: dict[str, object] = {"code": code, "handle": row["creator_handle"].lower()}
        for column in ("valid_from", "valid_until"):
            try:
                parsed[column] = parse_datetime(row[column]) if row.get(column) else None
            except ValueError:
                raise csvio.RowInvalid(column, f"{row[column]!r} is not an ISO 8601 time") from None
        if parsed["valid_from"] and parsed["valid_until"] and parsed["valid_until"] <= parsed["valid_from"]:  # type: ignore[operator]
            raise csvio.RowInvalid("valid_until", "must be after valid_from")
        flag = row.get("single_use", "").lower()
        if flag not in ("", "true", "false", "1", "0", "yes", "no"):
            raise csvio.RowInvalid("single_use", "true or false")
        parsed["single_use"] = flag in ("true", "1", "yes")
        return parsed

    parsed = csvio.parse(data, required=IMPORT_COLUMNS, optional=IMPORT_OPTIONAL, convert=convert)
    handles = sorted({str(row["handle"]) for _, row in parsed.rows if row["handle"]})
    # Only creators the importer may see: a handle from another brand's roster is "no creator", not a match.
    creators = repository.readable_creators_by_handle(session, actor, handles)
    taken = repository.coupon_codes_taken(session, campaign.brand_id, [str(r["code"]) for _, r in parsed.rows])
    seen: dict[str, int] = {}
    for line, row in parsed.rows:
        code = str(row["code"])
        if row["handle"] and row["handle"] not in creators:
            parsed.errors.append(csvio.RowError(line, "creator_handle", f"no creator {row['handle']!r}"))
        if code in taken:
            parsed.errors.append(csvio.RowError(line, "code", f"{code} already exists on this brand"))
        if code in seen:
            parsed.errors.append(csvio.RowError(line, "code", f"{code} repeats line {seen[code]}"))
        seen.setdefault(code, line)
        starts = row["valid_from"] or campaign.starts_at
        ends = row["valid_until"] or campaign.ends_at
        if row["valid_from"] and not row["valid_until"] and ends <= starts:  # type: ignore[operator]
            parsed.errors.append(csvio.RowError(line, "valid_from", "is after the campaign ends"))
    parsed.errors.sort(key=lambda e: e.line)
    csvio.raise_if_errors(parsed, "coupon import")
    for _, row in parsed.rows:
        creator = creators.get(str(row["handle"]))
        session.add(
            CouponCode(
                brand_id=campaign.brand_id,
                campaign_id=campaign.id,
                creator_id=creator.id if creator else None,
                code=row["code"],
                is_single_use=row["single_use"],
                source="imported",
                valid_from=row["valid_from"] or campaign.starts_at,
                valid_until=row["valid_until"] or campaign.ends_at,
            )
        )
    session.flush()
    audit.record(
        session,
        actor,
        "coupon.imported",
        ("coupon_codes", f"campaign:{campaign.id}", campaign.brand_id),
        after={"codes": sorted(seen)},
    )
    return len(parsed.rows)

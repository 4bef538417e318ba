"""Tracked links: UTM templates, issuance, sign-off with its SLA, rotation, expiry and retirement."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.campaign import repository as campaign_repository
from clearline.campaign.service import host_allowed
from clearline.config import get_settings
from clearline.creator import repository as creator_repository
from clearline.kit.clock import BusinessCalendar, utcnow
from clearline.kit.errors import ConflictError, ValidationFailedError
from clearline.kit.signing import random_code
from clearline.link import repository, utm
from clearline.models import Brand, Campaign, Creator, Link, UtmTemplate

LINK_OPS = ("social_ops",)
SIGNOFF_SLA_HOURS = 1.0
CHANNEL_MAX = 32
DESTINATION_MAX = 2000
CODE_LENGTH = 8  # 57^8 ≈ 1.1e14 codes: unguessable by enumeration at any sane request rate


def calendar() -> BusinessCalendar:
    return BusinessCalendar.from_settings(get_settings())


def _invalid(field: str, message: str) -> ValidationFailedError:
    return ValidationFailedError(f"{field}: {message}", details=[{"loc": [field], "msg": message}])


# --- UTM templates ---------------------------------------------------------------------------------


def utm_template(session: Session, actor: Actor, *, brand_id: int) -> dict[str, str]:
    brand = brand_repository.get(session, actor, brand_id)
    found = repository.template(session, brand.id)
    return dict(found.params) if found else dict(utm.DEFAULT_TEMPLATE)


def set_utm_template(
    session: Session, actor: Actor, *, brand_id: int, params: dict[str, str], reason: str = ""
) -> UtmTemplate:
    """Replace the brand's UTM template (social_ops); validated before it is stored."""
    brand = brand_repository.get(session, actor, brand_id)
    actor.require(*LINK_OPS, brand_id=brand.id)
    try:
        cleaned = utm.validate_template(params)
    except utm.TemplateError as exc:
        raise _invalid(f"params.{exc.param}", exc.message) from None
    found = repository.template(session, brand.id)
    before = dict(found.params) if found else dict(utm.DEFAULT_TEMPLATE)
    if found is None:
        found = UtmTemplate(brand_id=brand.id, params=cleaned)
        session.add(found)
    else:
        found.params = cleaned
        found.updated_at = utcnow()
    session.flush()
    audit.record(session, actor, "utm_template.updated", found, before=before, after=cleaned, reason=reason)
    return found


def _render_utm(
    template: dict[str, str], *, brand: Brand, campaign: Campaign, creator: Creator, channel: str, sku: str
) -> dict[str, str]:
    return utm.render(
        template,
        brand=brand.slug,
        channel=channel,
        campaign=campaign.slug,
        campaign_id=str(campaign.id),
        creator=creator.handle,
        sku=sku,
    )


def _check_destination(brand: Brand, url: str) -> str:
    url = url.strip()
    # The column holds 2,000 characters: PostgreSQL would refuse a longer one with a driver error.
    if len(url) > DESTINATION_MAX:
        raise _invalid("destination_url", f"longer than {DESTINATION_MAX} characters")
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise _invalid("destination_url", "credentials in a URL are not allowed")
    if not host_allowed(brand, url):
        raise _invalid(
            "destination_url",
            f"host {parts.hostname or '?'} is not on the brand's allowed domains "
            f"({', '.join(brand.allowed_domains) or 'none configured'})",
        )
    return url


def preview(
    session: Session,
    actor: Actor,
    *,
    campaign_id: int,
    creator_id: int,
    channel: str,
    destination_url: str,
    sku: str = "",
) -> dict[str, object]:
    """What a link would carry, before it is issued: UTM values and the final landing URL."""
    campaign = campaign_repository.get(session, actor, campaign_id)
    brand = brand_repository.get(session, actor, campaign.brand_id)
    creator = creator_repository.get_creator(session, actor, creator_id)
    url = _check_destination(brand, destination_url)
    params = _render_utm(
        utm_template(session, actor, brand_id=brand.id),
        brand=brand,
        campaign=campaign,
        creator=creator,
        channel=channel,
        sku=sku,
    )
    return {"utm": params, "landing_url": utm.with_params(url, params)}


# --- issuance and life cycle -----------------------------------------------------------------------


def issue_link(
    session: Session,
    actor: Actor,
    *,
    campaign_id: int,
    creator_id: int,
    channel: str,
    destination_url: str,
    sku: str = "",
    is_single_use: bool = False,
    expires_at: dt.datetime | None = None,
    submit: bool = True,
) -> Link:
    """Issue the canonical link for a creator × campaign (optionally × SKU); it waits for ops sign-off."""
    campaign = campaign_repository.get(session, actor, campaign_id)
    actor.require(*LINK_OPS, brand_id=campaign.brand_id)
    brand = brand_repository.get(session, actor, campaign.brand_id)
    creator = creator_repository.get_creator(session, actor, creator_id)
    channel = channel.strip().lower()
    if not channel:
        raise _invalid("channel", "required")
    if len(channel) > CHANNEL_MAX:
        raise _invalid("channel", f"longer than {CHANNEL_MAX} characters")
    if sku:
        from clearline.catalog import repository as catalog_repository

        if sku not in catalog_repository.skus_by_code(session, brand_id=brand.id, codes=[sku]):
            raise _invalid("sku", f"unknown SKU {sku!r}")
    url = _check_destination(brand, destination_url)
    existing = repository.canonical(session, campaign_id=campaign.id, creator_id=creator.id, sku=sku)
    if existing is not None:
        raise ConflictError(
            f"{creator.handle} already has link {existing.code} for this campaign" + (f" and SKU {sku}" if sku else "")
        )
    limit = campaign.ends_at
    if expires_at is not None:
        # An API body may carry a time without an offset; comparing it would crash, storing it is refused.
        if expires_at.tzinfo is None:
            raise _invalid("expires_at", "needs a UTC offset (e.g. 2026-12-01T00:00:00Z)")
        if expires_at > campaign.ends_at:
            raise _invalid("expires_at", "cannot be after the campaign ends")
        if expires_at <= utcnow():
            raise _invalid("expires_at", "is in the past: the link would never work")
        limit = expires_at
    code = random_code(CODE_LENGTH)
    while repository.code_taken(session, code):
        code = random_code(CODE_LENGTH)
    params = _render_utm(
        utm_template(session, actor, brand_id=brand.id),
        brand=brand,
        campaign=campaign,
        creator=creator,
        channel=channel,
        sku=sku,
    )
    link = Link(
        brand_id=brand.id,
        campaign_id=campaign.id,
        creator_id=creator.id,
        channel=channel,
        sku=sku,
        code=code,
        destination_url=url,
        utm=params,
        status="draft",
        is_single_use=is_single_use,
        expires_at=limit,
        created_by_id=actor.user_id,
    )
    session.add(link)
    session.flush()
    audit.record(
        session,
        actor,
        "link.issued",
        link,
        after={
            "code": code,
            "creator": creator.handle,
            "campaign": campaign.slug,
            "sku": sku,
            "channel": channel,
            "destination_url": url,
            "utm": params,
            "single_use": is_single_use,
        },
    )
    if submit:
        submit_for_signoff(session, actor, link_id=link.id)
    repository.touch(session, link.id)
    return link


def submit_for_signoff(session: Session, actor: Actor, *, link_id: int) -> Link:
    """Draft → pending sign-off; the sign-off is due one business hour later (organisation calendar)."""
    link = repository.get_link(session, actor, link_id)
    actor.require(*LINK_OPS, brand_id=link.brand_id)
    if link.status != "draft":
        raise ConflictError(f"link {link.code} is {link.status}, not draft")
    now = utcnow()
    link.status = "pending_signoff"
    link.signoff_requested_at = now
    link.signoff_due_at = calendar().add_hours(now, SIGNOFF_SLA_HOURS)
    audit.record(
        session,
        actor,
        "link.submitted",
        link,
        before={"status": "draft"},
        after={"status": link.status, "signoff_due_at": link.signoff_due_at},
    )
    return link


def readiness(session: Session, link: Link, *, at: dt.datetime | None = None) -> dict[str, bool]:
    at = at or utcnow()
    contract = repository.accepted_contract_for(session, brand_id=link.brand_id, creator_id=link.creator_id, at=at)
    return {
        "contract": contract is not None,
        "signoff": link.signed_off_at is not None,
        "health": link.health != "broken",
    }


def sign_off(session: Session, actor: Actor, *, link_id: int, comment: str = "") -> Link:
    """Social ops signs a link off and it goes live — only with the creator's accepted contract."""
    link = repository.get_link(session, actor, link_id)
    actor.require(*LINK_OPS, brand_id=link.brand_id)
    if link.status != "pending_signoff":
        raise ConflictError(f"link {link.code} is {link.status}; only a link pending sign-off can go live")
    now = utcnow()
    if link.expires_at <= now:
        raise ConflictError(f"link {link.code} expired at {link.expires_at.isoformat()}")
    if repository.accepted_contract_for(session, brand_id=link.brand_id, creator_id=link.creator_id, at=now) is None:
        raise ConflictError(
            "the creator has no accepted contract with this brand: the link cannot go live",
            details=[{"loc": ["contract"], "msg": "missing accepted contract"}],
        )
    link.status = "live"
    link.signed_off_by_id = actor.user_id
    link.signed_off_at = now
    late = link.signoff_due_at is not None and now > link.signoff_due_at
    repository.touch(session, link.id)
    audit.record(
        session,
        actor,
        "link.signed_off",
        link,
        before={"status": "pending_signoff"},
        after={"status": "live", "within_sla": not late},
        reason=comment,
    )
    return link


def rotate(session: Session, actor: Actor, *, link_id: int, destination_url: str, reason: str) -> Link:
    """Point the same code at a new destination (allow-listed), audited with a reason."""
    link = repository.get_link(session, actor, link_id)
    actor.require(*LINK_OPS, brand_id=link.brand_id)
    if not reason.strip():
        raise _invalid("reason", "a rotation needs a reason")
    if link.status in ("retired", "expired"):
        raise ConflictError(f"link {link.code} is {link.status}")
    brand = brand_repository.get(session, actor, link.brand_id)
    url = _check_destination(brand, destination_url)
    before = link.destination_url
    link.destination_url = url
    link.health = "unknown"
    link.broken_since = None
    link.escalated_at = None
    repository.touch(session, link.id)
    audit.record(
        session,
        actor,
        "link.rotated",
        link,
        before={"destination_url": before},
        after={"destination_url": url},
        reason=reason,
    )
    return link


def retire(session: Session, actor: Actor, *, link_id: int, reason: str) -> Link:
    """Take a link out of service for good (its clicks go to the campaign fallback), audited with a reason."""
    link = repository.get_link(session, actor, link_id)
    actor.require(*LINK_OPS, brand_id=link.brand_id)
    if not reason.strip():
        raise _invalid("reason", "a retirement needs a reason")
    if link.status == "retired":
        raise ConflictError(f"link {link.code} is already retired")
    before = link.status
    link.status = "retired"
    repository.touch(session, link.id)
    audit.record(
        session, actor, "link.retired", link, before={"status": before}, after={"status": "retired"}, reason=reason
    )
    return link


def expire_due(session: Session, actor: Actor, *, now: dt.datetime | None = None) -> int:
    """Mark live or pending links past their expiry as expired (a periodic job)."""
    now = now or utcnow()
    due = session.scalars(
        select(Link).where(Link.status.in_(("live", "pending_signoff", "draft")), Link.expires_at <= now)
    )
    count = 0
    for link in due:
        before = link.status
        link.status = "expired"
        repository.touch(session, link.id)
        audit.record(session, actor, "link.expired", link, before={"status": before}, after={"status": "expired"})
        count += 1
    return count


def mark_used(session: Session, *, link_id: int, at: dt.datetime) -> bool:
    """Claim a single-use link atomically; False when another request already used it."""
    from sqlalchemy import update

    result = session.execute(update(Link).where(Link.id == link_id, Link.used_at.is_(None)).values(used_at=at))
    if result.rowcount:  # type: ignore[attr-defined]
        repository.touch(session, link_id)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def signoff_queue(
    session: Session, actor: Actor, *, brand_id: int, now: dt.datetime | None = None
) -> dict[str, list[Link]]:
    """Pending sign-offs with their due times, and breaches: overdue now, or signed off after the due time."""
    brand = brand_repository.get(session, actor, brand_id)
    now = now or utcnow()
    links = repository.list_links(session, actor, brand_id=brand.id)
    pending = sorted((x for x in links if x.status == "pending_signoff"), key=lambda x: x.signoff_due_at or now)
    breaches = [
        x
        for x in links
        if x.signoff_due_at is not None
        and (
            (x.status == "pending_signoff" and x.signoff_due_at < now)
            or (x.signed_off_at is not None and x.signed_off_at > x.signoff_due_at)
        )
    ]
    return {"pending": pending, "breaches": breaches}

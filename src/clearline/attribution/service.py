"""Attribution (C6): a creator's coupon, else a signed click id inside the window, else a UTM last touch.

Every attribution carries a reason a person can read; conflicts (coupon says A, click says B) are kept
for fraud review. Re-attribution is an explicit, audited action that supersedes — never edits — the
current row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.config import get_settings
from clearline.kit.signing import Signer
from clearline.link import repository as link_repository
from clearline.models import Attribution, Campaign, Click, Contract, CouponCode, Creator, Link, Order, OrderLine

DEFAULT_WINDOW_DAYS = 30


@dataclass
class Touch:
    via: str
    creator_id: int
    campaign_id: int | None
    link_id: int | None = None
    click_id: str = ""
    coupon_code: str = ""
    detail: str = ""


@dataclass
class Findings:
    touches: list[Touch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _fmt(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _window_days(session: Session, *, brand_id: int, creator_id: int, at: dt.datetime) -> int:
    contract = link_repository.accepted_contract_for(session, brand_id=brand_id, creator_id=creator_id, at=at)
    if contract is None:
        return DEFAULT_WINDOW_DAYS
    return int(contract.terms.get("attribution_window_days", DEFAULT_WINDOW_DAYS))


def _handle(session: Session, creator_id: int) -> str:
    creator = session.get(Creator, creator_id)
    return creator.handle if creator else f"creator {creator_id}"


def _coupon(session: Session, order: Order, findings: Findings) -> None:
    # Every creator code on the order is a touch: the first wins, and a second creator's code is a conflict
    # for fraud review rather than something silently ignored.
    for code in order.coupon_codes:
        coupon = session.scalar(
            select(CouponCode).where(CouponCode.brand_id == order.brand_id, CouponCode.code == code.upper())
        )
        if coupon is None or coupon.creator_id is None:
            findings.notes.append(f"coupon {code} is not a creator code")
            continue
        if coupon.valid_from > order.ordered_at or (coupon.valid_until and order.ordered_at > coupon.valid_until):
            findings.notes.append(f"coupon {code} was outside its validity window")
            continue
        if coupon.is_single_use and coupon.used_at is not None:
            findings.notes.append(f"single-use coupon {code} was already used")
            continue
        if coupon.is_single_use:
            coupon.used_at = order.ordered_at
        findings.touches.append(
            Touch(
                "coupon",
                coupon.creator_id,
                coupon.campaign_id,
                coupon_code=coupon.code,
                detail=f"coupon {coupon.code}, issued to {_handle(session, coupon.creator_id)}, was used on the order",
            )
        )


def _signed_click_id(order: Order) -> str:
    if order.click_id:
        return order.click_id
    query = parse_qs(urlsplit(order.landing_url).query) if order.landing_url else {}
    return (query.get("clid") or [""])[0]


def _click(session: Session, order: Order, findings: Findings) -> None:
    signed = _signed_click_id(order)
    if not signed:
        return
    raw = Signer(get_settings().secret_key, "click-id").unsign(signed)
    if raw is None:
        findings.notes.append("the click id's signature does not verify (forged or altered): ignored")
        return
    click = session.scalar(
        select(Click)
        .where(Click.click_id == raw, Click.outcome == "live", Click.is_bot.is_(False))
        .order_by(Click.at)
        .limit(1)
    )
    if click is None:
        findings.notes.append(f"click {raw} is not on record as a human click on a live link")
        return
    link = session.get(Link, click.link_id)
    if link is None or link.brand_id != order.brand_id:
        findings.notes.append(f"click {raw} belongs to another brand")
        return
    window = _window_days(session, brand_id=order.brand_id, creator_id=link.creator_id, at=order.ordered_at)
    age = order.ordered_at - click.at
    if age < dt.timedelta(0) or age > dt.timedelta(days=window):
        findings.notes.append(f"click {raw} at {_fmt(click.at)} is outside the {window}-day window")
        return
    hours = age.total_seconds() / 3600
    findings.touches.append(
        Touch(
            "click",
            link.creator_id,
            link.campaign_id,
            link_id=link.id,
            click_id=raw,
            detail=f"signed click id {raw} from {_handle(session, link.creator_id)}'s link {link.code}, clicked "
            f"{_fmt(click.at)} ({hours:.1f} h before the order, inside the {window}-day window)",
        )
    )


def _utm(session: Session, order: Order, findings: Findings) -> None:
    if not order.landing_url:
        return
    query = {k: v[0] for k, v in parse_qs(urlsplit(order.landing_url).query).items()}
    handle, slug = query.get("utm_content", "").lower(), query.get("utm_campaign", "").lower()
    if not handle or not slug:
        return
    creator = session.scalar(select(Creator).where(Creator.handle == handle))
    campaign = session.scalar(select(Campaign).where(Campaign.brand_id == order.brand_id, Campaign.slug == slug))
    if creator is None or campaign is None:
        findings.notes.append(f"UTM names {handle!r}/{slug!r}, which match no creator or campaign")
        return
    link = session.scalar(
        select(Link).where(Link.campaign_id == campaign.id, Link.creator_id == creator.id).order_by(Link.id).limit(1)
    )
    window = _window_days(session, brand_id=order.brand_id, creator_id=creator.id, at=order.ordered_at)
    if not campaign.starts_at <= order.ordered_at <= campaign.ends_at + dt.timedelta(days=window):
        findings.notes.append(f"UTM touch for {slug} is outside the campaign and its {window}-day window")
        return
    findings.touches.append(
        Touch(
            "utm",
            creator.id,
            campaign.id,
            link_id=link.id if link else None,
            detail=f"UTM last touch: the landing URL names creator {handle} and campaign "
            f"{slug} (utm_content / utm_campaign)",
        )
    )


def find(session: Session, order: Order) -> Findings:
    findings = Findings()
    _coupon(session, order, findings)
    _click(session, order, findings)
    _utm(session, order, findings)
    return findings


def attribute(
    session: Session, *, order: Order, lines: list[OrderLine] | None = None, created_by: str = "system"
) -> Attribution:
    """Apply the rules in order and record the winner, the reason and any conflict."""
    findings = find(session, order)
    winner = findings.touches[0] if findings.touches else None
    conflict: dict[str, Any] | None = None
    others = [t for t in findings.touches[1:] if winner and t.creator_id != winner.creator_id]
    if winner and others:
        conflict = {
            "winner": {"via": winner.via, "creator": _handle(session, winner.creator_id)},
            "others": [{"via": t.via, "creator": _handle(session, t.creator_id)} for t in others],
            "status": "fraud_review",
        }
    contract: Contract | None = None
    if winner is None:
        reason = "Not attributed: no creator coupon, no valid signed click id and no UTM touch."
    else:
        contract = link_repository.accepted_contract_for(
            session, brand_id=order.brand_id, creator_id=winner.creator_id, at=order.ordered_at
        )
        rule = {"coupon": "rule 1 (coupon)", "click": "rule 2 (signed click)", "utm": "rule 3 (UTM last touch)"}
        reason = f"Attributed by {rule[winner.via]}: {winner.detail}."
        if contract is None:
            reason += " The creator had no accepted contract with the brand at order time: no commission."
        else:
            reason += f" Contract {contract.id} applies."
        if conflict:
            reason += (
                " Conflict: "
                + ", ".join(f"{o['via']} says {o['creator']}" for o in conflict["others"])
                + " — raised to fraud review."
            )
    if findings.notes:
        reason += " Notes: " + "; ".join(findings.notes) + "."
    attribution = Attribution(
        order_id=order.id,
        brand_id=order.brand_id,
        via=winner.via if winner else "none",
        creator_id=winner.creator_id if winner else None,
        campaign_id=winner.campaign_id if winner else None,
        link_id=winner.link_id if winner else None,
        contract_id=contract.id if contract else None,
        click_id=winner.click_id if winner else "",
        coupon_code=winner.coupon_code if winner else "",
        reason=reason,
        conflict=conflict,
        is_current=True,
        created_by=created_by,
    )
    session.add(attribution)
    session.flush()
    return attribution


def current(session: Session, order_id: int) -> Attribution | None:
    return session.scalar(select(Attribution).where(Attribution.order_id == order_id, Attribution.is_current.is_(True)))

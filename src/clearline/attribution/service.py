"""Attribution (C6): a creator's coupon, else a signed click id inside the window, else a UTM last touch.

Every attribution carries a reason a person can read; conflicts (coupon says A, click says B) are kept
for fraud review. Re-attribution is an explicit, audited action that supersedes — never edits — the
current row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from clearline.config import get_settings
from clearline.kit.signing import Signer
from clearline.models import (
    Attribution,
    Campaign,
    Click,
    Contract,
    CouponCode,
    Creator,
    Link,
    Order,
    OrderLine,
    RosterEntry,
)

DEFAULT_WINDOW_DAYS = 30
_T = TypeVar("_T")


class OrderFacts(Protocol):
    """What attribution reads of an order: a stored `Order`, or the plain row a batch has just written."""

    @property
    def id(self) -> int: ...
    @property
    def brand_id(self) -> int: ...
    @property
    def ordered_at(self) -> dt.datetime: ...
    @property
    def coupon_codes(self) -> list[str]: ...
    @property
    def click_id(self) -> str: ...
    @property
    def landing_url(self) -> str: ...


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


class Lookups:
    """What attribution reads that does not change while orders are processed (coupons, clicks, contracts,
    creators), read once per batch instead of once per order. One instance per unit of work at most: it
    holds ORM objects of its session (a single-use coupon marked used is seen by the next order)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._coupons: dict[tuple[int, str], CouponCode | None] = {}
        self._clicks: dict[str, Click | None] = {}
        self._contracts: dict[tuple[int, int], list[Contract]] = {}
        self._rows: dict[tuple[type, int], Any] = {}  # strong references: the session's identity map is weak
        self._creators: dict[str, Creator | None] = {}
        self._campaigns: dict[tuple[int, str], Campaign | None] = {}
        self._links: dict[tuple[int, int], Link | None] = {}
        self._brand_contracts: dict[int, list[Contract]] = {}  # prefetched: accepted contracts per brand
        self._agencies: dict[int, set[int]] = {}  # prefetched: a creator's agencies (of those contracts)
        self._signer = Signer(get_settings().secret_key, "click-id")

    def unsign(self, signed: str) -> str | None:
        return self._signer.unsign(signed)

    def coupon(self, brand_id: int, code: str) -> CouponCode | None:
        key = (brand_id, code.upper())
        if key not in self._coupons:
            self._coupons[key] = self.session.scalar(
                select(CouponCode).where(CouponCode.brand_id == brand_id, CouponCode.code == key[1])
            )
        return self._coupons[key]

    def creator(self, handle: str) -> Creator | None:
        if handle not in self._creators:
            self._creators[handle] = self.session.scalar(select(Creator).where(Creator.handle == handle))
        return self._creators[handle]

    def campaign(self, brand_id: int, slug: str) -> Campaign | None:
        key = (brand_id, slug)
        if key not in self._campaigns:
            self._campaigns[key] = self.session.scalar(
                select(Campaign).where(Campaign.brand_id == brand_id, Campaign.slug == slug)
            )
        return self._campaigns[key]

    def first_link(self, campaign_id: int, creator_id: int) -> Link | None:
        """The creator's first link in the campaign (by id): the one a UTM touch is credited to."""
        key = (campaign_id, creator_id)
        if key not in self._links:
            self._links[key] = self.session.scalar(
                select(Link)
                .where(Link.campaign_id == campaign_id, Link.creator_id == creator_id)
                .order_by(Link.id)
                .limit(1)
            )
        return self._links[key]

    def prefetch(self, orders: Sequence[OrderFacts]) -> None:
        """Read the coupons, clicks and UTM creators and campaigns of many orders in a few statements."""
        codes: dict[int, set[str]] = {}
        for order in orders:
            codes.setdefault(order.brand_id, set()).update(c.upper() for c in order.coupon_codes)
        for brand_id, wanted in codes.items():
            missing = sorted(c for c in wanted if (brand_id, c) not in self._coupons)
            for start in range(0, len(missing), 1000):
                chunk = missing[start : start + 1000]
                found = {
                    c.code: c
                    for c in self.session.scalars(
                        select(CouponCode).where(CouponCode.brand_id == brand_id, CouponCode.code.in_(chunk))
                    )
                }
                for code in chunk:
                    self._coupons[(brand_id, code)] = found.get(code)
        raws = set()
        for order in orders:
            signed = _signed_click_id(order)
            raw = self.unsign(signed) if signed else None
            if raw is not None and raw not in self._clicks:
                raws.add(raw)
        ordered = sorted(raws)
        for start in range(0, len(ordered), 1000):
            chunk = ordered[start : start + 1000]
            for click in self.session.scalars(_live_clicks().where(Click.click_id.in_(chunk)).order_by(Click.at)):
                self._clicks.setdefault(click.click_id, click)  # the earliest click under the id, as .limit(1)
            for raw in chunk:
                self._clicks.setdefault(raw, None)
        handles: set[str] = set()
        slugs: dict[int, set[str]] = {}
        for order in orders:
            utm = _utm_names(order)
            if utm is not None:
                handles.add(utm[0])
                slugs.setdefault(order.brand_id, set()).add(utm[1])
        new_handles = sorted(h for h in handles if h not in self._creators)
        for start in range(0, len(new_handles), 1000):
            chunk = new_handles[start : start + 1000]
            found_creators = {
                c.handle: c for c in self.session.scalars(select(Creator).where(Creator.handle.in_(chunk)))
            }
            for handle in chunk:
                self._creators[handle] = found_creators.get(handle)
        for brand_id, names in slugs.items():
            missing_slugs = sorted(n for n in names if (brand_id, n) not in self._campaigns)
            if not missing_slugs:
                continue
            found_campaigns = {
                c.slug: c
                for c in self.session.scalars(
                    select(Campaign).where(Campaign.brand_id == brand_id, Campaign.slug.in_(missing_slugs))
                )
            }
            for slug in missing_slugs:
                self._campaigns[(brand_id, slug)] = found_campaigns.get(slug)
        self._prefetch_contracts({order.brand_id for order in orders})
        pairs = set()
        for order in orders:
            utm = _utm_names(order)
            creator = self._creators.get(utm[0]) if utm else None
            campaign = self._campaigns.get((order.brand_id, utm[1])) if utm else None
            if creator is not None and campaign is not None and (campaign.id, creator.id) not in self._links:
                pairs.add((campaign.id, creator.id))
        if pairs:
            campaign_ids = sorted({campaign_id for campaign_id, _ in pairs})
            creator_ids = sorted({creator_id for _, creator_id in pairs})
            for link in self.session.scalars(
                select(Link)
                .where(Link.campaign_id.in_(campaign_ids), Link.creator_id.in_(creator_ids))
                .order_by(Link.id)
            ):
                self._links.setdefault((link.campaign_id, link.creator_id), link)  # the first by id, as .limit(1)
            for pair in pairs:
                self._links.setdefault(pair, None)

    def _prefetch_contracts(self, brand_ids: set[int]) -> None:
        """Every accepted contract of these brands and the rosters of their agencies, in two statements."""
        wanted = sorted(b for b in brand_ids if b not in self._brand_contracts)
        if not wanted:
            return
        for brand_id in wanted:
            self._brand_contracts[brand_id] = []
        agency_ids = set()
        for contract in self.session.scalars(
            select(Contract).where(Contract.brand_id.in_(wanted), Contract.status == "accepted")
        ):
            self._brand_contracts[contract.brand_id].append(contract)
            if contract.agency_id is not None:
                agency_ids.add(contract.agency_id)
        for start in range(0, len(ordered := sorted(agency_ids)), 1000):
            for creator_id, agency_id in self.session.execute(
                select(RosterEntry.creator_id, RosterEntry.agency_id).where(
                    RosterEntry.agency_id.in_(ordered[start : start + 1000])
                )
            ):
                self._agencies.setdefault(creator_id, set()).add(agency_id)

    def click(self, raw: str) -> Click | None:
        if raw not in self._clicks:
            self._clicks[raw] = self.session.scalar(
                _live_clicks().where(Click.click_id == raw).order_by(Click.at).limit(1)
            )
        return self._clicks[raw]

    def contract(self, *, brand_id: int, creator_id: int, at: dt.datetime) -> Contract | None:
        """The creator's accepted contract with the brand at ``at``: its own, or its agency's (own first, then
        the newest), as `link.repository.accepted_contract_for` answers it."""
        key = (brand_id, creator_id)
        if key not in self._contracts and brand_id in self._brand_contracts:
            agencies = self._agencies.get(creator_id, set())
            self._contracts[key] = sorted(
                (
                    c
                    for c in self._brand_contracts[brand_id]
                    if c.creator_id == creator_id or (c.agency_id is not None and c.agency_id in agencies)
                ),
                key=lambda c: (c.creator_id is None, -c.id),
            )
        if key not in self._contracts:
            roster_agencies = select(RosterEntry.agency_id).where(RosterEntry.creator_id == creator_id)
            stmt = (
                select(Contract)
                .where(
                    Contract.brand_id == brand_id,
                    Contract.status == "accepted",
                    or_(Contract.creator_id == creator_id, Contract.agency_id.in_(roster_agencies)),
                )
                .order_by(Contract.creator_id.is_(None), Contract.id.desc())
            )
            self._contracts[key] = list(self.session.scalars(stmt))
        for contract in self._contracts[key]:
            if contract.starts_at <= at and (contract.ends_at is None or contract.ends_at > at):
                return contract
        return None

    def get(self, model: type[_T], ident: int) -> _T | None:
        key = (model, ident)
        if key not in self._rows:
            self._rows[key] = self.session.get(model, ident)
        return self._rows[key]  # type: ignore[no-any-return]

    def handle(self, creator_id: int) -> str:
        creator = self.get(Creator, creator_id)
        return creator.handle if creator else f"creator {creator_id}"


def _live_clicks():  # type: ignore[no-untyped-def]
    return select(Click).where(Click.outcome == "live", Click.is_bot.is_(False))


def _fmt(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _window_days(lookups: Lookups, *, brand_id: int, creator_id: int, at: dt.datetime) -> int:
    contract = lookups.contract(brand_id=brand_id, creator_id=creator_id, at=at)
    if contract is None:
        return DEFAULT_WINDOW_DAYS
    return int(contract.terms.get("attribution_window_days", DEFAULT_WINDOW_DAYS))


def _coupon(lookups: Lookups, order: OrderFacts, findings: Findings) -> None:
    # Every creator code on the order is a touch: the first wins, and a second creator's code is a conflict
    # for fraud review rather than something silently ignored.
    for code in order.coupon_codes:
        coupon = lookups.coupon(order.brand_id, code)
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
                detail=f"coupon {coupon.code}, issued to {lookups.handle(coupon.creator_id)}, was used on the order",
            )
        )


def _signed_click_id(order: OrderFacts) -> str:
    if order.click_id:
        return order.click_id
    query = parse_qs(urlsplit(order.landing_url).query) if order.landing_url else {}
    return (query.get("clid") or [""])[0]


def _click(lookups: Lookups, order: OrderFacts, findings: Findings) -> None:
    signed = _signed_click_id(order)
    if not signed:
        return
    raw = lookups.unsign(signed)
    if raw is None:
        findings.notes.append("the click id's signature does not verify (forged or altered): ignored")
        return
    click = lookups.click(raw)
    if click is None:
        findings.notes.append(f"click {raw} is not on record as a human click on a live link")
        return
    link = lookups.get(Link, click.link_id)
    if link is None or link.brand_id != order.brand_id:
        findings.notes.append(f"click {raw} belongs to another brand")
        return
    window = _window_days(lookups, brand_id=order.brand_id, creator_id=link.creator_id, at=order.ordered_at)
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
            detail=f"signed click id {raw} from {lookups.handle(link.creator_id)}'s link {link.code}, clicked "
            f"{_fmt(click.at)} ({hours:.1f} h before the order, inside the {window}-day window)",
        )
    )


def _utm_names(order: OrderFacts) -> tuple[str, str] | None:
    """The (creator handle, campaign slug) a landing URL names in utm_content / utm_campaign, lower-cased."""
    if not order.landing_url:
        return None
    query = {k: v[0] for k, v in parse_qs(urlsplit(order.landing_url).query).items()}
    handle, slug = query.get("utm_content", "").lower(), query.get("utm_campaign", "").lower()
    if not handle or not slug:
        return None
    return handle, slug


def _utm(lookups: Lookups, order: OrderFacts, findings: Findings) -> None:
    names = _utm_names(order)
    if names is None:
        return
    handle, slug = names
    creator = lookups.creator(handle)
    campaign = lookups.campaign(order.brand_id, slug)
    if creator is None or campaign is None:
        findings.notes.append(f"UTM names {handle!r}/{slug!r}, which match no creator or campaign")
        return
    link = lookups.first_link(campaign.id, creator.id)
    window = _window_days(lookups, brand_id=order.brand_id, creator_id=creator.id, at=order.ordered_at)
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


def find(session: Session, order: OrderFacts, *, lookups: Lookups | None = None) -> Findings:
    lookups = lookups or Lookups(session)
    findings = Findings()
    _coupon(lookups, order, findings)
    _click(lookups, order, findings)
    _utm(lookups, order, findings)
    return findings


def attribute(
    session: Session,
    *,
    order: Order,
    lines: list[OrderLine] | None = None,
    created_by: str = "system",
    lookups: Lookups | None = None,
) -> Attribution:
    """Apply the rules in order and record the winner, the reason and any conflict."""
    attribution = decide(session, order=order, created_by=created_by, lookups=lookups)
    session.add(attribution)
    session.flush()
    return attribution


def decide(
    session: Session, *, order: OrderFacts, created_by: str = "system", lookups: Lookups | None = None
) -> Attribution:
    """The attribution of a stored order, not yet added to the session."""
    return Attribution(**decide_values(session, order=order, created_by=created_by, lookups=lookups))


def decide_values(
    session: Session, *, order: OrderFacts, created_by: str = "system", lookups: Lookups | None = None
) -> dict[str, Any]:
    """The attribution of a stored order as the column values of its row (a batch writes many rows at once,
    without an ORM object each); `decide` makes the same values an `Attribution`."""
    lookups = lookups or Lookups(session)
    findings = find(session, order, lookups=lookups)
    winner = findings.touches[0] if findings.touches else None
    conflict: dict[str, Any] | None = None
    others = [t for t in findings.touches[1:] if winner and t.creator_id != winner.creator_id]
    if winner and others:
        conflict = {
            "winner": {"via": winner.via, "creator": lookups.handle(winner.creator_id)},
            "others": [{"via": t.via, "creator": lookups.handle(t.creator_id)} for t in others],
            "status": "fraud_review",
        }
    contract: Contract | None = None
    if winner is None:
        reason = "Not attributed: no creator coupon, no valid signed click id and no UTM touch."
    else:
        contract = lookups.contract(brand_id=order.brand_id, creator_id=winner.creator_id, at=order.ordered_at)
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
    return {
        "order_id": order.id,
        "brand_id": order.brand_id,
        "via": winner.via if winner else "none",
        "creator_id": winner.creator_id if winner else None,
        "campaign_id": winner.campaign_id if winner else None,
        "link_id": winner.link_id if winner else None,
        "contract_id": contract.id if contract else None,
        "click_id": winner.click_id if winner else "",
        "coupon_code": winner.coupon_code if winner else "",
        "reason": reason,
        "conflict": conflict,
        "is_current": True,
        "created_by": created_by,
    }


def current(session: Session, order_id: int) -> Attribution | None:
    return session.scalar(select(Attribution).where(Attribution.order_id == order_id, Attribution.is_current.is_(True)))

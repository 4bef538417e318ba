"""Read models for the creator pages and the creator / agency portal, assembled from the scoped
repositories and services (no queries here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.brief import creative as creative_service
from clearline.brief import service as brief_service
from clearline.commission import repository as commission_repository
from clearline.contract import views as contract_views
from clearline.creator import repository
from clearline.creator.service import CREATOR_WRITERS
from clearline.link import repository as link_repository
from clearline.models import (
    Agency,
    ApprovalStep,
    Brand,
    Brief,
    CommissionLine,
    CouponCode,
    Creative,
    CreativeVersion,
    Creator,
    Dispute,
    Link,
    Notification,
    PayoutLine,
    PayoutRun,
    ProofOfPosting,
)
from clearline.payout import dispute as dispute_service
from clearline.payout import service as payout_service


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


# --- the creator / agency portal -------------------------------------------------------------------

SALES_SHOWN = 200


@dataclass
class PortalLink:
    link: Link
    creator: str
    clicks: int
    visitors: int


@dataclass
class SaleLine:
    line: CommissionLine
    creator: str
    order_number: str | None
    open_dispute: Dispute | None
    can_dispute: bool

    @property
    def net(self) -> int:
        return self.line.amount - self.line.reversed_amount

    @property
    def state(self) -> str:
        if self.open_dispute is not None:
            return "disputed"
        if self.line.hold_reason:
            return "on hold"
        if self.line.cleared_at is None:
            return "pending"
        if self.line.amount and self.net <= 0:
            return "reversed"
        return "cleared"


@dataclass
class Earnings:
    """One currency's money for the payee, in minor units."""

    currency: str
    pending: int = 0
    available: int = 0
    paid: int = 0
    reserve: int = 0


@dataclass
class DisputeLine:
    dispute: Dispute
    order_number: str | None
    currency: str | None  # the line's, when the line is among those shown


@dataclass
class PortalView:
    contracts: contract_views.PortalView
    links: list[PortalLink] = field(default_factory=list)
    coupons: list[tuple[CouponCode, str]] = field(default_factory=list)
    sales: list[SaleLine] = field(default_factory=list)
    earnings: list[Earnings] = field(default_factory=list)
    payouts: list[tuple[PayoutLine, PayoutRun]] = field(default_factory=list)
    disputes: list[DisputeLine] = field(default_factory=list)
    briefs: list[Brief] = field(default_factory=list)
    creatives: list[Creative] = field(default_factory=list)
    versions: dict[int, list[CreativeVersion]] = field(default_factory=dict)
    reviews: dict[int, list[ApprovalStep]] = field(default_factory=dict)
    proofs: dict[int, list[ProofOfPosting]] = field(default_factory=dict)
    feedback: list[tuple[Creative, ApprovalStep, str]] = field(default_factory=list)
    messages: list[Notification] = field(default_factory=list)

    @property
    def creator(self) -> Creator | None:
        return self.contracts.creator

    @property
    def agency(self) -> Agency | None:
        return self.contracts.agency

    def brief_title(self, brief_id: int) -> str:
        return next((b.title for b in self.briefs if b.id == brief_id), f"brief #{brief_id}")

    def creatives_for(self, brief_id: int) -> list[Creative]:
        return [c for c in self.creatives if c.brief_id == brief_id]

    @property
    def makers(self) -> list[Creator]:
        """Whom a new creative can be for: the creator itself, or an agency's roster."""
        return [self.creator] if self.creator is not None else list(self.contracts.roster)

    @property
    def channels(self) -> list[str]:
        """The channels a new creative can be for: those of the creator, or of anyone on the roster."""
        return sorted({ch for maker in self.makers for ch in maker.channels})

    def handle(self, creator_id: int) -> str:
        return next((f"@{c.handle}" for c in self.makers if c.id == creator_id), f"creator #{creator_id}")


def _earnings(
    totals: list[tuple[str, str, int, int]],
    adjustments: dict[str, int],
    payouts: list[tuple[PayoutLine, PayoutRun]],
) -> list[Earnings]:
    """pending / available / paid per currency, from the payee's commission lines and payout lines:

    - pending   = Σ (amount − reversed) of its lines not yet cleared (inside their verification window);
    - paid      = Σ total of its payout lines in approved (then paid, reconciled) runs;
    - available = Σ (amount − reversed) of its cleared lines − reserve still held back
                  + upheld dispute adjustments − paid.
    A payout line's total already nets released reserves, adjustments and clawbacks, so what is left is
    what the next run would pay (before holds, open disputes and the minimum); it equals the payee's
    ledger 'available' balance, and goes negative when a clawback follows a payout (carried forward).
    """
    by_currency: dict[str, Earnings] = {}

    def of(currency: str) -> Earnings:
        return by_currency.setdefault(currency, Earnings(currency))

    for currency, state, net, held in totals:
        if state == "pending":
            of(currency).pending += net
        else:
            of(currency).available += net - held
            of(currency).reserve += held
    for currency, amount in adjustments.items():
        of(currency).available += amount
    for line, _run in payouts:
        of(line.currency).paid += line.total_amount
        of(line.currency).available -= line.total_amount
    return [by_currency[c] for c in sorted(by_currency)]


def portal(session: Session, actor: Actor) -> PortalView:
    """A creator's or agency's own program: contracts, links and codes with clicks, sales with their
    commissions, earnings, payouts, disputes, briefs and feedback. An agency sees its roster's links, codes
    and sales and its own money; a portal user who also holds a staff role still sees only what is theirs."""
    contracts = contract_views.portal(session, actor)  # 403 for anyone but a creator or agency
    roster_ids = {c.id for c in contracts.roster}
    handles = {c.id: "@" + c.handle for c in contracts.roster}
    if contracts.creator is not None:
        handles[contracts.creator.id] = "@" + contracts.creator.handle

    def mine(creator_id: int | None) -> bool:
        return creator_id is not None and (creator_id == actor.creator_id or creator_id in roster_ids)

    links = [x for x in link_repository.list_links(session, actor) if mine(x.creator_id)]
    clicks = link_repository.click_counts(session, [x.id for x in links])
    coupons = [c for c in link_repository.coupons(session, actor) if mine(c.creator_id)]

    def is_payee(line: CommissionLine) -> bool:
        return (line.payee_type == "creator" and line.payee_id == actor.creator_id) or (
            line.payee_type == "agency" and line.payee_id == actor.agency_id
        )

    lines = [
        x
        for x in commission_repository.list_lines(session, actor, limit=SALES_SHOWN)
        if is_payee(x) or mine(x.creator_id)
    ]
    by_line = {x.id: x for x in lines}
    # Everything a pure portal user may read is its own; a portal user who is also staff reads the
    # brand's disputes too, so keep only those on its own (shown) lines.
    disputes = [
        d
        for d in dispute_service.list_disputes(session, actor)
        if not actor.is_staff or d.commission_line_id in by_line
    ]
    numbers = commission_repository.order_numbers(session, actor, [x.order_id for x in lines if x.order_id])
    open_by_line = {d.commission_line_id: d for d in disputes if d.status == "open"}
    payouts = payout_service.payee_lines(session, actor)
    creatives = [c for c in creative_service.list_creatives(session, actor) if mine(c.creator_id)]
    own_briefs = {c.brief_id for c in creatives}
    ids = [c.id for c in creatives]
    # The briefs it made content for, and the approved briefs of its brands it may still answer.
    briefs = {b.id: b for b in brief_service.list_briefs(session, actor) if b.id in own_briefs}
    briefs.update({b.id: b for b in creative_service.answerable_briefs(session, actor)})
    return PortalView(
        contracts=contracts,
        links=[
            PortalLink(x, handles.get(x.creator_id, f"creator #{x.creator_id}"), *clicks.get(x.id, (0, 0)))
            for x in links
        ],
        coupons=[(c, handles.get(c.creator_id or 0, "")) for c in coupons],
        sales=[
            SaleLine(
                line=x,
                creator=handles.get(x.creator_id or 0, "") if x.creator_id else "",
                order_number=numbers.get(x.order_id or 0),
                open_dispute=open_by_line.get(x.id),
                can_dispute=x.id not in open_by_line
                and ((x.creator_id is not None and x.creator_id == actor.creator_id) or is_payee(x)),
            )
            for x in lines
        ],
        earnings=_earnings(
            commission_repository.payee_totals(session, actor),
            commission_repository.payee_adjustments(session, actor),
            payouts,
        ),
        payouts=payouts,
        disputes=[
            DisputeLine(
                d,
                numbers.get(by_line[d.commission_line_id].order_id or 0) if d.commission_line_id in by_line else None,
                by_line[d.commission_line_id].currency if d.commission_line_id in by_line else None,
            )
            for d in disputes
        ],
        briefs=sorted(briefs.values(), key=lambda b: b.id, reverse=True),
        creatives=creatives,
        versions=creative_service.versions_of(session, actor, ids),
        reviews=creative_service.open_reviews_of(session, actor, ids),
        proofs=creative_service.proofs_of(session, actor, ids),
        feedback=[(c, s, who) for c, s, who in creative_service.feedback(session, actor) if mine(c.creator_id)],
        messages=[
            n
            for n in link_repository.notifications(session, actor, limit=20)
            if n.creator_id is not None and n.creator_id == actor.creator_id
        ],
    )

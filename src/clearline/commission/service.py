"""Commission lines and the money they move: accrual, clearing, reserves, reversals and clawbacks.

Money path per line (ledger accounts of the payee, per brand and currency):
  accrued   brand expense → payee pending          (at order time)
  cleared   payee pending → payee available        (at the end of the verification window)
            (with a rolling reserve: the reserve share goes to payee reserve until its release date)
  reversed  payee pending → brand expense          (a return inside the window)
  clawed back payee available → brand expense      (a return or chargeback after clearing or payout;
                                                    available may go negative and nets off later)
  paid      payee available → brand payouts        (payout runs)
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from clearline.commission import calc, fx
from clearline.contract.terms import ContractTerms, default_verification_days
from clearline.kit import money
from clearline.kit.clock import utcnow
from clearline.ledger import service as ledger
from clearline.models import (
    Attribution,
    Campaign,
    CommissionLine,
    Contract,
    ContractTemplateVersion,
    Offer,
    Order,
    OrderLine,
    Refund,
    Sku,
)

_T = TypeVar("_T")
PERFORMANCE_RULES = ("cpa_unit", "cpa_order", "revshare_net_revenue", "revshare_gross_margin")


class OrderFacts(Protocol):
    """What accrual reads of an order: a stored `Order`, or the plain row a batch has just written."""

    @property
    def id(self) -> int: ...
    @property
    def brand_id(self) -> int: ...
    @property
    def external_id(self) -> str: ...
    @property
    def ordered_at(self) -> dt.datetime: ...
    @property
    def currency(self) -> str: ...
    @property
    def is_new_customer(self) -> bool | None: ...


class LineFacts(Protocol):
    """What accrual reads of an order line (an `OrderLine` or a batch's plain row)."""

    @property
    def id(self) -> int: ...
    @property
    def line_no(self) -> int: ...
    @property
    def sku(self) -> str: ...
    @property
    def quantity(self) -> int: ...
    @property
    def net_amount(self) -> int: ...


class AttributionFacts(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def creator_id(self) -> int | None: ...
    @property
    def campaign_id(self) -> int | None: ...
    @property
    def contract_id(self) -> int | None: ...


_L = TypeVar("_L", bound=LineFacts)


@dataclass
class Preloaded:
    """What reversing one order's commissions reads, read for a whole batch of refunds at once."""

    attribution_id: int | None
    commission_lines: list[CommissionLine]
    order_lines: list[OrderLine]
    lookups: Lookups
    transfers: list[ledger.Transfer] = field(default_factory=list)


def payee_of(contract: Contract) -> tuple[str, int]:
    """Creators under an agency contract are paid to the agency."""
    return ("agency", contract.agency_id) if contract.agency_id else ("creator", contract.creator_id)  # type: ignore[return-value]


def account(line: CommissionLine, kind: str) -> ledger.Account:
    if kind == ledger.EXPENSE:
        return ledger.Account(line.brand_id, "brand", line.brand_id, ledger.EXPENSE, line.currency)
    return ledger.Account(line.brand_id, line.payee_type, line.payee_id, kind, line.currency)


def account_of(values: Mapping[str, Any], kind: str) -> ledger.Account:
    """`account` for a commission line given as its column values."""
    if kind == ledger.EXPENSE:
        return ledger.Account(values["brand_id"], "brand", values["brand_id"], ledger.EXPENSE, values["currency"])
    return ledger.Account(values["brand_id"], values["payee_type"], values["payee_id"], kind, values["currency"])


def period_of(at: dt.datetime) -> str:
    return at.strftime("%Y-%m")


class Lookups:
    """What accrual reads that does not change while orders are processed (SKUs, parsed contract terms, FX
    rates, template versions), read once per batch; and each capped contract's period total, kept up to date
    with the lines accrued through it."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._skus: dict[tuple[int, str], Sku | None] = {}
        self._terms: dict[int, ContractTerms] = {}
        self._fx: dict[tuple[dt.date, str, str], Decimal] = {}
        self._versions: dict[int | None, int] = {}
        self._period_used: dict[tuple[int, str], int] = {}
        self._rows: dict[tuple[type, int], Any] = {}  # strong references: the session's identity map is weak

    def get(self, model: type[_T], ident: int) -> _T | None:
        key = (model, ident)
        if key not in self._rows:
            self._rows[key] = self.session.get(model, ident)
        return self._rows[key]  # type: ignore[no-any-return]

    def skus(self, brand_id: int, names: list[str]) -> dict[str, Sku]:
        missing = sorted({n for n in names if (brand_id, n) not in self._skus})
        if missing:
            found = {
                s.sku: s
                for s in self.session.scalars(select(Sku).where(Sku.brand_id == brand_id, Sku.sku.in_(missing)))
            }
            for name in missing:
                self._skus[(brand_id, name)] = found.get(name)
        return {n: sku for n in names if (sku := self._skus[(brand_id, n)]) is not None}

    def terms(self, contract: Contract) -> ContractTerms:
        if contract.id not in self._terms:
            self._terms[contract.id] = ContractTerms.model_validate(contract.terms)
        return self._terms[contract.id]

    def fx(self, *, day: dt.date, base: str, quote: str) -> Decimal:
        key = (day, base, quote)
        if key not in self._fx:
            self._fx[key] = fx.rate(self.session, day=day, base=base, quote=quote)
        return self._fx[key]

    def version(self, template_version_id: int | None) -> int:
        if template_version_id not in self._versions:
            self._versions[template_version_id] = (
                self.session.scalar(
                    select(ContractTemplateVersion.version).where(ContractTemplateVersion.id == template_version_id)
                )
                or 0
            )
        return self._versions[template_version_id]

    def period_remaining(self, contract: Contract, terms: ContractTerms, period: str) -> int | None:
        if terms.cap_per_period is None:
            return None
        key = (contract.id, period)
        if key not in self._period_used:
            used = self.session.scalar(
                select(func.coalesce(func.sum(CommissionLine.amount - CommissionLine.reversed_amount), 0)).where(
                    CommissionLine.contract_id == contract.id,
                    CommissionLine.period == period,
                    CommissionLine.rule.in_(PERFORMANCE_RULES),
                )
            )
            self._period_used[key] = int(used or 0)
        return money.to_minor(terms.cap_per_period, terms.currency) - self._period_used[key]

    def accrued(self, lines: list[dict[str, Any]]) -> None:
        """Count lines accrued in this batch (their column values) towards their contract's period cap."""
        for line in lines:
            key = (line["contract_id"], line["period"])
            if key in self._period_used and line["rule"] in PERFORMANCE_RULES:
                self._period_used[key] += line["amount"]


def eligibility(
    session: Session,
    *,
    order: OrderFacts,
    lines: Sequence[_L],
    campaign: Campaign | None,
    lookups: Lookups | None = None,
) -> tuple[list[_L], dict[int, str]]:
    """Lines whose SKU is eligible for the campaign's offer, inside its window and not excluded."""
    lookups = lookups or Lookups(session)
    offer = lookups.get(Offer, campaign.offer_id) if campaign and campaign.offer_id else None
    skus = lookups.skus(order.brand_id, [x.sku for x in lines])
    eligible: list[_L] = []
    reasons: dict[int, str] = {}
    for line in lines:
        if line.sku not in skus:
            reasons[line.line_no] = f"SKU {line.sku} is not in the catalog"
        elif offer is not None and line.sku in offer.excluded_skus:
            reasons[line.line_no] = f"SKU {line.sku} is excluded from offer {offer.code}"
        elif offer is not None and offer.eligible_skus and line.sku not in offer.eligible_skus:
            reasons[line.line_no] = f"SKU {line.sku} is not eligible for offer {offer.code}"
        elif offer is not None and not offer.starts_at <= order.ordered_at <= offer.ends_at:
            reasons[line.line_no] = f"the order is outside offer {offer.code}'s window"
        elif campaign is not None and not campaign.starts_at <= order.ordered_at:
            reasons[line.line_no] = f"the order is before campaign {campaign.slug} started"
        else:
            eligible.append(line)
    return eligible, reasons


def _inputs(
    lookups: Lookups, *, order: OrderFacts, lines: Sequence[LineFacts], terms: ContractTerms
) -> list[calc.LineInput]:
    skus = lookups.skus(order.brand_id, [x.sku for x in lines])
    result = []
    for line in lines:
        sku = skus[line.sku]
        to_order = lookups.fx(day=order.ordered_at.date(), base=sku.currency, quote=order.currency)
        price = money.from_minor(sku.price_amount, sku.currency)
        if sku.unit_cost_amount is not None:
            cost = money.from_minor(sku.unit_cost_amount, sku.currency)
        else:
            cost = price * (1 - Decimal(sku.margin_bp or 0) / 10000)
        days = terms.verification_window_days
        if days is None:
            days = default_verification_days(Decimal(sku.return_rate_bp) / 10000)
        result.append(
            calc.LineInput(
                order_line_id=line.id,
                line_no=line.line_no,
                sku=line.sku,
                quantity=line.quantity,
                net=money.from_minor(line.net_amount, order.currency),
                unit_price=price * to_order,
                unit_cost=cost * to_order,
                tier=sku.tier,
                verification_days=days,
            )
        )
    return result


def accrue(
    session: Session,
    *,
    order: Order,
    lines: list[OrderLine],
    attribution: Attribution,
    lookups: Lookups | None = None,
) -> list[CommissionLine]:
    """One commission line per eligible order line (per rule), accrued to the payee's pending balance."""
    lookups = lookups or Lookups(session)
    created = compute_lines(session, order=order, lines=lines, attribution=attribution, lookups=lookups)
    if not created:
        return []
    session.add_all(created)
    session.flush()
    ledger.post(session, accrual_transfers(order, created))
    return created


def compute_lines(
    session: Session, *, order: Order, lines: list[OrderLine], attribution: Attribution, lookups: Lookups
) -> list[CommissionLine]:
    """The commission lines of an attributed order, not yet added to the session; counted towards the
    contract's period cap in ``lookups``."""
    return [
        CommissionLine(**values)
        for values in line_values(session, order=order, lines=lines, attribution=attribution, lookups=lookups)
    ]


def line_values(
    session: Session,
    *,
    order: OrderFacts,
    lines: Sequence[LineFacts],
    attribution: AttributionFacts,
    lookups: Lookups,
) -> list[dict[str, Any]]:
    """The commission lines of an attributed order as the column values of their rows (a batch writes many
    at once, without an ORM object each, and posts their accruals together); counted towards the contract's
    period cap in ``lookups``."""
    if attribution.contract_id is None:
        return []
    contract = lookups.get(Contract, attribution.contract_id)
    assert contract is not None
    terms = lookups.terms(contract)
    campaign = lookups.get(Campaign, attribution.campaign_id) if attribution.campaign_id else None
    eligible, _ = eligibility(session, order=order, lines=lines, campaign=campaign, lookups=lookups)
    if not eligible:
        return []
    inputs = _inputs(lookups, order=order, lines=eligible, terms=terms)
    rate = lookups.fx(day=order.ordered_at.date(), base=order.currency, quote=terms.currency)
    period = period_of(order.ordered_at)
    computed = calc.compute(
        terms,
        inputs,
        is_new_customer=order.is_new_customer,
        fx=rate,
        period_cap_remaining=lookups.period_remaining(contract, terms, period),
    )
    version = lookups.version(contract.template_version_id)
    payee_type, payee_id = payee_of(contract)
    by_line = {x.id: x for x in eligible}
    per_order_days = max(x.verification_days for x in inputs)
    created = []
    for item in computed:
        line = by_line[item.line.order_line_id]
        days = per_order_days if item.rule == "cpa_order" else item.line.verification_days
        created.append(
            {
                "key": f"line:{line.id}:attr:{attribution.id}:{item.rule}",
                "brand_id": order.brand_id,
                "order_id": order.id,
                "order_line_id": line.id,
                "line_no": line.line_no,
                "sku": line.sku,
                "attribution_id": attribution.id,
                "contract_id": contract.id,
                "contract_version": version,
                "creator_id": attribution.creator_id,
                "payee_type": payee_type,
                "payee_id": payee_id,
                "rule": item.rule,
                "period": period,
                "tier": item.tier,
                "rate": str(item.rate),
                "customer_type": item.customer_type,
                "quantity": line.quantity,
                "order_currency": order.currency,
                "net_revenue_amount": line.net_amount,
                "gross_margin_amount": money.to_minor(item.line.gross_margin, order.currency),
                "unit_price_amount": money.to_minor(item.line.unit_price, order.currency),
                "unit_cost_amount": money.to_minor(item.line.unit_cost, order.currency),
                "fx_rate": str(rate),
                "currency": terms.currency,
                "amount": item.amount,
                "note": item.note,
                "earned_at": order.ordered_at,
                "eligible_at": order.ordered_at + dt.timedelta(days=days),
            }
        )
    lookups.accrued(created)
    return created


def post_accruals(session: Session, accrued: list[tuple[Order, list[CommissionLine]]]) -> None:
    """Post the accruals of many orders' new commission lines (already written, with their ids) in one ledger
    call."""
    ledger.post(session, [t for order, created in accrued for t in accrual_transfers(order, created)])


def accrual_transfer(order: OrderFacts, values: Mapping[str, Any]) -> ledger.Transfer:
    """`accrual_transfers` for one written line given as its column values (with its ``id``)."""
    return ledger.Transfer(
        key=f"commission.accrued:{values['id']}",
        kind="commission.accrued",
        debit=account_of(values, ledger.EXPENSE),
        credit=account_of(values, ledger.PENDING),
        amount=values["amount"],
        commission_line_id=values["id"],
        memo=f"order {order.external_id} line {values['line_no']} {values['rule']}",
        effective_at=order.ordered_at,
    )


def accrual_transfers(order: Order, created: list[CommissionLine]) -> list[ledger.Transfer]:
    """brand expense → payee pending for each new line (the lines must have their ids: flushed)."""
    return [
        ledger.Transfer(
            key=f"commission.accrued:{c.id}",
            kind="commission.accrued",
            debit=account(c, ledger.EXPENSE),
            credit=account(c, ledger.PENDING),
            amount=c.amount,
            commission_line_id=c.id,
            memo=f"order {order.external_id} line {c.line_no} {c.rule}",
            effective_at=order.ordered_at,
        )
        for c in created
    ]


def reverse(
    session: Session,
    *,
    order: Order,
    refund: Refund,
    applied: list[tuple[OrderLine, int]],
    attribution_id: int | None = None,
    preloaded: Preloaded | None = None,
) -> list[tuple[CommissionLine, int]]:
    """Reverse each commission line in proportion to the refunded share of its line (a per-order CPA: of the
    order's eligible net revenue); inside the window from pending, after it as a clawback from available.

    A batch of refunds passes ``preloaded``: the order's current attribution, commission lines and order lines
    read for the whole batch, and a list the ledger transfers are added to (posted once for the batch, in
    order) instead of being posted here."""
    refunded_now: dict[int, int] = defaultdict(int)
    for line, amount in applied:
        refunded_now[line.id] += amount
    if preloaded is not None:
        current = preloaded.attribution_id
        commission_lines = preloaded.commission_lines
    else:
        current = attribution_id or session.scalar(
            select(Attribution.id).where(Attribution.order_id == order.id, Attribution.is_current.is_(True))
        )
        commission_lines = list(
            session.scalars(
                select(CommissionLine)
                .where(CommissionLine.order_id == order.id, CommissionLine.attribution_id == current)
                .order_by(CommissionLine.id)
            )
        )
    return _take_back(
        session,
        order=order,
        commission_lines=commission_lines,
        attribution_id=current,
        refunded_now=refunded_now,
        at=refund.refunded_at,
        key=str(refund.id),
        memo=f"{refund.kind} {refund.external_id}",
        preloaded=preloaded,
    )


def reverse_earlier_refunds(
    session: Session, *, order: Order, commission_lines: list[CommissionLine], attribution_id: int, at: dt.datetime
) -> list[tuple[CommissionLine, int]]:
    """Lines accrued after part of the order was already refunded (a re-attribution) give back the refunded
    share at once, exactly as if they had been there for every refund: amount × refunded ÷ net, half-up."""
    refunded = {
        line.id: line.refunded_amount
        for line in session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))
        if line.refunded_amount > 0
    }
    if not refunded:
        return []
    return _take_back(
        session,
        order=order,
        commission_lines=commission_lines,
        attribution_id=attribution_id,
        refunded_now=refunded,
        at=at,
        key="earlier-refunds",
        memo="refunded before re-attribution",
        clear_late=False,
    )


def _take_back(
    session: Session,
    *,
    order: Order,
    commission_lines: list[CommissionLine],
    attribution_id: int | None,
    refunded_now: dict[int, int],
    at: dt.datetime,
    key: str,
    memo: str,
    clear_late: bool = True,
    preloaded: Preloaded | None = None,
) -> list[tuple[CommissionLine, int]]:
    """Take back each line's share of ``refunded_now``. A line past its window that the clearing job has not
    reached yet is cleared first when ``clear_late`` (a refund after the window is a clawback)."""
    if not commission_lines:
        return []
    if preloaded is not None:
        order_lines = {x.id: x for x in preloaded.order_lines}
    else:
        order_lines = {x.id: x for x in session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))}
    eligible_ids: list[int] = []
    if any(c.rule == "cpa_order" for c in commission_lines):
        # A per-order CPA is earned by the order as a whole, so its base is the net revenue of every line
        # that was eligible for the offer — not only the line it happens to be recorded on.
        lookups = preloaded.lookups if preloaded is not None else Lookups(session)
        attribution = lookups.get(Attribution, attribution_id) if attribution_id else None
        campaign = lookups.get(Campaign, attribution.campaign_id) if attribution and attribution.campaign_id else None
        eligible, _ = eligibility(
            session, order=order, lines=list(order_lines.values()), campaign=campaign, lookups=lookups
        )
        eligible_ids = [x.id for x in eligible]
    transfers, taken = [], []
    for c in commission_lines:
        if c.rule == "cpa_order":
            base = sum(order_lines[i].net_amount for i in eligible_ids)
            now_amount = sum(refunded_now.get(i, 0) for i in eligible_ids)
            total = sum(order_lines[i].refunded_amount for i in eligible_ids)
        else:
            line = order_lines[c.order_line_id]  # type: ignore[index]
            base, now_amount, total = line.net_amount, refunded_now.get(line.id, 0), line.refunded_amount
        amount = calc.reversal(c.amount, c.reversed_amount, now_amount, total, base)
        if amount <= 0:
            continue
        after_window = c.cleared_at is not None or (clear_late and at >= c.eligible_at)
        if after_window and c.cleared_at is None:
            # Clear what was earned before taking the refund's share back, so the whole line leaves pending
            # and the clawback comes out of available; clearing after the reversal stranded it in pending.
            _clear(session, [c], now=at, sink=preloaded.transfers if preloaded is not None else None)
        c.reversed_amount += amount
        source = ledger.AVAILABLE if after_window else ledger.PENDING
        kind = "commission.clawed_back" if after_window else "commission.reversed"
        transfers.append(
            ledger.Transfer(
                key=f"{kind}:{c.id}:{key}",
                kind=kind,
                debit=account(c, source),
                credit=account(c, ledger.EXPENSE),
                amount=amount,
                commission_line_id=c.id,
                effective_at=at,
                memo=f"{memo}: {money.format_minor(amount, c.currency)} {c.currency}",
            )
        )
        taken.append((c, amount))
    if preloaded is not None:
        preloaded.transfers.extend(transfers)
    else:
        ledger.post(session, transfers)
    return taken


def _reserve_pct(session: Session, contract_id: int, cache: dict[int, tuple[Decimal, int]]) -> tuple[Decimal, int]:
    if contract_id not in cache:
        contract = session.get(Contract, contract_id)
        terms = ContractTerms.model_validate(contract.terms)  # type: ignore[union-attr]
        cache[contract_id] = (terms.reserve_pct, terms.reserve_release_days)
    return cache[contract_id]


def _clear(
    session: Session, lines: list[CommissionLine], *, now: dt.datetime, sink: list[ledger.Transfer] | None = None
) -> int:
    transfers: list[ledger.Transfer] = []
    reserves: dict[int, tuple[Decimal, int]] = {}
    for c in lines:
        remaining = c.amount - c.reversed_amount
        pct, days = _reserve_pct(session, c.contract_id, reserves)
        held = money.round_units(Decimal(remaining) * pct / 100) if pct else 0
        c.cleared_at = now
        c.reserve_amount = held
        c.reserve_release_at = c.eligible_at + dt.timedelta(days=days) if held else None
        transfers.append(
            ledger.Transfer(
                key=f"commission.cleared:{c.id}",
                kind="commission.cleared",
                debit=account(c, ledger.PENDING),
                credit=account(c, ledger.AVAILABLE),
                amount=remaining - held,
                commission_line_id=c.id,
                effective_at=c.eligible_at,
                memo="verification window ended",
            )
        )
        if held:
            transfers.append(
                ledger.Transfer(
                    key=f"reserve.held:{c.id}",
                    kind="reserve.held",
                    debit=account(c, ledger.PENDING),
                    credit=account(c, ledger.RESERVE),
                    amount=held,
                    commission_line_id=c.id,
                    effective_at=c.eligible_at,
                    memo=f"rolling reserve {pct} % until {c.reserve_release_at:%Y-%m-%d}",
                )
            )
    if sink is not None:
        sink.extend(transfers)
    else:
        ledger.post(session, transfers)
    return len(lines)


def clear_due(
    session: Session, *, now: dt.datetime | None = None, brand_id: int | None = None, batch: int = 5000
) -> int:
    """Move every line whose verification window has ended from pending to available (set-based, batched)."""
    now = now or utcnow()
    cleared = 0
    while True:
        stmt = (
            select(CommissionLine)
            .where(CommissionLine.cleared_at.is_(None), CommissionLine.eligible_at <= now)
            .order_by(CommissionLine.id)
            .limit(batch)
        )
        if brand_id is not None:
            stmt = stmt.where(CommissionLine.brand_id == brand_id)
        lines = list(session.scalars(stmt))
        if not lines:
            return cleared
        cleared += _clear(session, lines, now=now)
        session.flush()


def release_reserves(session: Session, *, now: dt.datetime | None = None, brand_id: int | None = None) -> int:
    """Release held reserves whose date has come: reserve → available."""
    now = now or utcnow()
    stmt = select(CommissionLine).where(
        CommissionLine.reserve_amount > 0,
        CommissionLine.reserve_released_at.is_(None),
        CommissionLine.reserve_release_at <= now,
    )
    if brand_id is not None:
        stmt = stmt.where(CommissionLine.brand_id == brand_id)
    lines = list(session.scalars(stmt))
    ledger.post(
        session,
        [
            ledger.Transfer(
                key=f"reserve.released:{c.id}",
                kind="reserve.released",
                debit=account(c, ledger.RESERVE),
                credit=account(c, ledger.AVAILABLE),
                amount=c.reserve_amount,
                commission_line_id=c.id,
                effective_at=c.reserve_release_at,
                memo="reserve released",
            )
            for c in lines
        ],
    )
    for c in lines:
        c.reserve_released_at = now
    return len(lines)


def lines_for_order(session: Session, order_id: int) -> list[CommissionLine]:
    return list(
        session.scalars(select(CommissionLine).where(CommissionLine.order_id == order_id).order_by(CommissionLine.id))
    )


def mark_superseded(session: Session, attribution_id: int) -> None:
    session.execute(update(Attribution).where(Attribution.id == attribution_id).values(is_current=False))

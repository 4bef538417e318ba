"""Explain any commission: order → attribution reason → rule → contract version → rate → amount → ledger."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.auth.scope import brand_filter
from clearline.commission.service import eligibility
from clearline.contract.repository import agency_brand_ids
from clearline.kit.errors import NotFoundError
from clearline.kit.money import format_minor
from clearline.ledger import service as ledger
from clearline.models import (
    Attribution,
    Campaign,
    CommissionLine,
    Contract,
    ContractAcceptance,
    Order,
    OrderLine,
    RosterEntry,
)

READERS = ("finance", "legal", "marketing", "social_ops", "brand_steward")


def readable_lines(actor: Actor):  # type: ignore[no-untyped-def]
    clauses = [brand_filter(actor, CommissionLine.brand_id, READERS)]
    if actor.creator_id is not None:
        clauses.append(CommissionLine.creator_id == actor.creator_id)
    if actor.agency_id is not None:
        clauses.append((CommissionLine.payee_type == "agency") & (CommissionLine.payee_id == actor.agency_id))
        roster = select(RosterEntry.creator_id).where(RosterEntry.agency_id == actor.agency_id)
        # Only with the brands the agency works for: a roster creator's own sales elsewhere are not its business.
        brands = agency_brand_ids(actor.agency_id)
        clauses.append(CommissionLine.creator_id.in_(roster) & CommissionLine.brand_id.in_(brands))
    return or_(*clauses)


def _rule_text(c: CommissionLine) -> str:
    money = format_minor
    if c.rule == "cpa_unit":
        return f"CPA per unit, tier {c.tier} ({c.customer_type} customer): {c.rate} {c.currency} × {c.quantity}"
    if c.rule == "cpa_order":
        return f"CPA per order, tier {c.tier} ({c.customer_type} customer): {c.rate} {c.currency} once"
    if c.rule == "revshare_net_revenue":
        return (
            f"Rev share {c.rate} % of net revenue {money(c.net_revenue_amount, c.order_currency)} "
            f"{c.order_currency} × FX {c.fx_rate}"
        )
    if c.rule == "revshare_gross_margin":
        return (
            f"Rev share {c.rate} % of gross margin {money(c.gross_margin_amount, c.order_currency)} "
            f"{c.order_currency} (net {money(c.net_revenue_amount, c.order_currency)} − {c.quantity} × unit cost "
            f"{money(c.unit_cost_amount, c.order_currency)}) × FX {c.fx_rate}"
        )
    return f"{c.rule} at {c.rate}"


def explain_line(session: Session, actor: Actor, line_id: int) -> dict[str, Any]:
    c = session.scalar(select(CommissionLine).where(CommissionLine.id == line_id, readable_lines(actor)))
    if c is None:
        raise NotFoundError(f"no commission line {line_id}")
    order = session.get(Order, c.order_id) if c.order_id else None
    attribution = session.get(Attribution, c.attribution_id) if c.attribution_id else None
    acceptance = session.scalar(select(ContractAcceptance).where(ContractAcceptance.contract_id == c.contract_id))
    order_line = session.get(OrderLine, c.order_line_id) if c.order_line_id else None
    return {
        "commission_line_id": c.id,
        "order": None
        if order is None
        else {
            "order_id": order.external_id,
            "created_at": order.ordered_at,
            "currency": order.currency,
            "line_no": c.line_no,
            "sku": c.sku,
            "quantity": c.quantity,
            "net_revenue": format_minor(c.net_revenue_amount, c.order_currency),
            "refunded": format_minor(order_line.refunded_amount, c.order_currency) if order_line else "0",
        },
        "attribution": None
        if attribution is None
        else {
            "via": attribution.via,
            "reason": attribution.reason,
            "conflict": attribution.conflict,
            "is_current": attribution.is_current,
        },
        "rule": {
            "rule": c.rule,
            "tier": c.tier,
            "rate": c.rate,
            "customer_type": c.customer_type,
            "text": _rule_text(c),
            "note": c.note,
        },
        "contract": {
            "contract_id": c.contract_id,
            "version": c.contract_version,
            "accepted_at": acceptance.accepted_at if acceptance else None,
        },
        "amount": format_minor(c.amount, c.currency),
        "reversed": format_minor(c.reversed_amount, c.currency),
        "net": format_minor(c.amount - c.reversed_amount, c.currency),
        "currency": c.currency,
        "payee": {"type": c.payee_type, "id": c.payee_id},
        "eligible_at": c.eligible_at,
        "cleared_at": c.cleared_at,
        "ledger": [
            {
                **t,
                "postings": [
                    {"account": code, "amount": format_minor(amount, c.currency)}
                    for code, amount in cast("list[tuple[str, int]]", t["postings"])
                ],
            }
            for t in ledger.transfers_for_line(session, c.id)
        ],
    }


def explain_order(session: Session, actor: Actor, *, brand_id: int, order_id: str) -> dict[str, Any]:
    """The whole order: every line, why it did or did not earn, and each commission's explanation."""
    order = session.scalar(
        select(Order).where(
            Order.brand_id == brand_id, Order.external_id == order_id, brand_filter(actor, Order.brand_id, READERS)
        )
    )
    if order is None:
        raise NotFoundError(f"no order {order_id}")
    lines = list(session.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.line_no)))
    attributions = list(
        session.scalars(select(Attribution).where(Attribution.order_id == order.id).order_by(Attribution.id))
    )
    current = next((a for a in attributions if a.is_current), None)
    campaign = session.get(Campaign, current.campaign_id) if current and current.campaign_id else None
    if current is None or current.creator_id is None:
        reasons = {x.line_no: "the order is not attributed to a creator" for x in lines}
    elif current.contract_id is None:
        reasons = {x.line_no: "the creator had no accepted contract at order time" for x in lines}
    else:
        _, reasons = eligibility(session, order=order, lines=lines, campaign=campaign)
    commission_ids = list(
        session.scalars(
            select(CommissionLine.id).where(CommissionLine.order_id == order.id).order_by(CommissionLine.id)
        )
    )
    contract = session.get(Contract, current.contract_id) if current and current.contract_id else None
    return {
        "order_id": order.external_id,
        "created_at": order.ordered_at,
        "currency": order.currency,
        "source": order.source,
        "lines": [
            {
                "line_no": x.line_no,
                "sku": x.sku,
                "quantity": x.quantity,
                "net_revenue": format_minor(x.net_amount, order.currency),
                "refunded": format_minor(x.refunded_amount, order.currency),
                "ineligible_reason": reasons.get(x.line_no, ""),
            }
            for x in lines
        ],
        "attributions": [
            {
                "id": a.id,
                "via": a.via,
                "reason": a.reason,
                "is_current": a.is_current,
                "created_by": a.created_by,
                "conflict": a.conflict,
            }
            for a in attributions
        ],
        "contract_id": contract.id if contract else None,
        "commissions": [explain_line(session, actor, i) for i in commission_ids],
    }

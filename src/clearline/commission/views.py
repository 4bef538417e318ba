"""Read models for finance's order pages: the orders with their attribution and commission totals, and one
order's explanation (order → attribution → rule → contract version → rate → amount → ledger). No queries
here: everything comes from the scoped commission repository and the explain service."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.commission import explain, repository
from clearline.contract import repository as contract_repository
from clearline.creator import repository as creator_repository
from clearline.kit.errors import NotFoundError
from clearline.models import Attribution, Brand, Order

PAGE_SIZE = 100


@dataclass
class OrderRow:
    order: Order
    attribution: Attribution | None
    creator: str | None
    earned: int
    reversed: int
    currency: str  # the commissions' (contract) currency; the order's when nothing was earned

    @property
    def net(self) -> int:
        return self.earned - self.reversed


@dataclass
class OrdersView:
    brands: list[Brand]
    brand: Brand | None = None
    rows: list[OrderRow] = field(default_factory=list)
    page: int = 1
    has_next: bool = False


@dataclass
class OrderExplain:
    brand: Brand
    order_id: str
    created_at: dt.datetime | None
    currency: str
    source: str
    is_full: bool  # staff see every line and attribution; a payee only its own commissions
    lines: list[dict[str, Any]] = field(default_factory=list)
    attributions: list[dict[str, Any]] = field(default_factory=list)
    commissions: list[dict[str, Any]] = field(default_factory=list)
    payees: dict[tuple[str, int], str] = field(default_factory=dict)

    @property
    def current(self) -> dict[str, Any] | None:
        return next((a for a in self.attributions if a.get("is_current")), None)


def _handles(session: Session, actor: Actor) -> dict[int, str]:
    return {c.id: "@" + c.handle for c in creator_repository.list_creators(session, actor)}


def orders(session: Session, actor: Actor, *, brand_id: int | None, page: int = 1) -> OrdersView:
    """One brand's orders, newest first, a page at a time (the first brand the user may read when none is named)."""
    brands = [
        b for b in brand_repository.list_brands(session, actor) if actor.has_any((*explain.READERS, "admin"), b.id)
    ]
    if brand_id is None:
        if not brands:
            return OrdersView(brands=brands)
        brand = brands[0]
    else:
        brand = brand_repository.get(session, actor, brand_id)
    actor.require(*explain.READERS, brand_id=brand.id)
    page = max(page, 1)
    found = repository.list_orders(
        session, actor, brand_id=brand.id, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
    )
    handles = _handles(session, actor)
    currencies = {c.id: c.currency for c, _, _ in contract_repository.list_contracts(session, actor, brand_id=brand.id)}
    rows = []
    for order, attribution, earned, reversed_ in found[:PAGE_SIZE]:
        creator_id = attribution.creator_id if attribution else None
        contract_id = attribution.contract_id if attribution else None
        rows.append(
            OrderRow(
                order=order,
                attribution=attribution,
                creator=None if creator_id is None else handles.get(creator_id, f"creator #{creator_id}"),
                earned=earned,
                reversed=reversed_,
                currency=currencies.get(contract_id or 0, order.currency),
            )
        )
    return OrdersView(brands=brands, brand=brand, rows=rows, page=page, has_next=len(found) > PAGE_SIZE)


def _payees(session: Session, actor: Actor) -> dict[tuple[str, int], str]:
    names: dict[tuple[str, int], str] = {("creator", i): h for i, h in _handles(session, actor).items()}
    names.update({("agency", a.id): a.name for a in creator_repository.list_agencies(session, actor)})
    return names


def order_explain(session: Session, actor: Actor, *, brand_id: int, order_id: str) -> OrderExplain:
    """Explain one order. Staff who read the brand's orders see all of it; a creator or agency sees the
    order only through its own commissions on it, and an order with none of theirs does not exist (404)."""
    brand = brand_repository.get(session, actor, brand_id)
    if actor.has_any((*explain.READERS, "admin"), brand.id):
        data = explain.explain_order(session, actor, brand_id=brand.id, order_id=order_id)
        return OrderExplain(
            brand=brand,
            order_id=data["order_id"],
            created_at=data["created_at"],
            currency=data["currency"],
            source=data["source"],
            is_full=True,
            lines=data["lines"],
            attributions=data["attributions"],
            commissions=data["commissions"],
            payees=_payees(session, actor),
        )
    ids = repository.order_line_ids(session, actor, brand_id=brand.id, external_id=order_id)
    if not ids:
        raise NotFoundError(f"no order {order_id}")
    commissions = [explain.explain_line(session, actor, i) for i in ids]
    first = commissions[0]["order"] or {}
    attribution = commissions[0]["attribution"]
    return OrderExplain(
        brand=brand,
        order_id=order_id,
        created_at=first.get("created_at"),
        currency=first.get("currency", ""),
        source="",
        is_full=False,
        attributions=[] if attribution is None else [{**attribution, "id": None, "created_by": ""}],
        commissions=commissions,
        payees=_payees(session, actor),
    )

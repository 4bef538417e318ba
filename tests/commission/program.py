"""A small creator program for money tests: a brand with a catalog, an offer, a campaign, contracted
creators, links, clicks and coupons — and helpers that feed orders and refunds through the real
ingestion services (no HTTP), so attribution, commissions and the ledger run exactly as in production.

Dates are fixed relative to the first day of a month well before today, so month periods, attribution
windows and verification windows are easy to reason about and links can still be signed off today.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import count
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.auth import service as auth_service
from clearline.auth.actor import Actor
from clearline.campaign import service as campaign_service
from clearline.campaign.schemas import CampaignCreate
from clearline.catalog import service as catalog_service
from clearline.catalog.schemas import OfferCreate
from clearline.commission import fx
from clearline.config import get_settings
from clearline.contract import service as contract_service
from clearline.contract.schemas import ContractCreate
from clearline.contract.terms import ContractTerms
from clearline.ingest import schemas
from clearline.ingest import service as ingest
from clearline.kit.signing import Signer
from clearline.ledger import service as ledger
from clearline.link import coupon as coupon_service
from clearline.link import service as link_service
from clearline.models import (
    Attribution,
    Brand,
    Campaign,
    Click,
    CommissionLine,
    Contract,
    Creator,
    Link,
    Order,
    OrderLine,
    Refund,
    Sku,
)
from tests import factories

# Tiers a/b/c, unit costs and one margin %; return rates on both sides of the 5 % and 15 % bounds (30/60/90 days).
CATALOG = (
    "sku,name,category,tier,price,currency,unit_cost,margin_pct,return_rate_pct\n"
    "SKU-A1,Serum,skincare,a,49.00,USD,12.25,,4\n"
    "SKU-A2,Night serum,skincare,a,59.00,USD,20.00,,5\n"
    "SKU-B1,Cleanser,skincare,b,24.00,USD,,55,12\n"
    "SKU-B2,Toner,skincare,b,18.00,USD,6.00,,15\n"
    "SKU-C1,Towel,accessories,c,9.50,USD,3.10,,20\n"
    "SKU-X1,Gift card,giftcards,c,25.00,USD,25.00,,0\n"
)

CPA_UNIT = {
    "model": "cpa",
    "currency": "USD",
    "cpa": {"per": "unit", "rates": {"new": {"a": "8.00", "b": "4.00", "c": "1.00"}}},
}

_numbers = count(1)


def month_start(at: dt.datetime) -> dt.datetime:
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def signer() -> Signer:
    return Signer(get_settings().secret_key, "click-id")


@dataclass
class Program:
    db: Session
    brand: Brand
    campaign: Campaign
    ops: Actor
    finance: Actor
    start: dt.datetime  # first day of a month, about three months ago: campaign, offer and contracts begin
    creators: dict[str, Creator] = field(default_factory=dict)
    contracts: dict[str, Contract] = field(default_factory=dict)

    def at(self, days: float, hours: float = 12) -> dt.datetime:
        """A moment ``days`` after the program started (noon by default)."""
        return self.start + dt.timedelta(days=days, hours=hours)

    # --- people and contracts -------------------------------------------------------------------------

    def creator(
        self, handle: str, *, terms: dict[str, Any] | None = None, accept: bool = True, contracted: bool = True
    ) -> Creator:
        creator = factories.creator(self.db, self.brand.id, handle=handle)
        self.creators[handle] = creator
        if contracted:
            self.contract(handle, terms=terms or CPA_UNIT, accept=accept)
        return creator

    def contract(self, handle: str, *, terms: dict[str, Any], accept: bool = True) -> Contract:
        creator = self.creators[handle]
        contract = contract_service.create_contract(
            self.db,
            factories.SYSTEM,
            brand_id=self.brand.id,
            data=ContractCreate(
                creator_id=creator.id,
                template_version_id=factories.template_version_id(self.db, self.brand.id),
                terms=ContractTerms.model_validate(terms),
                starts_at=self.start,
            ),
        )
        if accept:
            user = factories.user(self.db, ("creator", self.brand.id), creator_id=creator.id, password=None)
            contract_service.accept_contract(self.db, auth_service.actor_for(self.db, user), contract_id=contract.id)
        self.contracts[handle] = contract
        return contract

    # --- tracking -------------------------------------------------------------------------------------

    def link(self, handle: str) -> Link:
        link = link_service.issue_link(
            self.db,
            self.ops,
            campaign_id=self.campaign.id,
            creator_id=self.creators[handle].id,
            channel="instagram",
            destination_url="https://shop.example.com/p",
        )
        return link_service.sign_off(self.db, self.ops, link_id=link.id)

    def click(self, link: Link, *, at: dt.datetime, is_bot: bool = False, raw: str | None = None) -> str:
        """Log a click on ``link`` (as the redirect's writer would) and return its signed click id."""
        raw = raw or f"CLK{next(_numbers):010d}"
        self.db.add(
            Click(
                click_id=raw,
                link_id=link.id,
                at=at,
                ip_hash="ip",
                user_agent="Googlebot/2.1" if is_bot else "Mozilla/5.0",
                is_bot=is_bot,
                outcome="live",
            )
        )
        self.db.flush()
        return signer().sign(raw)

    def coupon(self, handle: str) -> str:
        code = coupon_service.issue_creator_code(
            self.db, self.ops, campaign_id=self.campaign.id, creator_id=self.creators[handle].id
        )
        return code.code

    def fx(self, day: dt.date, base: str, quote: str, rate: str) -> None:
        fx.import_rates(
            self.db, factories.SYSTEM, data=f"day,base,quote,rate\n{day.isoformat()},{base},{quote},{rate}\n"
        )

    # --- events ---------------------------------------------------------------------------------------

    def order(
        self,
        order_id: str | None = None,
        *,
        at: dt.datetime,
        lines: list[tuple[str, int, str] | tuple[str, int, str, str]],
        currency: str = "USD",
        coupon: str | list[str] | None = None,
        click_id: str | None = None,
        landing_url: str | None = None,
        new_customer: bool | None = True,
        shipping: str = "0",
        tax: str = "0",
    ) -> Order:
        """Apply an order postback; ``lines`` are (sku, quantity, unit price[, discount])."""
        data = schemas.OrderIn(
            order_id=order_id or f"O-{next(_numbers)}",
            created_at=at,
            currency=currency,
            customer=schemas.CustomerIn(id="c-1", new_customer=new_customer),
            click_id=click_id,
            coupon_codes=[coupon] if isinstance(coupon, str) else coupon or [],
            landing_url=landing_url,
            lines=[
                schemas.OrderLineIn(
                    sku=x[0],
                    quantity=x[1],
                    unit_price=Decimal(x[2]),
                    discount=Decimal(x[3]) if len(x) > 3 else Decimal(0),  # type: ignore[misc]
                )
                for x in lines
            ],
            shipping=Decimal(shipping),
            tax=Decimal(tax),
        )
        return ingest.apply_order(self.db, brand=self.brand, data=data, source="postback", event_id=None)

    def refund(
        self,
        order: Order,
        *,
        at: dt.datetime,
        lines: list[tuple[str, str]],
        kind: str = "return",
        refund_id: str | None = None,
    ) -> Refund:
        """Apply a refund postback; ``lines`` are (sku, amount)."""
        data = schemas.RefundIn(
            refund_id=refund_id or f"R-{next(_numbers)}",
            order_id=order.external_id,
            created_at=at,
            kind=kind,  # type: ignore[arg-type]
            lines=[schemas.RefundLineIn(sku=sku, quantity=0, amount=Decimal(amount)) for sku, amount in lines],
        )
        return ingest.apply_refund(self.db, brand=self.brand, data=data, event_id=None)

    # --- reading back ---------------------------------------------------------------------------------

    def attribution(self, order: Order) -> Attribution:
        found = self.db.scalar(
            select(Attribution).where(Attribution.order_id == order.id, Attribution.is_current.is_(True))
        )
        assert found is not None
        return found

    def lines(self, order: Order, *, current_only: bool = True) -> list[CommissionLine]:
        stmt = select(CommissionLine).where(CommissionLine.order_id == order.id).order_by(CommissionLine.id)
        if current_only:
            stmt = stmt.where(CommissionLine.attribution_id == self.attribution(order).id)
        return list(self.db.scalars(stmt))

    def amounts(self, order: Order) -> dict[tuple[int, str], int]:
        return {(c.line_no, c.rule): c.amount for c in self.lines(order)}

    def order_lines(self, order: Order) -> list[OrderLine]:
        return list(self.db.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)))

    def sku(self, code: str) -> Sku:
        found = self.db.scalar(select(Sku).where(Sku.brand_id == self.brand.id, Sku.sku == code))
        assert found is not None
        return found

    def account(self, handle: str, kind: str, currency: str = "USD") -> ledger.Account:
        return ledger.Account(self.brand.id, "creator", self.creators[handle].id, kind, currency)

    def balance(self, handle: str, kind: str, currency: str = "USD") -> int:
        return ledger.balance(self.db, self.account(handle, kind, currency))

    def expense(self, currency: str = "USD") -> int:
        return ledger.balance(self.db, ledger.Account(self.brand.id, "brand", self.brand.id, ledger.EXPENSE, currency))


def build(
    db: Session,
    *,
    eligible: list[str] | None = None,
    excluded: list[str] | None = None,
    offer_days: int | None = None,
    catalog: str = CATALOG,
) -> Program:
    """A brand, its catalog, an offer (all SKUs by default) and a campaign that started ~3 months ago."""
    brand = factories.brand(db, domains=("shop.example.com",))
    factories.skus(db, brand.id, catalog)
    start = month_start(dt.datetime.now(dt.UTC) - dt.timedelta(days=75))
    codes = [line.split(",")[0] for line in catalog.strip().splitlines()[1:]]
    offer = catalog_service.create_offer(
        db,
        factories.SYSTEM,
        brand_id=brand.id,
        data=OfferCreate(
            code=f"OFFER-{next(_numbers)}",
            name="Launch offer",
            starts_at=start,
            ends_at=start + dt.timedelta(days=offer_days) if offer_days else start + dt.timedelta(days=240),
            eligible_skus=eligible or codes,
            excluded_skus=excluded or [],
        ),
    )
    campaign = campaign_service.create_campaign(
        db,
        factories.SYSTEM,
        brand_id=brand.id,
        data=CampaignCreate(
            slug="spring",
            name="Spring",
            offer_id=offer.id,
            payment_model="cpa",
            starts_at=start,
            ends_at=start + dt.timedelta(days=240),
            fallback_url="https://shop.example.com/",
        ),
    )
    ops = factories.actor(db, ("social_ops", brand.id), ("marketing", brand.id))
    finance = factories.actor(db, ("finance", brand.id))
    return Program(db=db, brand=brand, campaign=campaign, ops=ops, finance=finance, start=start)

"""A creator program to pay out: a brand with a catalog and a campaign that began about four months ago,
contracted creators (and agencies) with coupon codes, two finance users — and helpers that feed orders and
refunds through the real ingestion services, so attribution, commissions, clearing and the ledger run
exactly as in production before a payout run reads them.

Every contract here has a fixed 10-day verification window, so an order on day ``d`` clears on ``d + 10``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import count
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clearline.auth import service as auth_service
from clearline.auth.actor import Actor
from clearline.campaign import service as campaign_service
from clearline.campaign.schemas import CampaignCreate
from clearline.commission import fx
from clearline.config import get_settings
from clearline.contract import service as contract_service
from clearline.contract.schemas import ContractCreate
from clearline.contract.terms import ContractTerms
from clearline.creator import service as creator_service
from clearline.creator.schemas import AgencyCreate
from clearline.ingest import schemas
from clearline.ingest import service as ingest
from clearline.kit.signing import Signer
from clearline.ledger import service as ledger
from clearline.link import coupon as coupon_service
from clearline.link import service as link_service
from clearline.models import (
    Brand,
    Campaign,
    Click,
    CommissionLine,
    LedgerEntry,
    LedgerPosting,
    Link,
    Order,
    PayoutItem,
    PayoutLine,
    PayoutRun,
    Refund,
    User,
)
from clearline.payout import service as payout_service
from tests import factories

CATALOG = (
    "sku,name,category,tier,price,currency,unit_cost,margin_pct,return_rate_pct\n"
    "SKU-A1,Serum,skincare,a,49.00,USD,12.25,,4\n"
    "SKU-B1,Cleanser,skincare,b,24.00,USD,,55,12\n"
    "SKU-C1,Towel,accessories,c,9.50,USD,3.10,,20\n"
)
WINDOW_DAYS = 10


def cpa(currency: str = "USD", a: str = "8.00", b: str = "4.00", c: str = "1.00", **extra: Any) -> dict[str, Any]:
    """CPA per unit by tier, in ``currency``, with the program's 10-day verification window."""
    return {
        "model": "cpa",
        "currency": currency,
        "cpa": {"per": "unit", "rates": {"new": {"a": a, "b": b, "c": c}}},
        "verification_window_days": WINDOW_DAYS,
        **extra,
    }


_numbers = count(1)


@dataclass
class Payee:
    """A creator (or an agency's roster creator) who sells with a coupon code."""

    handle: str
    creator_id: int
    contract_id: int
    coupon: str
    user: User
    payee_type: str = "creator"
    payee_id: int = 0
    currency: str = "USD"

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.payee_type, self.payee_id, self.currency)


@dataclass
class Program:
    db: Session
    brand: Brand
    campaign: Campaign
    ops: Actor
    finance: Actor  # creates runs
    finance2: Actor  # approves them (four eyes)
    finance_user: User
    finance2_user: User
    start: dt.datetime
    payees: dict[str, Payee] = field(default_factory=dict)

    def at(self, day: float, hour: float = 12) -> dt.datetime:
        """``day`` days after the program started, at noon by default (day 0 is about 120 days ago)."""
        return self.start + dt.timedelta(days=day, hours=hour)

    # --- people ---------------------------------------------------------------------------------------

    def creator(self, handle: str, *, terms: dict[str, Any] | None = None) -> Payee:
        """A creator with an accepted contract of its own and a coupon code."""
        creator = factories.creator(self.db, self.brand.id, handle=handle)
        user = factories.user(self.db, ("creator", self.brand.id), creator_id=creator.id, password=None)
        terms = terms or cpa()
        contract = self._contract(terms, creator_id=creator.id)
        contract_service.accept_contract(self.db, auth_service.actor_for(self.db, user), contract_id=contract.id)
        payee = Payee(
            handle, creator.id, contract.id, self._coupon(creator.id), user, "creator", creator.id, terms["currency"]
        )
        self.payees[handle] = payee
        return payee

    def agency(self, name: str, handles: list[str], *, terms: dict[str, Any] | None = None) -> tuple[int, User]:
        """An agency with an accepted contract whose roster creators sell with their own coupons."""
        agency = creator_service.create_agency(
            self.db, factories.SYSTEM, brand_id=self.brand.id, data=AgencyCreate(name=name)
        )
        creators = [factories.creator(self.db, self.brand.id, handle=h) for h in handles]
        creator_service.import_roster(
            self.db, factories.SYSTEM, agency_id=agency.id, data="handle\n" + "\n".join(handles) + "\n"
        )
        user = factories.user(self.db, ("agency", self.brand.id), agency_id=agency.id, password=None)
        terms = terms or cpa()
        contract = self._contract(terms, agency_id=agency.id)
        contract_service.accept_contract(self.db, auth_service.actor_for(self.db, user), contract_id=contract.id)
        for handle, creator in zip(handles, creators, strict=True):
            creator_user = factories.user(self.db, ("creator", self.brand.id), creator_id=creator.id, password=None)
            self.payees[handle] = Payee(
                handle,
                creator.id,
                contract.id,
                self._coupon(creator.id),
                creator_user,
                "agency",
                agency.id,
                terms["currency"],
            )
        return agency.id, user

    def actor(self, handle: str) -> Actor:
        """The creator's own portal identity."""
        return auth_service.actor_for(self.db, self.payees[handle].user)

    def _contract(self, terms: dict[str, Any], *, creator_id: int | None = None, agency_id: int | None = None):  # type: ignore[no-untyped-def]
        return contract_service.create_contract(
            self.db,
            factories.SYSTEM,
            brand_id=self.brand.id,
            data=ContractCreate(
                creator_id=creator_id,
                agency_id=agency_id,
                template_version_id=factories.template_version_id(self.db, self.brand.id),
                terms=ContractTerms.model_validate(terms),
                starts_at=self.start,
            ),
        )

    def _coupon(self, creator_id: int) -> str:
        return coupon_service.issue_creator_code(
            self.db, self.ops, campaign_id=self.campaign.id, creator_id=creator_id
        ).code

    def link(self, handle: str) -> Link:
        """The creator's signed-off link on the campaign (it goes live today)."""
        link = link_service.issue_link(
            self.db,
            self.ops,
            campaign_id=self.campaign.id,
            creator_id=self.payees[handle].creator_id,
            channel="instagram",
            destination_url="https://shop.example.com/p",
        )
        return link_service.sign_off(self.db, self.ops, link_id=link.id)

    def click(self, link: Link, *, day: float) -> str:
        """A human click on ``link`` as the redirect's writer logs it; returns the signed click id."""
        raw = f"CLK{next(_numbers):010d}"
        self.db.add(
            Click(
                click_id=raw,
                link_id=link.id,
                at=self.at(day, hour=11),
                ip_hash="ip",
                user_agent="Mozilla/5.0",
                outcome="live",
            )
        )
        self.db.flush()
        return Signer(get_settings().secret_key, "click-id").sign(raw)

    def fx(self, base: str, quote: str, rate: str) -> None:
        day = self.start.date().isoformat()
        fx.import_rates(self.db, factories.SYSTEM, data=f"day,base,quote,rate\n{day},{base},{quote},{rate}\n")

    # --- events ---------------------------------------------------------------------------------------

    def order(
        self,
        handle: str | None,
        *,
        day: float,
        lines: list[tuple[str, int, str]] | None = None,
        order_id: str | None = None,
        click_id: str | None = None,
    ) -> Order:
        """A USD order with ``handle``'s coupon (or only ``click_id``); ``lines`` are (sku, quantity, unit price)."""
        data = schemas.OrderIn(
            order_id=order_id or f"O-{next(_numbers)}",
            created_at=self.at(day),
            currency="USD",
            customer=schemas.CustomerIn(id=f"c-{next(_numbers)}", new_customer=True),
            coupon_codes=[self.payees[handle].coupon] if handle else [],
            click_id=click_id,
            lines=[
                schemas.OrderLineIn(sku=s, quantity=q, unit_price=Decimal(p))
                for s, q, p in (lines or [("SKU-A1", 1, "49.00")])
            ],
        )
        return ingest.apply_order(self.db, brand=self.brand, data=data, source="postback", event_id=None)

    def refund(self, order: Order, *, day: float, lines: list[tuple[str, str]], kind: str = "return") -> Refund:
        """A return or chargeback; ``lines`` are (sku, amount)."""
        data = schemas.RefundIn(
            refund_id=f"R-{next(_numbers)}",
            order_id=order.external_id,
            created_at=self.at(day),
            kind=kind,  # type: ignore[arg-type]
            lines=[schemas.RefundLineIn(sku=sku, quantity=1, amount=Decimal(amount)) for sku, amount in lines],
        )
        return ingest.apply_refund(self.db, brand=self.brand, data=data, event_id=None)

    # --- runs -----------------------------------------------------------------------------------------

    def run(self, *, day: float | None = None, minimum: str = "0.01", actor: Actor | None = None) -> PayoutRun:
        """A run as of ``day`` (default: now) by the first finance user."""
        as_of = self.at(day) if day is not None else dt.datetime.now(dt.UTC)
        return payout_service.create_run(
            self.db, actor or self.finance, brand_id=self.brand.id, as_of=as_of, minimum=Decimal(minimum)
        )

    def approve(self, run: PayoutRun) -> PayoutRun:
        return payout_service.approve_run(self.db, self.finance2, run_id=run.id)

    def run_and_approve(self, **kwargs: Any) -> PayoutRun:
        return self.approve(self.run(**kwargs))

    # --- reading back ---------------------------------------------------------------------------------

    def payout_lines(self, run: PayoutRun) -> dict[tuple[str, int, str], PayoutLine]:
        return {(x.payee_type, x.payee_id, x.currency): x for x in payout_service.run_lines(self.db, run.id)}

    def line_of(self, run: PayoutRun, handle: str) -> PayoutLine:
        return self.payout_lines(run)[self.payees[handle].key]

    def commission_lines(self, order: Order) -> list[CommissionLine]:
        return list(
            self.db.scalars(
                select(CommissionLine).where(CommissionLine.order_id == order.id).order_by(CommissionLine.id)
            )
        )

    def items(self, run: PayoutRun) -> list[PayoutItem]:
        return list(self.db.scalars(select(PayoutItem).where(PayoutItem.run_id == run.id).order_by(PayoutItem.id)))

    def available(self, handle: str) -> int:
        payee = self.payees[handle]
        return ledger.balance(
            self.db, ledger.Account(self.brand.id, payee.payee_type, payee.payee_id, ledger.AVAILABLE, payee.currency)
        )

    def paid_out_of_available(self) -> dict[str, int]:
        """What payout.approved entries moved out of payees' available balances, by currency."""
        rows = self.db.execute(
            select(LedgerPosting.currency, func.sum(LedgerPosting.amount))
            .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
            .where(
                LedgerEntry.brand_id == self.brand.id, LedgerEntry.kind == "payout.approved", LedgerPosting.amount > 0
            )
            .group_by(LedgerPosting.currency)
        ).all()
        return {currency: int(total) for currency, total in rows}

    def run_totals(self) -> dict[str, int]:
        rows = self.db.execute(
            select(PayoutLine.currency, func.sum(PayoutLine.total_amount))
            .join(PayoutRun, PayoutRun.id == PayoutLine.run_id)
            .where(PayoutRun.brand_id == self.brand.id, PayoutRun.status != "draft")
            .group_by(PayoutLine.currency)
        ).all()
        return {currency: int(total) for currency, total in rows}


def build(db: Session) -> Program:
    """A brand, its catalog, a campaign that started 120 days ago (midnight UTC) and two finance users."""
    brand = factories.brand(db, domains=("shop.example.com",))
    factories.skus(db, brand.id, CATALOG)
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=120)).replace(hour=0, minute=0, second=0, microsecond=0)
    campaign = campaign_service.create_campaign(
        db,
        factories.SYSTEM,
        brand_id=brand.id,
        data=CampaignCreate(
            slug="autumn",
            name="Autumn",
            payment_model="cpa",
            starts_at=start,
            ends_at=start + dt.timedelta(days=240),
            fallback_url="https://shop.example.com/",
        ),
    )
    ops = factories.actor(db, ("social_ops", brand.id), ("marketing", brand.id))
    finance_user = factories.user(db, ("finance", brand.id), password=None)
    finance2_user = factories.user(db, ("finance", brand.id), password=None)
    return Program(
        db=db,
        brand=brand,
        campaign=campaign,
        ops=ops,
        finance=auth_service.actor_for(db, finance_user),
        finance2=auth_service.actor_for(db, finance2_user),
        finance_user=finance_user,
        finance2_user=finance2_user,
        start=start,
    )

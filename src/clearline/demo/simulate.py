"""The 30-day pilot, simulated: clicks on every creator's link, orders by coupon, by click and
unattributed, partial returns and one chargeback after clearing — all through the real intake path
(inbox → attribution → commissions → ledger), so every figure in the demo can be explained."""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.commission import period as period_service
from clearline.commission import service as commission_service
from clearline.config import get_settings
from clearline.demo.seed import BRAND_SLUG, PILOT_DAYS, pilot_start
from clearline.ingest import service as ingest
from clearline.kit.money import format_minor
from clearline.kit.security import salted_hash
from clearline.kit.signing import CROCKFORD, Signer, random_code
from clearline.models import Click, CouponCode, InboxEvent, Link, Offer, Sku

AGENTS = ["Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)", "Mozilla/5.0 (Linux; Android 15; Pixel 9)",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6)", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"]


@dataclass
class SimulationReport:
    clicks: int = 0
    orders: int = 0
    refunds: int = 0
    chargebacks: int = 0
    cleared: int = 0
    skipped: bool = False


def simulate_pilot(session: Session, *, seed: int = 7) -> SimulationReport:
    """Run once: does nothing if the pilot already has orders."""
    brand = brand_repository.by_slug(session, BRAND_SLUG)
    report = SimulationReport()
    if brand is None or session.scalar(select(InboxEvent.id).where(InboxEvent.brand_id == brand.id).limit(1)):
        report.skipped = True
        return report
    rng = random.Random(seed)
    start = pilot_start()
    now = dt.datetime.now(dt.UTC)
    signer = Signer(get_settings().secret_key, "click-id")
    links = list(session.scalars(select(Link).where(Link.brand_id == brand.id, Link.status == "live")))
    coupons = {c.creator_id: c.code for c in session.scalars(select(CouponCode).where(
        CouponCode.brand_id == brand.id, CouponCode.is_single_use.is_(False)))}
    offer = session.scalar(select(Offer).where(Offer.brand_id == brand.id))
    skus = list(session.scalars(select(Sku).where(Sku.brand_id == brand.id).order_by(Sku.sku)))
    eligible = [s for s in skus if offer is None or s.sku in offer.eligible_skus]
    accessories = [s for s in skus if s not in eligible]
    orders: list[tuple[dt.datetime, dict]] = []  # type: ignore[type-arg]
    number = 5000
    for day in range(PILOT_DAYS):
        for link in links:
            popularity = 1 + (link.creator_id * 7919) % 5  # some creators simply draw more traffic
            clicks: list[dict[str, Any]] = []
            for _ in range(rng.randint(8, 30) * popularity):
                at = start + dt.timedelta(days=day, seconds=rng.randint(0, 86399))
                clicks.append({"click_id": random_code(13, CROCKFORD), "link_id": link.id, "at": at,
                               "ip_hash": salted_hash(f"198.51.100.{rng.randint(1, 254)}", salt="demo"),
                               "user_agent": rng.choice(AGENTS), "referrer": f"https://{link.channel}.com/",
                               "country": rng.choice(["US", "US", "US", "CA", "GB"]), "is_bot": rng.random() < 0.04,
                               "is_repeat": False, "outcome": "live"})
            session.execute(insert(_table(Click)), clicks)
            report.clicks += len(clicks)
            humans = [c for c in clicks if not c["is_bot"]]
            for _ in range(max(0, round(len(humans) * rng.uniform(0.02, 0.05)))):
                number += 1
                click = rng.choice(humans)
                clicked_at: dt.datetime = click["at"]
                ordered_at = min(clicked_at + dt.timedelta(minutes=rng.randint(2, 600)), now - dt.timedelta(hours=1))
                roll = rng.random()
                lines = []
                for sku in rng.sample(eligible, rng.choice([1, 1, 2, 3])) + (
                        [rng.choice(accessories)] if accessories and rng.random() < 0.2 else []):
                    quantity = rng.choice([1, 1, 1, 2, 3])
                    price = sku.price_amount
                    discount = price * quantity // 5 if roll < 0.35 else 0  # the GLOW20 code: 20 % off
                    lines.append({"sku": sku.sku, "quantity": quantity, "unit_price": format_minor(price, "USD"),
                                  "discount": format_minor(discount, "USD")})
                body: dict = {  # type: ignore[type-arg]
                    "order_id": str(number), "created_at": ordered_at.isoformat(), "currency": "USD",
                    "customer": {"id": f"cust-{rng.randint(1, 4000)}", "new_customer": rng.random() < 0.7},
                    "lines": lines, "shipping": "4.95", "tax": "0.00", "user_agent": click["user_agent"]}
                if roll < 0.35 and link.creator_id in coupons:
                    body["coupon_codes"] = [coupons[link.creator_id]]
                elif roll < 0.80:
                    body["click_id"] = signer.sign(click["click_id"])
                else:  # reached the shop some other way: unattributed
                    pass
                orders.append((ordered_at, body))
    orders.sort(key=lambda item: item[0])
    for _, body in orders:
        ingest.receive(session, brand=brand, source="postback", kind="order", body=json.dumps(body).encode())
        report.orders += 1
    returned = rng.sample(orders, max(1, len(orders) // 12))
    for ordered_at, body in returned:
        refunded_at = ordered_at + dt.timedelta(days=rng.randint(2, 12))
        if refunded_at >= now:
            continue
        line = body["lines"][0]
        net = Decimal(line["unit_price"]) * line["quantity"] - Decimal(line["discount"])
        one_unit = (net / line["quantity"]).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
        refund = {"refund_id": f"r-{body['order_id']}", "order_id": body["order_id"],
                  "created_at": refunded_at.isoformat(), "kind": "return",
                  "lines": [{"sku": line["sku"], "quantity": 1, "amount": str(one_unit)}]}
        ingest.receive(session, brand=brand, source="postback", kind="refund", body=json.dumps(refund).encode())
        report.refunds += 1
    # Clear what has passed its window, then one chargeback arrives after clearing: a clawback.
    report.cleared = commission_service.clear_due(session, now=now)
    cleared_order = _first_cleared_order(session, brand.id)
    if cleared_order is not None:
        external_id, sku_code, net = cleared_order
        chargeback = {"refund_id": f"cb-{external_id}", "order_id": external_id,
                      "created_at": (now - dt.timedelta(hours=2)).isoformat(), "kind": "chargeback",
                      "lines": [{"sku": sku_code, "quantity": 1, "amount": format_minor(net, "USD")}]}
        ingest.receive(session, brand=brand, source="postback", kind="refund", body=json.dumps(chargeback).encode())
        report.chargebacks = 1
    system = Actor.system("demo-simulation")
    month = start.replace(day=1)
    while True:
        next_month = (month + dt.timedelta(days=32)).replace(day=1)
        if next_month > now:
            break
        period_service.close_period(session, system, brand_id=brand.id, period=month.strftime("%Y-%m"))
        month = next_month
    return report


def _first_cleared_order(session: Session, brand_id: int) -> tuple[str, str, int] | None:
    from clearline.models import CommissionLine, Order, OrderLine

    row = session.execute(
        select(Order.external_id, OrderLine.sku, OrderLine.net_amount - OrderLine.refunded_amount)
        .join(CommissionLine, CommissionLine.order_line_id == OrderLine.id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(CommissionLine.brand_id == brand_id, CommissionLine.cleared_at.is_not(None),
               OrderLine.refunded_amount == 0)
        .order_by(Order.ordered_at).limit(1)).first()
    return None if row is None else (row[0], row[1], int(row[2]))


@dataclass
class PayoutDemo:
    run_id: int | None = None
    lines: int = 0
    totals: dict[str, str] | None = None
    accuracy_bp: int = 0
    skipped: bool = False


def pilot_payout(session: Session) -> PayoutDemo:
    """The pilot's monthly payout: run by one finance user, approved by another, exported, marked paid and
    reconciled against finance's paid file (generated from the export, as the bank would confirm it)."""
    import csv
    import io

    from clearline.auth import service as auth_service
    from clearline.models import PayoutRun, User
    from clearline.payout import export, service

    brand = brand_repository.by_slug(session, BRAND_SLUG)
    if brand is None or session.scalar(select(PayoutRun.id).where(PayoutRun.brand_id == brand.id).limit(1)):
        return PayoutDemo(skipped=True)
    finance = [auth_service.actor_for(session, session.scalars(select(User).where(User.email == email)).one())
               for email in ("finance@clearline.demo", "finance2@clearline.demo")]
    run = service.create_run(session, finance[0], brand_id=brand.id, as_of=dt.datetime.now(dt.UTC))
    service.approve_run(session, finance[1], run_id=run.id)
    payout_file, _ = export.export(session, finance[0], run_id=run.id)
    service.mark_paid(session, finance[0], run_id=run.id, reference="BANK-BATCH-0001")
    paid = io.StringIO()
    writer = csv.writer(paid)
    writer.writerow(["payout_line_id", "paid_amount", "currency", "paid_at", "reference"])
    for row in csv.DictReader(io.StringIO(payout_file)):
        writer.writerow([row["payout_line_id"], row["total_amount"], row["currency"],
                         dt.datetime.now(dt.UTC).isoformat(), row["invoice_reference"]])
    result = export.reconcile(session, finance[0], run_id=run.id, data=paid.getvalue())
    return PayoutDemo(run.id, len(service.run_lines(session, run.id)), service.totals(session, run.id),
                      result.accuracy_bp)


def pilot_briefs(session: Session) -> dict[str, int]:
    """Briefs, creatives and approvals for the pilot: most content approved and scheduled, one legal review
    left past its SLA (breached and escalated), and one schedule refused for a missing approval."""
    from clearline.auth import service as auth_service
    from clearline.brief import approval, creative, service
    from clearline.brief.schemas import BriefIn
    from clearline.kit.errors import ConflictError
    from clearline.models import ApprovalStep, Brief, Campaign, User

    brand = brand_repository.by_slug(session, BRAND_SLUG)
    if brand is None or session.scalar(select(Brief.id).where(Brief.brand_id == brand.id).limit(1)):
        return {}

    def actor(email: str) -> Actor:
        return auth_service.actor_for(session, session.scalars(select(User).where(User.email == email)).one())

    marketing, legal = actor("marketing@clearline.demo"), actor("legal@clearline.demo")
    ops = actor("ops@clearline.demo")
    campaign = session.scalars(select(Campaign).where(Campaign.brand_id == brand.id)).first()
    assert campaign is not None, "the pilot is seeded with its campaign"
    offer = session.scalar(select(Offer).where(Offer.brand_id == brand.id))
    skus = sorted(offer.eligible_skus)[:3] if offer else []
    brief = service.create_brief(session, marketing, brand_id=brand.id, data=BriefIn(
        campaign_id=campaign.id, title="Glow season: vitamin C serum hero", team="growth", skus=skus,
        offer_code=offer.code if offer else "", landing_url="https://shop.acme-beauty.com/collections/glow",
        call_to_action="Tap the link or use your code for 20 % off", key_messages=[
            "Visible glow in two weeks", "Dermatologist tested"], disclaimers=["#ad", "Paid partnership"],
        measurement_note="Signed link (clid) and personal coupon code; orders tracked by postback"))
    service.submit_brief(session, marketing, brief_id=brief.id)
    step = approval.queue(session, legal, brand_id=brand.id)[0]
    approval.decide(session, legal, step_id=step.id, decision="changes_requested", comment="soften 'visible glow'")
    service.submit_brief(session, marketing, brief_id=brief.id)
    step = approval.queue(session, legal, brand_id=brand.id)[0]
    approval.decide(session, legal, step_id=step.id, decision="approved", comment="cleared")
    scheduled = refused = 0
    links = {link.creator_id: link for link in session.scalars(select(Link).where(Link.brand_id == brand.id))}
    for creator_id, link in sorted(links.items()):
        made = creative.create_creative(session, ops, brief_id=brief.id, creator_id=creator_id, channel=link.channel)
        creative.add_version(session, ops, creative_id=made.id, caption="My glow routine with @acmebeauty #ad")
        if creator_id == max(links):  # the last one is still in review: scheduling it is refused
            try:
                creative.schedule(session, ops, creative_id=made.id, scheduled_for=dt.datetime.now(dt.UTC))
            except ConflictError:
                refused += 1
            continue
        for open_step in approval.queue(session, marketing, brand_id=brand.id):
            if open_step.subject_type == "creative" and open_step.subject_id == made.id:
                approval.decide(session, marketing, step_id=open_step.id, decision="approved", comment="on brand")
        creative.schedule(session, ops, creative_id=made.id,
                          scheduled_for=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
        scheduled += 1
    # A second brief waits on legal past its 48 business hours: the SLA check marks it and escalates.
    late = service.create_brief(session, marketing, brand_id=brand.id, data=BriefIn(
        campaign_id=campaign.id, title="Holiday gift sets", team="seasonal", skus=skus[:1],
        offer_code=offer.code if offer else "", landing_url="https://shop.acme-beauty.com/collections/gifts",
        call_to_action="Gift the glow", key_messages=["Limited holiday sets"], disclaimers=["#ad"],
        measurement_note="Signed link and coupon"))
    service.submit_brief(session, marketing, brief_id=late.id)
    overdue = session.scalars(select(ApprovalStep).where(ApprovalStep.subject_type == "brief",
                                                         ApprovalStep.subject_id == late.id)).one()
    overdue.opened_at -= dt.timedelta(days=7)
    overdue.due_at -= dt.timedelta(days=7)
    breached = len(approval.check_breaches(session, Actor.system("demo: approvals check")))
    return {"briefs": 2, "scheduled": scheduled, "refused": refused, "breached": breached}


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table

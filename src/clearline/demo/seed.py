"""The pilot program `make demo` seeds: one brand, ~40 SKUs in three tiers, 10 creators, one agency.

Seeding is idempotent: it does nothing when the pilot brand exists.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from sqlalchemy.orm import Session

from clearline.auth import service as auth_service
from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.brand import service as brand_service
from clearline.brand.schemas import BrandCreate
from clearline.campaign import service as campaign_service
from clearline.campaign.schemas import CampaignCreate
from clearline.catalog import service as catalog_service
from clearline.catalog.schemas import OfferCreate
from clearline.contract import repository as contract_repository
from clearline.contract import service as contract_service
from clearline.contract.schemas import ContractCreate, TemplateCreate
from clearline.contract.terms import ContractTerms
from clearline.creator import service as creator_service
from clearline.creator.schemas import AgencyCreate

BRAND_SLUG = "acme-beauty"
PASSWORD = "clearline-demo"  # noqa: S105 - the published demo login
PILOT_DAYS = 30


def pilot_start() -> dt.datetime:
    """The pilot ran for the last 30 days, so the demo always shows a program in flight."""
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=PILOT_DAYS)


STAFF = [
    ("admin@clearline.demo", "Ada Admin", "admin"),
    ("marketing@clearline.demo", "Mia Marketing", "marketing"),
    ("legal@clearline.demo", "Leo Legal", "legal"),
    ("ops@clearline.demo", "Sam Social-Ops", "social_ops"),
    ("finance@clearline.demo", "Fay Finance", "finance"),
    ("finance2@clearline.demo", "Finn Finance", "finance"),
    ("catalog@clearline.demo", "Cat Brand-Ops", "brand_ops"),
    ("steward@clearline.demo", "Stu Steward", "brand_steward"),
]

CREATORS = [
    ("anna.glow", "Anna Glow", "instagram;tiktok", "US"),
    ("ben.makes", "Ben Makes", "youtube", "US"),
    ("cara.skin", "Cara Skin", "instagram", "GB"),
    ("dev.daily", "Dev Daily", "tiktok", "US"),
    ("eli.routine", "Eli Routine", "instagram;youtube", "CA"),
    ("fern.fresh", "Fern Fresh", "tiktok", "US"),
    ("gus.grooms", "Gus Grooms", "youtube", "US"),
    ("hana.hue", "Hana Hue", "instagram", "US"),
    ("ivy.inks", "Ivy Inks", "tiktok;instagram", "AU"),
    ("jay.jots", "Jay Jots", "instagram", "US"),
]
AGENCY_ROSTER = ("gus.grooms", "hana.hue", "ivy.inks")

# (tier, category, names, price range, margin % range, return rate % range)
CATALOG = [
    (
        "a",
        "serums",
        [
            "Vitamin C Serum",
            "Retinol Night Serum",
            "Peptide Eye Serum",
            "Hyaluronic Booster",
            "Niacinamide Drops",
            "Bakuchiol Serum",
            "Copper Peptide Serum",
            "AHA Resurfacer",
            "Ceramide Repair Oil",
            "Squalane Face Oil",
            "Collagen Cream",
            "Overnight Mask",
        ],
        (42, 89),
        (68, 78),
        (2, 6),
    ),
    (
        "b",
        "care",
        [
            "Gel Cleanser",
            "Cream Cleanser",
            "Balancing Toner",
            "Daily Moisturiser",
            "SPF 50 Fluid",
            "Clay Mask",
            "Lip Treatment",
            "Hand Cream",
            "Body Lotion",
            "Micellar Water",
            "Exfoliating Pads",
            "Sheet Mask Set",
            "Barrier Balm",
            "Tinted SPF",
        ],
        (16, 38),
        (52, 64),
        (6, 14),
    ),
    (
        "c",
        "accessories",
        [
            "Bamboo Headband",
            "Jade Roller",
            "Gua Sha Stone",
            "Travel Pouch",
            "Cotton Rounds",
            "Silicone Brush",
            "Microfibre Towel",
            "Mirror Compact",
            "Makeup Sponge Duo",
            "Scrunchie Pack",
            "Sample Kit",
            "Gift Box",
        ],
        (6, 24),
        (35, 50),
        (12, 24),
    ),
]


@dataclass
class SeedResult:
    created: bool
    brand_id: int
    logins: list[tuple[str, str]]


def _catalog_csv(rng: random.Random) -> str:
    lines = ["sku,name,category,tier,price,currency,unit_cost,margin_pct,return_rate_pct"]
    n = 0
    for tier, category, names, (lo, hi), (mlo, mhi), (rlo, rhi) in CATALOG:
        for name in names:
            n += 1
            price = f"{rng.randint(lo, hi)}.{rng.choice(['00', '50', '95', '99'])}"
            rate = f"{rng.uniform(rlo, rhi):.1f}"
            if n % 3:  # most SKUs carry a unit cost, some only a margin %
                cost = f"{float(price) * (100 - rng.randint(mlo, mhi)) / 100:.2f}"
                lines.append(f"ACME-{tier.upper()}{n:03d},{name},{category},{tier},{price},USD,{cost},,{rate}")
            else:
                lines.append(
                    f"ACME-{tier.upper()}{n:03d},{name},{category},{tier},{price},USD,,{rng.randint(mlo, mhi)},{rate}"
                )
    return "\n".join(lines) + "\n"


def seed_pilot(session: Session) -> SeedResult:
    """Create the pilot program unless it exists; returns the demo logins."""
    logins = [(email, PASSWORD) for email, _, _ in STAFF] + [
        ("anna.glow@creators.demo", PASSWORD),
        ("agency@northstar.demo", PASSWORD),
    ]
    existing = brand_repository.by_slug(session, BRAND_SLUG)
    if existing is not None:
        return SeedResult(False, existing.id, logins)
    system = Actor.system("demo-seed")
    start = pilot_start()
    rng = random.Random(20261124)
    brand = brand_service.create_brand(
        session,
        system,
        data=BrandCreate(
            slug=BRAND_SLUG,
            name="Acme Beauty",
            default_currency="USD",
            allowed_domains=["shop.acme-beauty.com", "acme-beauty.com"],
            gl_account="6150-CREATOR",
            cost_center="MKT-ACME-01",
        ),
        reason="pilot seed",
    )
    users = {}
    for email, name, role in STAFF:
        grant_brand = None if role == "admin" else brand.id
        users[role if role not in users else role + "2"] = auth_service.create_user(
            session, system, email=email, name=name, password=PASSWORD, grants=[(role, grant_brand)]
        )
    catalog_service.import_skus(session, system, brand_id=brand.id, data=_catalog_csv(rng), reason="pilot seed")
    creators_csv = "handle,name,email,channels,country,vendor_id,payout_reference\n" + "\n".join(
        f"{h},{n},{h}@creators.demo,{c},{country},V-{i:04d},IBAN-DEMO-{i:04d}"
        for i, (h, n, c, country) in enumerate(CREATORS, start=1)
    )
    creator_service.import_creators(session, system, brand_id=brand.id, data=creators_csv, reason="pilot seed")
    from clearline.creator import repository as creator_repository

    creators = creator_repository.creators_by_handle(session, [h for h, *_ in CREATORS])
    agency = creator_service.create_agency(
        session,
        system,
        brand_id=brand.id,
        data=AgencyCreate(
            name="Northstar Talent",
            email="agency@northstar.demo",
            vendor_id="V-AG-0001",
            payout_reference="IBAN-DEMO-AG01",
        ),
    )
    creator_service.import_roster(
        session, system, agency_id=agency.id, data="handle\n" + "\n".join(AGENCY_ROSTER) + "\n"
    )
    creator_actors = {}
    for handle, name, *_ in CREATORS:
        creator_user = auth_service.create_user(
            session,
            system,
            email=f"{handle}@creators.demo",
            name=name,
            password=PASSWORD,
            grants=[("creator", brand.id)],
            creator_id=creators[handle].id,
        )
        creator_actors[handle] = auth_service.actor_for(session, creator_user)
    agency_user = auth_service.create_user(
        session,
        system,
        email="agency@northstar.demo",
        name="Northstar Talent",
        password=PASSWORD,
        grants=[("agency", brand.id)],
        agency_id=agency.id,
    )

    legal = auth_service.actor_for(session, users["legal"])
    template = contract_service.create_template(
        session,
        legal,
        data=TemplateCreate(
            name="Creator performance agreement",
            brand_id=brand.id,
            body="v1: The creator promotes the brand's SKUs with the tracked link and code issued to them.",
        ),
    )
    contract_service.add_template_version(
        session,
        legal,
        template_id=template.id,
        reason="FTC disclosure clause",
        body="v2: As v1, plus #ad disclosure on every post and the returns clause.",
    )
    v2 = contract_repository.versions(session, template.id)[-1]

    offer = catalog_service.create_offer(
        session,
        auth_service.actor_for(session, users["marketing"]),
        brand_id=brand.id,
        data=OfferCreate(
            code="GLOW20",
            name="Glow season 20 % off serums and care",
            starts_at=start,
            ends_at=start + dt.timedelta(days=60),
            eligible_skus=[
                line.split(",")[0]
                for line in _catalog_csv(random.Random(20261124)).splitlines()[1:]
                if ",a," in line or ",b," in line
            ],
            excluded_skus=[],
            language="20% off serums and care for new customers. Terms apply.",
        ),
    )
    catalog_service.approve_offer_language(
        session,
        legal,
        offer_id=offer.id,
        language="20% off selected serums and care. For a limited time. Terms apply.",
    )
    campaign = campaign_service.create_campaign(
        session,
        auth_service.actor_for(session, users["marketing"]),
        brand_id=brand.id,
        data=CampaignCreate(
            slug="glow-season",
            name="Glow season pilot",
            offer_id=offer.id,
            payment_model="cpa",
            starts_at=start,
            ends_at=start + dt.timedelta(days=60),
            fallback_url="https://shop.acme-beauty.com/collections/glow",  # type: ignore[arg-type]  # validated
        ),
    )

    cpa = {
        "model": "cpa",
        "currency": "USD",
        "cpa": {
            "per": "unit",
            "rates": {
                "new": {"a": "9.00", "b": "4.00", "c": "1.00"},
                "returning": {"a": "6.00", "b": "2.50", "c": "0.50"},
            },
        },
        "cap_per_order": "60.00",
        "attribution_window_days": 30,
        "verification_window_days": 14,  # negotiated for the pilot: low-return hero SKUs
    }
    revshare = {
        "model": "revshare",
        "currency": "USD",
        "revshare": {"basis": "gross_margin", "rates": {"new": {"a": "15", "b": "12", "c": "8"}}},
        "volume_tiers": [{"from_revenue": "5000", "bonus_pct": "2"}],
        "reserve_pct": "10",
        "reserve_release_days": 60,
        "attribution_window_days": 14,
    }
    hybrid = {
        "model": "hybrid",
        "currency": "USD",
        "cpa": {"per": "order", "rates": {"new": {"a": "12.00", "b": "6.00", "c": "2.00"}}},
        "onboarding_retainer": {"amount": "250.00", "days": 30},
        "cap_per_period": "2000.00",
        "attribution_window_days": 30,
    }
    plans = [cpa, cpa, revshare, revshare, cpa, hybrid, cpa]
    direct = [handle for handle, *_ in CREATORS if handle not in AGENCY_ROSTER]
    for handle, terms in zip(direct, plans, strict=True):
        contract = contract_service.create_contract(
            session,
            legal,
            brand_id=brand.id,
            data=ContractCreate(
                creator_id=creators[handle].id,
                template_version_id=v2.id,
                terms=ContractTerms.model_validate(terms),
                starts_at=start,
            ),
        )
        contract_service.accept_contract(session, creator_actors[handle], contract_id=contract.id)
    agency_contract = contract_service.create_contract(
        session,
        legal,
        brand_id=brand.id,
        data=ContractCreate(
            agency_id=agency.id,
            template_version_id=v2.id,
            terms=ContractTerms.model_validate(hybrid),
            starts_at=start,
        ),
    )
    contract_service.accept_contract(
        session, auth_service.actor_for(session, agency_user), contract_id=agency_contract.id
    )
    _seed_links(session, auth_service.actor_for(session, users["social_ops"]), campaign.id, creators)
    return SeedResult(True, brand.id, logins)


def _seed_links(session: Session, ops: Actor, campaign_id: int, creators: dict) -> None:  # type: ignore[type-arg]
    """Every creator gets a live, signed-off canonical link and a readable coupon code."""
    from clearline.link import coupon, service

    for handle, _name, channels, _country in CREATORS:
        creator = creators[handle]
        link = service.issue_link(
            session,
            ops,
            campaign_id=campaign_id,
            creator_id=creator.id,
            channel=channels.split(";")[0],
            destination_url="https://shop.acme-beauty.com/collections/glow?ref=creator",
        )
        service.sign_off(session, ops, link_id=link.id, comment="pilot launch")
        coupon.issue_creator_code(session, ops, campaign_id=campaign_id, creator_id=creator.id)
    coupon.issue_batch(
        session, ops, campaign_id=campaign_id, count=20, prefix="GLOWVIP", creator_id=creators["anna.glow"].id
    )

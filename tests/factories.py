"""Small typed factories with explicit money defaults; they call the real services."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from itertools import count

from sqlalchemy.orm import Session

from clearline.auth import service as auth_service
from clearline.auth.actor import Actor
from clearline.brand import service as brand_service
from clearline.brand.schemas import BrandCreate
from clearline.catalog import service as catalog_service
from clearline.contract import service as contract_service
from clearline.contract.schemas import ContractCreate, TemplateCreate
from clearline.contract.terms import ContractTerms
from clearline.creator import service as creator_service
from clearline.creator.schemas import AgencyCreate, CreatorCreate
from clearline.models import Brand, Contract, Creator, User

SYSTEM = Actor.system("tests")
_seq = count(1)

SKU_CSV = (
    "sku,name,category,tier,price,currency,unit_cost,margin_pct,return_rate_pct\n"
    "SKU-A1,Serum,skincare,a,49.00,USD,12.25,,4\n"
    "SKU-B1,Cleanser,skincare,b,24.00,USD,,55,12\n"
    "SKU-C1,Towel,accessories,c,9.50,USD,3.10,,20\n"
)

CPA_TERMS = {
    "model": "cpa",
    "currency": "USD",
    "cpa": {"per": "unit", "rates": {"new": {"a": "8.00", "b": "4.00", "c": "1.00"}}},
}


def brand(db: Session, *, slug: str | None = None, domains: tuple[str, ...] = ("shop.example.com",)) -> Brand:
    n = next(_seq)
    return brand_service.create_brand(
        db,
        SYSTEM,
        data=BrandCreate(
            slug=slug or f"brand-{n}",
            name=f"Brand {n}",
            allowed_domains=list(domains),
            gl_account="6100",
            cost_center=f"CC-{n}",
        ),
    )


def user(
    db: Session,
    *grants: tuple[str, int | None],
    creator_id: int | None = None,
    agency_id: int | None = None,
    password: str | None = "correct horse battery",
) -> User:
    n = next(_seq)
    return auth_service.create_user(
        db,
        SYSTEM,
        email=f"user{n}@example.com",
        name=f"User {n}",
        password=password,
        grants=list(grants),
        creator_id=creator_id,
        agency_id=agency_id,
    )


def actor(
    db: Session, *grants: tuple[str, int | None], creator_id: int | None = None, agency_id: int | None = None
) -> Actor:
    return auth_service.actor_for(
        db, user(db, *grants, creator_id=creator_id, agency_id=agency_id, password=None)
    )


def api_key(db: Session, who: User) -> str:
    _, secret = auth_service.create_api_key(db, SYSTEM, user_id=who.id, name="test")
    return secret


def skus(db: Session, brand_id: int, csv_text: str = SKU_CSV) -> None:
    catalog_service.import_skus(db, SYSTEM, brand_id=brand_id, data=csv_text)


def creator(db: Session, brand_id: int, handle: str | None = None) -> Creator:
    n = next(_seq)
    return creator_service.create_creator(
        db,
        SYSTEM,
        brand_id=brand_id,
        data=CreatorCreate(handle=handle or f"creator{n}", name=f"Creator {n}", channels=["instagram"]),
    )


def agency(db: Session, brand_id: int):  # type: ignore[no-untyped-def]
    return creator_service.create_agency(db, SYSTEM, brand_id=brand_id, data=AgencyCreate(name="Agency"))


def template_version_id(db: Session, brand_id: int | None = None) -> int:
    template = contract_service.create_template(
        db,
        SYSTEM,
        data=TemplateCreate(
            name=f"CPA template {next(_seq)}",
            brand_id=brand_id,
            body="The creator promotes the brand's SKUs.",
        ),
    )
    from clearline.contract import repository

    return repository.versions(db, template.id)[0].id


def contract(
    db: Session,
    brand_id: int,
    *,
    creator_id: int | None = None,
    agency_id: int | None = None,
    terms: dict | None = None,
    version_id: int | None = None,
) -> Contract:  # type: ignore[type-arg]
    return contract_service.create_contract(
        db,
        SYSTEM,
        brand_id=brand_id,
        data=ContractCreate(
            creator_id=creator_id,
            agency_id=agency_id,
            template_version_id=version_id or template_version_id(db, brand_id),
            terms=ContractTerms.model_validate(terms or CPA_TERMS),
            starts_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        ),
    )


def money(value: str) -> Decimal:
    return Decimal(value)

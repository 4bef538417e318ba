"""Brief fixtures: a brand with a catalog, an offer, a campaign, a contracted creator and one user per
reviewing role — plus helpers that take a brief through legal and pin the clock approval steps read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.auth import service as auth_service
from clearline.auth.actor import Actor
from clearline.brief import approval, service
from clearline.brief.schemas import BriefIn
from clearline.campaign import service as campaign_service
from clearline.campaign.schemas import CampaignCreate
from clearline.catalog import service as catalog_service
from clearline.catalog.schemas import OfferCreate
from clearline.config import get_settings
from clearline.contract import service as contract_service
from clearline.models import ApprovalStep, Brand, Brief, Campaign, Creator, Offer
from tests import factories
from tests.committed import committed_database, pointed_at


@pytest.fixture
def program(db):  # type: ignore[no-untyped-def]
    """(brand, campaign, creator with an accepted contract, {"marketing"|"legal"|"social_ops": actor})."""
    return build_program(db)


@pytest.fixture(scope="session")
def committed_url(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[str]:
    with committed_database(tmp_path_factory.mktemp("committed"), "brief") as url:
        yield url


@pytest.fixture
def committed(committed_url: str, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Settings (so the app, the CLI) point at a database that requests really commit to; emptied after."""
    monkeypatch.delenv("CLEARLINE_ACTOR", raising=False)
    with pointed_at(committed_url, database_url):
        yield committed_url


def build_program(db: Session) -> tuple[Brand, Campaign, Creator, dict[str, Actor]]:
    brand = factories.brand(db, domains=("shop.example.com",))
    factories.skus(db, brand.id)
    now = dt.datetime.now(dt.UTC)
    offer(db, brand.id, "SPRING20", now - dt.timedelta(days=1), now + dt.timedelta(days=30))
    campaign = campaign_service.create_campaign(
        db,
        factories.SYSTEM,
        brand_id=brand.id,
        data=CampaignCreate(
            slug="spring",
            name="Spring",
            payment_model="cpa",
            starts_at=now - dt.timedelta(days=1),
            ends_at=now + dt.timedelta(days=30),
            fallback_url="https://shop.example.com/",
        ),
    )
    creator = factories.creator(db, brand.id)
    contract = factories.contract(db, brand.id, creator_id=creator.id)
    creator_user = factories.user(db, ("creator", brand.id), creator_id=creator.id)
    contract_service.accept_contract(db, auth_service.actor_for(db, creator_user), contract_id=contract.id)
    actors = {role: factories.actor(db, (role, brand.id)) for role in ("marketing", "legal", "social_ops")}
    return brand, campaign, creator, actors


def offer(
    db: Session,
    brand_id: int,
    code: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    skus: tuple[str, ...] = ("SKU-A1", "SKU-B1"),
    excluded: tuple[str, ...] = (),
) -> Offer:
    return catalog_service.create_offer(
        db,
        factories.SYSTEM,
        brand_id=brand_id,
        data=OfferCreate(
            code=code,
            name=code.title(),
            starts_at=starts_at,
            ends_at=ends_at,
            eligible_skus=list(skus),
            excluded_skus=list(excluded),
        ),
    )


def brief_in(campaign_id: int, **overrides: Any) -> BriefIn:
    """A complete brief for SKU-A1 under the SPRING20 offer; ``overrides`` replace single fields."""
    fields: dict[str, Any] = dict(
        campaign_id=campaign_id,
        title="Glow serum launch",
        team="growth",
        skus=["SKU-A1"],
        offer_code="SPRING20",
        landing_url="https://shop.example.com/serum",
        call_to_action="Shop now",
        key_messages=["Visible glow in 7 days"],
        disclaimers=["#ad"],
        measurement_note="clid + coupon",
    )
    fields.update(overrides)
    return BriefIn(**fields)


def open_steps(db: Session, subject: Brief | Any, subject_type: str = "brief") -> list[ApprovalStep]:
    return list(
        db.scalars(
            select(ApprovalStep)
            .where(
                ApprovalStep.subject_type == subject_type,
                ApprovalStep.subject_id == subject.id,
                ApprovalStep.decided_at.is_(None),
            )
            .order_by(ApprovalStep.id)
        )
    )


def approved_brief(db: Session, brand: Brand, campaign: Campaign, actors: dict[str, Actor], **overrides: Any) -> Brief:
    """A brief written by marketing, submitted, and approved by legal."""
    brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id, **overrides))
    service.submit_brief(db, actors["marketing"], brief_id=brief.id)
    [step] = open_steps(db, brief)
    approval.decide(db, actors["legal"], step_id=step.id, decision="approved", comment="cleared")
    return brief


def pin_clock(monkeypatch: pytest.MonkeyPatch, at: dt.datetime) -> None:
    """Approval steps open (and are decided) at ``at``."""
    monkeypatch.setattr(approval, "utcnow", lambda: at)


def pin_settings(monkeypatch: pytest.MonkeyPatch, **updates: Any) -> None:
    """Approval steps read these settings (calendar, SLA hours) instead of the environment's."""
    changed = get_settings().model_copy(update=updates)
    monkeypatch.setattr(approval, "get_settings", lambda: changed)

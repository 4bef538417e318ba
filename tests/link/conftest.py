"""Link test fixtures.

Redirect and CLI tests need committed data (the hot path and the CLI read links through their own
connections): `program` builds it in a database of the module's own. Service tests use `world`, built
inside the rolled-back `db` fixture.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from clearline.auth import service as auth_service
from clearline.auth.actor import Actor
from clearline.campaign import service as campaign_service
from clearline.campaign.schemas import CampaignCreate
from clearline.contract import service as contract_service
from clearline.kit.db import make_engine
from clearline.models import Brand, Campaign, Creator, User
from tests import factories
from tests.conftest import _fresh_database, drop_database, migrate


@dataclass
class Program:
    engine: Engine
    brand_id: int
    campaign_id: int
    creator_id: int
    other_creator_id: int
    ops_user_id: int


@pytest.fixture(scope="module")
def committed_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = _fresh_database(tmp_path_factory.mktemp("links"), f"links_{os.getpid()}")
    migrate(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()
    drop_database(url)


@pytest.fixture(scope="module")
def program(committed_engine: Engine) -> Program:
    """A brand with a campaign, one creator with an accepted contract and one without."""
    with Session(committed_engine) as session:
        brand = factories.brand(session, domains=("shop.example.com",))
        factories.skus(session, brand.id)
        ops = factories.user(session, ("social_ops", brand.id), ("marketing", brand.id))
        now = dt.datetime.now(dt.UTC)
        campaign = campaign_service.create_campaign(
            session,
            factories.SYSTEM,
            brand_id=brand.id,
            data=CampaignCreate(
                slug="spring-drop",
                name="Spring drop",
                payment_model="cpa",
                starts_at=now - dt.timedelta(days=1),
                ends_at=now + dt.timedelta(days=30),
                fallback_url="https://shop.example.com/fallback",
            ),
        )
        creator = factories.creator(session, brand.id, handle="anna.glow")
        other = factories.creator(session, brand.id, handle="no.contract")
        contract = factories.contract(session, brand.id, creator_id=creator.id)
        creator_user = factories.user(session, ("creator", brand.id), creator_id=creator.id)
        contract_service.accept_contract(
            session, auth_service.actor_for(session, creator_user), contract_id=contract.id
        )
        session.commit()
        return Program(committed_engine, brand.id, campaign.id, creator.id, other.id, ops.id)


def contracted_creator(session: Session, brand_id: int) -> int:
    """A new creator with an accepted contract on the brand (each link test gets its own canonical link)."""
    creator = factories.creator(session, brand_id)
    contract = factories.contract(session, brand_id, creator_id=creator.id)
    creator_user = factories.user(session, ("creator", brand_id), creator_id=creator.id, password=None)
    contract_service.accept_contract(session, auth_service.actor_for(session, creator_user), contract_id=contract.id)
    return creator.id


@pytest.fixture
def ops_session(program: Program) -> Iterator[tuple[Session, object]]:
    with Session(program.engine, expire_on_commit=False) as session:
        from clearline.models import User

        user = session.get(User, program.ops_user_id)
        yield session, auth_service.actor_for(session, user)


# --- rolled-back world (the `db` fixture): for service tests that need no committed data -------------


@dataclass
class World:
    """One brand with SKUs, a 30-day campaign, a contracted creator, a spare creator and a social_ops user."""

    brand: Brand
    campaign: Campaign
    creator: Creator
    spare: Creator
    ops_user: User
    ops: Actor
    creator_user: User


def campaign(session: Session, brand_id: int, *, slug: str = "spring-drop", days: int = 30) -> Campaign:
    now = dt.datetime.now(dt.UTC)
    return campaign_service.create_campaign(
        session,
        factories.SYSTEM,
        brand_id=brand_id,
        data=CampaignCreate(
            slug=slug,
            name=slug.replace("-", " ").title(),
            payment_model="cpa",
            starts_at=now - dt.timedelta(days=1),
            ends_at=now + dt.timedelta(days=days),
            fallback_url="https://shop.example.com/fallback",
        ),
    )


def build_world(session: Session, *, handle: str = "anna.glow") -> World:
    brand = factories.brand(session, domains=("shop.example.com",))
    factories.skus(session, brand.id)
    ops_user = factories.user(session, ("social_ops", brand.id))
    found = campaign(session, brand.id)
    creator = factories.creator(session, brand.id, handle=handle)
    spare = factories.creator(session, brand.id)
    contract = factories.contract(session, brand.id, creator_id=creator.id)
    creator_user = factories.user(session, ("creator", brand.id), creator_id=creator.id)
    contract_service.accept_contract(session, auth_service.actor_for(session, creator_user), contract_id=contract.id)
    return World(
        brand=brand,
        campaign=found,
        creator=creator,
        spare=spare,
        ops_user=ops_user,
        ops=auth_service.actor_for(session, ops_user),
        creator_user=creator_user,
    )


@pytest.fixture
def world(db: Session) -> World:
    return build_world(db)

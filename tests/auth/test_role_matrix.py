"""Every route under /api/v1 against every role: who may call it, on which brand, and what others see."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from clearline.app import create_app
from clearline.auth import service as auth_service
from clearline.campaign import service as campaign_service
from clearline.campaign.schemas import CampaignCreate
from clearline.contract import service as contract_service
from clearline.ingest import service as ingest
from clearline.link import coupon
from clearline.link import service as link_service
from clearline.models import CommissionLine, Order
from tests import factories
from tests.auth.matrix import (
    ROLES,
    Caller,
    Endpoint,
    World,
    caller,
    client_for,
    order_body,
    rolled_back_session,
    send,
    shared_world,
)
from tests.auth.routes import BY_KEY, ENDPOINTS

PROTECTED = [e for e in ENDPOINTS if not e.public]
PUBLIC = [e for e in ENDPOINTS if e.public]
SIGNED = [e for e in ENDPOINTS if e.signed]
MATRIX = [(e, role) for e in PROTECTED for role in ROLES]
BRAND_SCOPED = [(e, role) for e in PROTECTED if e.foreign != "self" for role in sorted(e.allowed)]


def _key(value: object) -> str:
    return value.key if isinstance(value, Endpoint) else str(value)


def _routes() -> list[object]:
    routes = create_app().routes
    try:  # FastAPI >= 0.160 nests included routers; this flattens them.
        from fastapi.routing import iter_route_contexts
    except ImportError:
        return list(routes)
    return list(iter_route_contexts(routes))


def _api_routes() -> set[str]:
    """``METHOD /path`` of every route under /api/v1; a mounted sub-application counts as ``MOUNT /path``."""
    keys = set()
    for route in _routes():
        path = getattr(route, "path", None) or ""
        if not path.startswith("/api/v1"):
            continue
        methods = getattr(route, "methods", None)
        if not methods:
            keys.add(f"MOUNT {path}")
        keys.update(f"{method} {path}" for method in methods or () if method not in ("HEAD", "OPTIONS"))
    return keys


@pytest.fixture(scope="module")
def shared(engine: Engine) -> Iterator[tuple[Connection, World, FastAPI]]:
    with shared_world(engine) as built:
        yield built


@pytest.fixture
def world(shared: tuple[Connection, World, FastAPI]) -> World:
    return shared[1]


@pytest.fixture
def db(shared: tuple[Connection, World, FastAPI]) -> Iterator[Session]:
    with rolled_back_session(shared[0]) as session:
        yield session


@pytest.fixture
def client(shared: tuple[Connection, World, FastAPI], db: Session) -> TestClient:
    return client_for(shared[2], db)


def _nobody(world: World) -> Caller:
    """Stands in for the caller when a request needs one but sends no credentials."""
    return Caller(user=world.home.staff_user, key="", key_id=world.home.staff_key_id)


class TestMatrixCoverage:
    def test_every_api_route_has_a_matrix_entry(self) -> None:
        missing = sorted(_api_routes() - set(BY_KEY))
        assert not missing, f"add these routes to tests/auth/matrix.py: {missing}"

    def test_the_matrix_names_only_routes_that_exist(self) -> None:
        assert sorted(set(BY_KEY) - _api_routes()) == []


@pytest.mark.parametrize("endpoint", PUBLIC, ids=_key)
class TestPublicRoutes:
    def test_the_api_documentation_needs_no_credentials(self, endpoint: Endpoint, client: TestClient) -> None:
        assert client.get(endpoint.path).status_code == 200


@pytest.mark.parametrize("endpoint", SIGNED, ids=_key)
class TestSignedRoutes:
    """Storefronts authenticate with the brand's webhook secret; an API key is no substitute."""

    def test_a_request_signed_with_the_brands_secret_is_accepted(
        self, endpoint: Endpoint, client: TestClient, world: World
    ) -> None:
        answer = send(client, endpoint, endpoint.request(world.home, _nobody(world)), signed=True)
        assert answer.status_code == endpoint.ok, answer.text

    def test_a_request_signed_with_another_secret_gets_401(
        self, endpoint: Endpoint, client: TestClient, world: World
    ) -> None:
        assert endpoint.foreign_request is not None
        answer = send(client, endpoint, endpoint.foreign_request(world.home, _nobody(world)), signed=True)
        assert answer.status_code == 401

    def test_an_unknown_brand_answers_like_a_bad_signature(
        self, endpoint: Endpoint, client: TestClient, world: World
    ) -> None:
        call = endpoint.request(world.home, _nobody(world))
        moved = type(call)(
            call.url.replace(world.home.brand.slug, "no-such-brand"), content=call.content, signature=call.signature
        )
        assert send(client, endpoint, moved, signed=True).status_code == 401


@pytest.mark.parametrize("endpoint", PROTECTED, ids=_key)
class TestAuthentication:
    def test_a_request_without_credentials_gets_401(self, endpoint: Endpoint, client: TestClient, world: World) -> None:
        answer = send(client, endpoint, endpoint.request(world.home, _nobody(world)))
        assert answer.status_code == 401
        assert answer.json()["error"] == "unauthenticated"

    def test_a_revoked_api_key_gets_401(
        self, endpoint: Endpoint, client: TestClient, db: Session, world: World
    ) -> None:
        who = caller(db, "admin", world.home, everywhere=True)
        auth_service.revoke_api_key(db, factories.SYSTEM, key_id=who.key_id)
        answer = send(client, endpoint, endpoint.request(world.home, who), who.headers)
        assert answer.status_code == 401
        assert answer.json()["error"] == "unauthenticated"

    def test_an_unknown_api_key_gets_401(self, endpoint: Endpoint, client: TestClient, world: World) -> None:
        call = endpoint.request(world.home, _nobody(world))
        assert send(client, endpoint, call, {"Authorization": "Bearer clk_not-a-key"}).status_code == 401

    def test_a_deactivated_users_key_gets_401(
        self, endpoint: Endpoint, client: TestClient, db: Session, world: World
    ) -> None:
        who = caller(db, "admin", world.home, everywhere=True)
        who.user.is_active = False
        db.flush()
        answer = send(client, endpoint, endpoint.request(world.home, who), who.headers)
        assert answer.status_code == 401


@pytest.mark.parametrize(("endpoint", "role"), MATRIX, ids=_key)
def test_each_role_gets_exactly_what_the_matrix_allows(
    endpoint: Endpoint, role: str, client: TestClient, db: Session, world: World
) -> None:
    """Granted on the target's brand (on every brand for the global routes): the allowed roles succeed;
    the others get 403, or 404 where the record is loaded by id and they may not even see it."""
    who = caller(db, role, world.home, everywhere=endpoint.everywhere)
    if endpoint.prepare is not None:
        endpoint.prepare(db, world.home)
    answer = send(client, endpoint, endpoint.request(world.home, who), who.headers)
    assert answer.status_code == endpoint.expected(role), answer.text


@pytest.mark.parametrize(("endpoint", "role"), [(e, "admin") for e in PROTECTED if e.everywhere], ids=_key)
def test_a_role_granted_on_one_brand_cannot_call_a_route_that_needs_every_brand(
    endpoint: Endpoint, role: str, client: TestClient, db: Session, world: World
) -> None:
    who = caller(db, role, world.home)
    answer = send(client, endpoint, endpoint.request(world.home, who), who.headers)
    assert answer.status_code == 403
    assert "on all brands" in answer.json()["detail"]


@pytest.mark.parametrize(("endpoint", "role"), BRAND_SCOPED, ids=_key)
def test_the_same_role_on_another_brand_cannot_reach_this_brands_records(
    endpoint: Endpoint, role: str, client: TestClient, db: Session, world: World
) -> None:
    """A caller holding the role on the away brand targets the home brand's records: 404 for records
    loaded by id (existence does not leak), 403 for the rest, and listings leave them out."""
    who = caller(db, role, world.away)
    if endpoint.prepare is not None:
        endpoint.prepare(db, world.home)
    request = endpoint.foreign_request or endpoint.request
    answer = send(client, endpoint, request(world.home, who), who.headers)
    if endpoint.foreign == "list":
        assert answer.status_code == 200
        assert endpoint.listed is not None and endpoint.owned is not None
        assert not endpoint.listed(answer.json()) & endpoint.owned(world.home)
    else:
        assert answer.status_code == endpoint.foreign, answer.text


class TestOwnRecords:
    """A creator or an agency sees only its own records, whatever the brand."""

    def _get(self, client: TestClient, who: Caller, path: str) -> list[dict]:  # type: ignore[type-arg]
        answer = client.get(f"/api/v1{path}", headers=who.headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def test_a_creator_lists_only_itself_in_creators(self, client: TestClient, db: Session, world: World) -> None:
        who = caller(db, "creator", world.home)
        assert [c["id"] for c in self._get(client, who, "/creators")] == [world.home.creator.id]

    def test_a_creator_lists_only_its_own_contracts(self, client: TestClient, db: Session, world: World) -> None:
        who = caller(db, "creator", world.home)
        assert [c["id"] for c in self._get(client, who, "/contracts")] == [world.home.contract.id]

    def test_a_creator_sees_no_agency_and_no_template(self, client: TestClient, db: Session, world: World) -> None:
        who = caller(db, "creator", world.home)
        assert self._get(client, who, "/agencies") == []
        assert self._get(client, who, "/contract-templates") == []

    def test_a_creator_lists_only_the_brands_it_has_contracts_with(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        who = caller(db, "creator", world.home)
        assert [b["id"] for b in self._get(client, who, "/brands")] == [world.home.brand.id]

    def test_a_creator_cannot_read_another_creators_record(self, client: TestClient, db: Session, world: World) -> None:
        who = caller(db, "creator", world.home)
        answer = client.get(f"/api/v1/creators/{world.home.spare_creator.id}", headers=who.headers)
        assert answer.status_code == 404

    def test_a_creator_sees_no_campaign_or_offer_internals(self, client: TestClient, db: Session, world: World) -> None:
        who = caller(db, "creator", world.home)
        assert self._get(client, who, f"/brands/{world.home.brand.id}/campaigns") == []
        assert self._get(client, who, f"/brands/{world.home.brand.id}/offers") == []

    def test_an_agency_lists_its_roster_as_creators(self, client: TestClient, db: Session, world: World) -> None:
        who = caller(db, "agency", world.home)
        assert [c["id"] for c in self._get(client, who, "/creators")] == [world.home.creator.id]

    def test_an_agency_lists_its_own_contracts_and_its_rosters(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        who = caller(db, "agency", world.home)
        listed = {c["id"] for c in self._get(client, who, "/contracts")}
        assert listed == {world.home.contract.id, world.home.agency_contract.id}

    def test_an_agency_lists_only_itself_in_agencies(self, client: TestClient, db: Session, world: World) -> None:
        who = caller(db, "agency", world.home)
        assert [a["id"] for a in self._get(client, who, "/agencies")] == [world.home.agency.id]

    def test_an_agency_cannot_read_a_creator_off_its_roster(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        who = caller(db, "agency", world.home)
        answer = client.get(f"/api/v1/creators/{world.home.spare_creator.id}", headers=who.headers)
        assert answer.status_code == 404

    def test_an_agency_does_not_see_its_roster_creators_contracts_with_other_brands(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        elsewhere = factories.contract(db, world.away.brand.id, creator_id=world.home.creator.id)
        who = caller(db, "agency", world.home)
        listed = {c["id"] for c in self._get(client, who, "/contracts")}
        assert elsewhere.id not in listed
        assert client.get(f"/api/v1/contracts/{elsewhere.id}", headers=who.headers).status_code == 404

    def test_an_agency_does_not_see_its_roster_creators_commissions_with_other_brands(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        away_line = _sale_on_the_away_brand_by_the_home_creator(db, world)
        who = caller(db, "agency", world.home)
        listed = {c["id"] for c in self._get(client, who, "/commissions")}
        assert world.home.s.line_paid in listed
        assert away_line not in listed
        assert client.get(f"/api/v1/commissions/{away_line}/explain", headers=who.headers).status_code == 404

    def test_the_creator_itself_sees_its_commissions_with_every_brand(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        away_line = _sale_on_the_away_brand_by_the_home_creator(db, world)
        who = caller(db, "creator", world.home)
        assert away_line in {c["id"] for c in self._get(client, who, "/commissions")}

    def test_an_agency_does_not_see_its_roster_creators_links_and_codes_with_other_brands(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        _sale_on_the_away_brand_by_the_home_creator(db, world)
        away = world.away.brand.id
        creator = caller(db, "creator", world.home)
        own_links = {(x["brand_id"], x["code"]) for x in self._get(client, creator, "/links")}
        own_codes = {(x["brand_id"], x["code"]) for x in self._get(client, creator, "/coupons")}
        assert any(brand == away for brand, _ in own_links)
        assert any(brand == away for brand, _ in own_codes)
        agency = caller(db, "agency", world.home)
        links = self._get(client, agency, "/links")
        codes = self._get(client, agency, "/coupons")
        assert links and all(x["brand_id"] != away for x in links)
        assert codes and all(x["brand_id"] != away for x in codes)
        away_link = next(x for x in self._get(client, creator, "/links") if x["brand_id"] == away)
        assert client.get(f"/api/v1/links/{away_link['id']}", headers=agency.headers).status_code == 404

    def test_staff_see_a_creator_of_another_brand_once_it_holds_a_contract_with_theirs(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        factories.contract(db, world.home.brand.id, creator_id=world.away.spare_creator.id)
        who = caller(db, "legal", world.home)
        listed = {c["id"] for c in self._get(client, who, "/creators")}
        assert world.away.spare_creator.id in listed
        assert world.away.creator.id not in listed


def _sale_on_the_away_brand_by_the_home_creator(db: Session, world: World) -> int:
    """The home agency's roster creator also sells for the away brand, under its own contract there."""
    now = dt.datetime.now(dt.UTC)
    away, creator = world.away.brand, world.home.creator
    contract = factories.contract(db, away.id, creator_id=creator.id)
    me = factories.actor(db, ("creator", away.id), creator_id=creator.id)
    contract_service.accept_contract(db, me, contract_id=contract.id)
    campaign = campaign_service.create_campaign(
        db,
        factories.SYSTEM,
        brand_id=away.id,
        data=CampaignCreate(
            slug="away-live",
            name="Away live",
            payment_model="cpa",
            starts_at=now - dt.timedelta(days=5),
            ends_at=now + dt.timedelta(days=5),
            fallback_url="https://shop.example.com/away",  # type: ignore[arg-type]
        ),
    )
    code = coupon.issue_creator_code(db, factories.SYSTEM, campaign_id=campaign.id, creator_id=creator.id).code
    link_service.issue_link(
        db,
        factories.SYSTEM,
        campaign_id=campaign.id,
        creator_id=creator.id,
        channel="instagram",
        destination_url="https://shop.example.com/away",
    )
    body = order_body("AWAY-1", now - dt.timedelta(minutes=30), code)
    assert ingest.receive(db, brand=away, source="postback", kind="order", body=body).processed
    order_id = db.scalar(select(Order.id).where(Order.brand_id == away.id, Order.external_id == "AWAY-1"))
    line = db.scalar(select(CommissionLine.id).where(CommissionLine.order_id == order_id))
    assert line is not None
    return line

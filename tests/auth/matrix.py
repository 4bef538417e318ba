"""The role × endpoint matrix machinery: the records every route is called on, the callers, and a row type.

The rows themselves live in ``routes_foundation.py`` and ``routes_sales.py`` (assembled in ``routes.py``);
a route under /api/v1 without a row fails ``tests/auth/test_role_matrix.py``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from clearline.app import create_app
from clearline.auth import service as auth_service
from clearline.auth.deps import get_session
from clearline.campaign import service as campaign_service
from clearline.campaign.schemas import CampaignCreate
from clearline.catalog import service as catalog_service
from clearline.catalog.schemas import OfferCreate
from clearline.contract import repository as contract_repository
from clearline.contract import service as contract_service
from clearline.creator import service as creator_service
from clearline.kit.money import format_minor
from clearline.kit.storage import LocalStorage
from clearline.models import Agency, Brand, Campaign, Contract, Creator, Offer, User
from tests import factories

STAFF = frozenset({"admin", "marketing", "legal", "social_ops", "finance", "brand_ops", "brand_steward"})
PARTIES = frozenset({"creator", "agency"})
ROLES = (*sorted(STAFF), "creator", "agency")
EVERYONE = STAFF | PARTIES
CONTRACT_READERS = frozenset({"admin", "legal", "finance", "social_ops", "marketing", "brand_steward"})

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
SECRETS = {
    "postback": "whsec_" + base64.b64encode(b"matrix-postback-secret-24").decode(),
    "shopify": "shpss_matrix_shopify_secret",
    "woocommerce": "matrix-woocommerce-secret",
}
FOREIGN_SECRET = "whsec_" + base64.b64encode(b"somebody-else-secret-24b").decode()


@dataclass
class Sales:
    """The home brand's selling records: links, a coupon, orders with commissions, runs, briefs."""

    campaign: Campaign
    link_pending: int
    link_draft: int
    coupon_id: int
    coupon_code: str
    orders: list[str]
    line_paid: int
    line_open: int
    run_approved: int
    run_draft: int
    payout_line_id: int
    payout_line_amount: str
    dispute_id: int
    brief_approved: int
    brief_draft: int
    step_open: int
    creative_draft: int
    creative_approved: int
    creative_scheduled: int
    creative_posted: int
    version_file: int
    proof_file: int
    at: dt.datetime


@dataclass
class Side:
    """One brand's records: a contracted creator on its agency's roster, a spare creator, templates, offers."""

    brand: Brand
    creator: Creator
    spare_creator: Creator
    agency: Agency
    contract: Contract
    agency_contract: Contract
    template_id: int
    version_id: int
    offer: Offer
    campaign: Campaign
    staff_user: User
    staff_key_id: int
    sales: Sales | None = None

    @property
    def s(self) -> Sales:
        assert self.sales is not None, "only the home side sells"
        return self.sales


@dataclass
class World:
    home: Side
    away: Side


@dataclass
class Caller:
    user: User
    key: str
    key_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}


def _side(db: Session, label: str) -> Side:
    brand = factories.brand(db, slug=f"{label}-brand")
    factories.skus(db, brand.id)
    creator = factories.creator(db, brand.id, handle=f"{label}_creator")
    spare = factories.creator(db, brand.id, handle=f"{label}_spare")
    agency = factories.agency(db, brand.id)
    creator_service.import_roster(db, factories.SYSTEM, agency_id=agency.id, data=f"handle\n{creator.handle}\n")
    version_id = factories.template_version_id(db, brand.id)
    version = contract_repository.get_version(db, version_id)
    assert version is not None
    contract = factories.contract(db, brand.id, creator_id=creator.id, version_id=version_id)
    # No verification window: its commissions clear at once, so a payout run can pay them today.
    agency_contract = factories.contract(
        db,
        brand.id,
        agency_id=agency.id,
        version_id=version_id,
        terms={**factories.CPA_TERMS, "verification_window_days": 0},
    )
    offer = catalog_service.create_offer(
        db,
        factories.SYSTEM,
        brand_id=brand.id,
        data=OfferCreate(code="WELCOME", name="Welcome", starts_at=START, ends_at=END, eligible_skus=["SKU-A1"]),
    )
    campaign = campaign_service.create_campaign(
        db,
        factories.SYSTEM,
        brand_id=brand.id,
        data=CampaignCreate(
            slug="launch",
            name="Launch",
            payment_model="cpa",
            starts_at=START,
            ends_at=END,
            fallback_url="https://shop.example.com/launch",  # type: ignore[arg-type]
        ),
    )
    staff = factories.user(db, ("marketing", brand.id), password=None)
    key, _ = auth_service.create_api_key(db, factories.SYSTEM, user_id=staff.id, name="staff")
    return Side(
        brand=brand,
        creator=creator,
        spare_creator=spare,
        agency=agency,
        contract=contract,
        agency_contract=agency_contract,
        template_id=version.template_id,
        version_id=version_id,
        offer=offer,
        campaign=campaign,
        staff_user=staff,
        staff_key_id=key.id,
    )


def order_body(order_id: str, at: dt.datetime, coupon: str = "", quantity: int = 2) -> bytes:
    body: dict[str, Any] = {
        "order_id": order_id,
        "created_at": at.isoformat(),
        "currency": "USD",
        "customer": {"id": f"c-{order_id}", "new_customer": True},
        "lines": [{"sku": "SKU-A1", "quantity": quantity, "unit_price": "49.00"}],
    }
    if coupon:
        body["coupon_codes"] = [coupon]
    return json.dumps(body).encode()


def _sales(db: Session, side: Side) -> Sales:
    """Links in each state, a coupon, three attributed orders, an approved and a draft payout run, a
    dispute, briefs in each state and creatives in each state — all through the real services."""
    from clearline.brief import approval, creative
    from clearline.brief import service as brief_service
    from clearline.brief.schemas import BriefIn
    from clearline.commission.explain import readable_lines  # noqa: F401  (the domain is importable)
    from clearline.ingest import service as ingest
    from clearline.ingest import signatures
    from clearline.link import coupon
    from clearline.link import service as link_service
    from clearline.models import ApprovalStep, CommissionLine, Order
    from clearline.payout import dispute
    from clearline.payout import service as payout_service

    system = factories.SYSTEM
    now = dt.datetime.now(dt.UTC)
    brand = side.brand
    agency = factories.actor(db, ("agency", brand.id), agency_id=side.agency.id)
    # The agency's contract covers its roster creator: links can go live and orders earn.
    contract_service.accept_contract(db, agency, contract_id=side.agency_contract.id)
    campaign = campaign_service.create_campaign(
        db,
        system,
        brand_id=brand.id,
        data=CampaignCreate(
            slug="live",
            name="Live",
            payment_model="cpa",
            starts_at=now - dt.timedelta(days=20),
            ends_at=now + dt.timedelta(days=20),
            fallback_url="https://shop.example.com/live",  # type: ignore[arg-type]
        ),
    )

    def link(sku: str, *, submit: bool) -> int:
        # One canonical link per creator × campaign × SKU: the three states need three SKUs.
        return link_service.issue_link(
            db,
            system,
            campaign_id=campaign.id,
            creator_id=side.creator.id,
            channel="instagram",
            destination_url="https://shop.example.com/p",
            sku=sku,
            submit=submit,
        ).id

    pending, draft, live = link("", submit=True), link("SKU-B1", submit=False), link("SKU-C1", submit=True)
    link_service.sign_off(db, system, link_id=live)
    issued = coupon.issue_creator_code(db, system, campaign_id=campaign.id, creator_id=side.creator.id)
    code = issued.code
    for kind, secret in SECRETS.items():
        signatures.rotate(db, system, brand_id=brand.id, kind=kind, secret=secret)

    def order(order_id: str) -> int:
        at = now - dt.timedelta(hours=1)
        intake = ingest.receive(db, brand=brand, source="postback", kind="order", body=order_body(order_id, at, code))
        assert intake.processed, intake.error
        order_pk = db.scalar(select(Order.id).where(Order.brand_id == brand.id, Order.external_id == order_id))
        line = db.scalar(select(CommissionLine.id).where(CommissionLine.order_id == order_pk))
        assert line is not None, f"order {order_id} earned no commission"
        return line

    def run() -> int:
        as_of = dt.datetime.now(dt.UTC)  # a run is never as of the future
        return payout_service.create_run(db, system, brand_id=brand.id, as_of=as_of, minimum=Decimal(0)).id

    finance = factories.actor(db, ("finance", brand.id))
    line_paid = order("W-1")
    approved = run()
    payout_service.approve_run(db, finance, run_id=approved)
    line_open = order("W-2")
    order("W-3")
    draft_run = run()  # one draft at a time: POST /payout-runs discards it first
    payout_line = payout_service.run_lines(db, approved)[0]
    creator_actor = factories.actor(db, ("creator", brand.id), creator_id=side.creator.id)
    opened = dispute.open_dispute(db, creator_actor, commission_line_id=line_paid, reason="missing an order")

    def brief(title: str) -> int:
        data = BriefIn(
            campaign_id=campaign.id,
            title=title,
            skus=["SKU-A1"],
            offer_code="WELCOME",
            landing_url="https://shop.example.com/serum",
            call_to_action="Shop the serum",
            key_messages=["Hydrates"],
            disclaimers=["#ad"],
            measurement_note="coupon and link",
        )
        return brief_service.create_brief(db, system, brand_id=brand.id, data=data).id

    def open_step(subject_type: str, subject_id: int) -> int:
        step = db.scalar(
            select(ApprovalStep.id).where(
                ApprovalStep.subject_type == subject_type,
                ApprovalStep.subject_id == subject_id,
                ApprovalStep.decided_at.is_(None),
            )
        )
        assert step is not None
        return step

    brief_approved, brief_draft, brief_review = brief("Approved"), brief("Draft"), brief("In review")
    for brief_id in (brief_approved, brief_review):
        brief_service.submit_brief(db, system, brief_id=brief_id)
    approval.decide(db, system, step_id=open_step("brief", brief_approved), decision="approved")

    def approved_creative(channel: str) -> int:
        made = creative.create_creative(
            db, system, brief_id=brief_approved, creator_id=side.creator.id, channel=channel
        )
        creative.add_version(db, system, creative_id=made.id, caption="v1")
        approval.decide(db, system, step_id=open_step("creative", made.id), decision="approved")
        return made.id

    creative_draft = creative.create_creative(
        db, system, brief_id=brief_approved, creator_id=side.creator.id, channel="instagram"
    ).id
    creative_approved = approved_creative("youtube")
    creative_scheduled = approved_creative("facebook")
    creative.schedule(db, system, creative_id=creative_scheduled, scheduled_for=now + dt.timedelta(days=1))
    # Posted content with files: a version's and a proof's, for the routes that serve them.
    creative_posted = creative.create_creative(
        db, system, brief_id=brief_approved, creator_id=side.creator.id, channel="tiktok"
    ).id
    with_file = creative.add_version(
        db, system, creative_id=creative_posted, caption="cut", data=PNG, file_name="cut.png", content_type="image/png"
    )
    approval.decide(db, system, step_id=open_step("creative", creative_posted), decision="approved")
    creative.schedule(db, system, creative_id=creative_posted, scheduled_for=now + dt.timedelta(days=1))
    proof = creative.add_proof(
        db,
        system,
        creative_id=creative_posted,
        url="https://www.tiktok.com/@home/video/1",
        posted_at=now,
        data=PNG + b"proof",
        file_name="posted.png",
        content_type="image/png",
    )
    db.flush()
    return Sales(
        campaign=campaign,
        link_pending=pending,
        link_draft=draft,
        coupon_id=issued.id,
        coupon_code=code,
        orders=["W-1", "W-2", "W-3"],
        line_paid=line_paid,
        line_open=line_open,
        run_approved=approved,
        run_draft=draft_run,
        payout_line_id=payout_line.id,
        payout_line_amount=format_minor(payout_line.total_amount, payout_line.currency),
        dispute_id=opened.id,
        brief_approved=brief_approved,
        brief_draft=brief_draft,
        step_open=open_step("brief", brief_review),
        creative_draft=creative_draft,
        creative_approved=creative_approved,
        creative_scheduled=creative_scheduled,
        creative_posted=creative_posted,
        version_file=with_file.id,
        proof_file=proof.id,
        at=now,
    )


def build_world(db: Session) -> World:
    home, away = _side(db, "home"), _side(db, "away")
    home.sales = _sales(db, home)
    return World(home=home, away=away)


def caller(db: Session, role: str, side: Side, *, everywhere: bool = False) -> Caller:
    """A user holding ``role`` on ``side``'s brand (or on every brand); creators and agencies are bound."""
    who = factories.user(
        db,
        (role, None if everywhere else side.brand.id),
        creator_id=side.creator.id if role == "creator" else None,
        agency_id=side.agency.id if role == "agency" else None,
        password=None,
    )
    key, secret = auth_service.create_api_key(db, factories.SYSTEM, user_id=who.id, name="matrix")
    return Caller(user=who, key=secret, key_id=key.id)


@dataclass(frozen=True)
class Call:
    url: str
    json: Any = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    data: dict[str, str] | None = None
    content: bytes | None = None
    params: dict[str, Any] | None = None
    signature: dict[str, str] = field(default_factory=dict)


def csv_file(text: str) -> dict[str, tuple[str, bytes, str]]:
    return {"file": ("upload.csv", text.encode(), "text/csv")}


def standard_signed(url: str, body: bytes, secret: str = SECRETS["postback"], msg_id: str = "msg-1") -> Call:
    """A Standard Webhooks delivery (INTERFACES §2)."""
    from standardwebhooks.webhooks import Webhook

    at = dt.datetime.now(dt.UTC)
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body.decode())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    return Call(url, content=body, signature=headers)


def hmac_signed(url: str, body: bytes, secret: str, headers: dict[str, str], signature_header: str) -> Call:
    """Shopify's and WooCommerce's scheme: base64 HMAC-SHA256 of the raw body."""
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return Call(url, content=body, signature={**headers, signature_header: digest, "content-type": "application/json"})


Request = Callable[[Side, Caller], Call]


@dataclass(frozen=True)
class Endpoint:
    """One route's row of the matrix.

    ``allowed``: roles that succeed when granted on the target's brand (or on every brand, ``everywhere``).
    ``readers``: for resources loaded by id, the roles that can see them; any other role gets 404, not 403,
    so existence does not leak. ``foreign``: what the allowed roles get on another brand's record —
    ``404``, ``403``, ``"list"`` (a listing that leaves the other brand's records out) or ``"self"``
    (the caller's own records; no brand involved). ``signed``: authenticated by the brand's webhook
    signature, never by an API key; ``foreign_request`` then signs with another secret. ``prepare``
    runs inside the test's transaction before the call (to make room, e.g. discard the draft run).
    """

    method: str
    path: str
    request: Request
    allowed: frozenset[str]
    ok: int = 200
    readers: frozenset[str] | None = None
    everywhere: bool = False
    foreign: int | str = 404
    foreign_request: Request | None = None
    listed: Callable[[Any], set[int]] | None = None
    owned: Callable[[Side], set[int]] | None = None
    public: bool = False
    signed: bool = False
    prepare: Callable[[Session, Side], None] | None = None

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def expected(self, role: str) -> int:
        if self.signed:
            return 401
        if role in self.allowed:
            return self.ok
        if self.readers is not None and role not in self.readers:
            return 404
        return 403


def ids(answer: Any) -> set[int]:
    return {item["id"] for item in answer}


def anything(answer: Any) -> set[int]:
    """For listings without ids: a non-empty answer counts as listing the home brand's records."""
    return {1} if answer else set()


V1 = "/api/v1"


def row(method: str, path: str, request: Request, allowed: frozenset[str], **kwargs: Any) -> Endpoint:
    return Endpoint(method=method, path=V1 + path, request=request, allowed=allowed, **kwargs)


def send(
    client: Any, endpoint: Endpoint, call: Call, headers: dict[str, str] | None = None, *, signed: bool = False
) -> Any:
    """Send ``call``; its webhook signature goes along only when ``signed``."""
    return client.request(
        endpoint.method,
        call.url,
        json=call.json,
        files=call.files,
        data=call.data,
        content=call.content,
        params=call.params,
        headers={**(call.signature if signed else {}), **(headers or {})},
    )


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@contextmanager
def _files_in_a_temporary_directory() -> Iterator[None]:
    """The world's uploads (and the routes serving them) use a storage of their own, removed afterwards."""
    from clearline.brief import creative

    previous = creative.default_storage
    with tempfile.TemporaryDirectory() as root:
        storage = LocalStorage(root, max_bytes=1024 * 1024)
        creative.default_storage = lambda: storage  # type: ignore[assignment]
        try:
            yield
        finally:
            creative.default_storage = previous  # type: ignore[assignment]


@contextmanager
def shared_world(engine: Engine) -> Iterator[tuple[Connection, World, FastAPI]]:
    """Build the world once in an outer transaction; every test then runs in a savepoint of it."""
    with _files_in_a_temporary_directory(), _shared_world(engine) as built:
        yield built


@contextmanager
def _shared_world(engine: Engine) -> Iterator[tuple[Connection, World, FastAPI]]:
    connection = engine.connect()
    outer = connection.begin()
    builder = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        world = build_world(builder)
        builder.commit()
        builder.close()
        yield connection, world, create_app()
    finally:
        outer.rollback()
        connection.close()


@contextmanager
def rolled_back_session(connection: Connection) -> Iterator[Session]:
    """One test's session: whatever it (or the app, committing) writes is rolled back at the end."""
    nested = connection.begin_nested()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        nested.rollback()


def client_for(app: FastAPI, session: Session) -> TestClient:
    """A client whose requests run on ``session``, committing like the real unit of work."""

    def _session() -> Iterator[Session]:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise

    app.dependency_overrides[get_session] = _session
    return TestClient(app)

"""The set-based batch attribution agrees with the per-order service, order by order, on a sample that walks
through every rule: coupons (valid, unknown, single-use twice), signed clicks (inside and outside the window,
forged, a bot's, from the landing URL, after the order), UTM touches, conflicts and unattributed orders."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest
from sqlalchemy.orm import Session

from clearline.attribution import batch
from clearline.attribution import service as attribution_service
from clearline.auth import service as auth_service
from clearline.campaign import service as campaign_service
from clearline.campaign.schemas import CampaignCreate
from clearline.config import get_settings
from clearline.contract import service as contract_service
from clearline.contract.schemas import ContractCreate
from clearline.contract.terms import ContractTerms
from clearline.ingest import schemas
from clearline.ingest import service as ingest
from clearline.kit.signing import Signer
from clearline.link import coupon
from clearline.link import service as link_service
from clearline.models import Brand, Click, Order
from tests import factories

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _days(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


class Sample:
    """A brand, a campaign that began 40 days ago, three creators: windows of 30 and 7 days under contracts from
    60 days ago, and a 3-day window under a contract that began only 10 days ago."""

    def __init__(self, db: Session) -> None:
        self.db = db
        self.brand: Brand = factories.brand(db)
        factories.skus(db, self.brand.id)
        self.campaign = campaign_service.create_campaign(
            db,
            factories.SYSTEM,
            brand_id=self.brand.id,
            data=CampaignCreate(
                slug="spring",
                name="Spring",
                payment_model="cpa",
                starts_at=_days(40),
                ends_at=NOW + dt.timedelta(days=20),
                fallback_url="https://shop.example.com/",
            ),
        )
        self.ops = factories.actor(db, ("social_ops", self.brand.id), ("marketing", self.brand.id))
        self.creators = {}
        for handle, window, since in (("anna.glow", 30, 60), ("ben.makes", 7, 60), ("cara.skin", 3, 10)):
            creator = factories.creator(db, self.brand.id, handle=handle)
            self.creators[handle] = creator.id
            self._contract(creator.id, window, since)
        self.links = {handle: self._link(creator_id) for handle, creator_id in self.creators.items()}
        self.signer = Signer(get_settings().secret_key, "click-id")
        self.numbers = iter(range(1, 10_000))

    def _contract(self, creator_id: int, window: int, since: int) -> None:
        contract = contract_service.create_contract(
            self.db,
            factories.SYSTEM,
            brand_id=self.brand.id,
            data=ContractCreate(
                creator_id=creator_id,
                template_version_id=factories.template_version_id(self.db, self.brand.id),
                terms=ContractTerms.model_validate({**factories.CPA_TERMS, "attribution_window_days": window}),
                starts_at=_days(since),
            ),
        )
        user = factories.user(self.db, ("creator", self.brand.id), creator_id=creator_id)
        contract_service.accept_contract(self.db, auth_service.actor_for(self.db, user), contract_id=contract.id)

    def _link(self, creator_id: int) -> int:
        link = link_service.issue_link(
            self.db,
            self.ops,
            campaign_id=self.campaign.id,
            creator_id=creator_id,
            channel="instagram",
            destination_url="https://shop.example.com/p",
        )
        return link_service.sign_off(self.db, self.ops, link_id=link.id).id

    def coupon(self, handle: str) -> str:
        return coupon.issue_creator_code(
            self.db, self.ops, campaign_id=self.campaign.id, creator_id=self.creators[handle]
        ).code

    def single_use(self, handle: str) -> str:
        codes = coupon.issue_batch(
            self.db, self.ops, campaign_id=self.campaign.id, count=1, creator_id=self.creators[handle]
        )
        return codes[0].code

    def click(self, handle: str, *, at: dt.datetime, is_bot: bool = False) -> str:
        raw = f"CLK{next(self.numbers):010d}"
        self.db.add(
            Click(
                click_id=raw,
                link_id=self.links[handle],
                at=at,
                ip_hash="ip",
                user_agent="Googlebot/2.1" if is_bot else "Mozilla/5.0",
                is_bot=is_bot,
                outcome="live",
            )
        )
        self.db.flush()
        return self.signer.sign(raw)

    def order(
        self,
        *,
        at: dt.datetime,
        coupons: list[str] | None = None,
        click_id: str | None = None,
        landing_url: str | None = None,
    ) -> Order:
        data = schemas.OrderIn(
            order_id=f"B-{next(self.numbers)}",
            created_at=at,
            currency="USD",
            customer=schemas.CustomerIn(id="c-1", new_customer=True),
            click_id=click_id,
            coupon_codes=coupons or [],
            landing_url=landing_url,
            lines=[schemas.OrderLineIn(sku="SKU-A1", quantity=1, unit_price=Decimal("49.00"))],
        )
        return ingest.apply_order(self.db, brand=self.brand, data=data, source="postback", event_id=None)


@pytest.fixture
def sample(db: Session) -> Sample:
    return Sample(db)


def _utm(handle: str, slug: str = "spring", **extra: str) -> str:
    query = "&".join(
        f"{k}={v}" for k, v in {"utm_source": "instagram", "utm_campaign": slug, "utm_content": handle, **extra}.items()
    )
    return f"https://shop.example.com/p?{query}"


def test_batch_attribution_agrees_with_the_per_order_service(sample: Sample, db: Session) -> None:
    anna, ben = sample.coupon("anna.glow"), sample.coupon("ben.makes")
    once = sample.single_use("cara.skin")
    forged = sample.click("anna.glow", at=_days(3)).rsplit(".", 1)[0] + ".AAAAAAAAAAAAAAAA"
    # A real signature moved onto another real click's id: each half was issued, the pair never was.
    altered = (
        sample.click("ben.makes", at=_days(3)).rsplit(".", 1)[0]
        + "."
        + sample.click("anna.glow", at=_days(3)).rsplit(".", 1)[1]
    )
    orders = [
        sample.order(at=_days(5), coupons=[ben.lower()]),  # rule 1
        sample.order(at=_days(5), coupons=["NOPE", anna], click_id=sample.click("ben.makes", at=_days(6))),  # conflict
        sample.order(at=_days(4), click_id=sample.click("anna.glow", at=_days(6))),  # rule 2, 2 days old
        sample.order(at=_days(2), click_id=sample.click("ben.makes", at=_days(12))),  # 10 days > ben's 7: none
        sample.order(at=_days(2), click_id=forged),  # forged signature: none
        sample.order(at=_days(2), click_id=altered),  # another id's signature: none
        sample.order(at=_days(2), coupons=[anna, ben]),  # two creators' codes: anna, conflict with ben
        sample.order(at=_days(2), click_id=sample.click("anna.glow", at=_days(3), is_bot=True)),  # a bot's: none
        sample.order(at=_days(1), landing_url=_utm("anna.glow")),  # rule 3
        sample.order(at=_days(1), click_id=sample.click("anna.glow", at=_days(2)), landing_url=_utm("ben.makes")),
        sample.order(at=_days(1), landing_url=_utm("nobody.here")),  # UTM names nobody: none
        sample.order(at=_days(1), landing_url=_utm("anna.glow", slug="winter")),  # no such campaign: none
        sample.order(at=_days(1), landing_url=_utm("x", clid=sample.click("ben.makes", at=_days(3)))),  # clid
        sample.order(at=_days(1), landing_url=_utm("anna.glow") + "#utm_content=ben.makes"),  # fragment ignored
        sample.order(at=_days(15), click_id=sample.click("cara.skin", at=_days(25))),  # before her contract: 30 d
        sample.order(at=_days(2), click_id=sample.click("cara.skin", at=_days(6))),  # her contract's 3 days: none
        sample.order(at=_days(3), click_id=sample.click("anna.glow", at=_days(1))),  # clicked after the order
        sample.order(at=_days(6), coupons=[once]),  # single-use, first
        sample.order(at=_days(5), coupons=[once], click_id=sample.click("anna.glow", at=_days(6))),  # used up
        sample.order(at=_days(1)),  # nothing at all
    ]
    con = duckdb.connect()
    try:
        assert batch.load(con, db, secret_key=get_settings().secret_key, brand_id=sample.brand.id) == len(orders)
        assert batch.attribute(con, secret_key=get_settings().secret_key) == len(orders)
        rows = con.execute(
            "SELECT order_id, via, creator_id, campaign_id, link_id, contract_id, click_id, coupon_code, has_conflict "
            "FROM batch_attributions"
        ).fetchall()
    finally:
        con.close()
    found = {row[0]: row[1:] for row in rows}
    expected = {}
    for order in orders:
        current = attribution_service.current(db, order.id)
        assert current is not None
        expected[order.id] = (
            current.via,
            current.creator_id,
            current.campaign_id,
            current.link_id,
            current.contract_id,
            current.click_id,
            current.coupon_code,
            current.conflict is not None,
        )
    assert found == expected
    vias = [expected[o.id][0] for o in orders]
    assert {"coupon", "click", "utm", "none"} <= set(vias)  # the sample really walks through every rule
    assert sum(1 for o in orders if expected[o.id][-1]) == 3
    assert expected[orders[5].id][0] == expected[orders[4].id][0] == "none"  # altered and forged ids
    assert expected[orders[6].id][0] == "coupon" and expected[orders[6].id][-1]  # the two-creator order


def test_batch_refuses_clicks_signed_with_another_key(sample: Sample, db: Session) -> None:
    sample.order(at=_days(1), click_id=sample.click("anna.glow", at=_days(2)))
    con = duckdb.connect()
    try:
        batch.load(con, db, secret_key="another key", brand_id=sample.brand.id)
        with pytest.raises(ValueError, match="clicks.signature"):
            batch.attribute(con, secret_key=get_settings().secret_key)
        assert con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'batch_attributions'"
        ).fetchone() == (0,)
    finally:
        con.close()


def test_batch_leaves_the_connection_settings_as_it_found_them(sample: Sample, db: Session) -> None:
    sample.order(at=_days(1), click_id=sample.click("anna.glow", at=_days(2)))
    con = duckdb.connect()
    try:
        con.execute("SET disabled_optimizers = 'top_n'")
        batch.load(con, db, secret_key=get_settings().secret_key, brand_id=sample.brand.id)
        assert batch.attribute(con, secret_key=get_settings().secret_key) == 1
        assert con.execute("SELECT current_setting('disabled_optimizers')").fetchone() == ("top_n",)
        assert con.execute("SELECT via FROM batch_attributions").fetchone() == ("click",)
    finally:
        con.close()

"""The link API under /api/v1, called with API keys exactly as a script or an integration would."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from clearline.link import coupon, health, service
from clearline.models import Click, Link, User
from tests import factories
from tests.link.conftest import World, build_world

V1 = "/api/v1"
URL = "https://shop.example.com/p/1"


def bearer(db: Session, user: User) -> dict[str, str]:
    """An API key for ``user``; commits the setup so far, which a failed request's rollback must not undo."""
    headers = {"authorization": f"Bearer {factories.api_key(db, user)}"}
    db.commit()
    return headers


def link_body(world: World, **overrides: object) -> dict[str, object]:
    return {
        "campaign_id": world.campaign.id,
        "creator_id": world.creator.id,
        "channel": "instagram",
        "destination_url": URL,
        **overrides,
    }


def issued(db: Session, world: World, creator_id: int, **kwargs: object) -> Link:
    return service.issue_link(
        db,
        world.ops,
        campaign_id=world.campaign.id,
        creator_id=creator_id,
        channel="instagram",
        destination_url=URL,
        **kwargs,  # type: ignore[arg-type]
    )


def click(db: Session, link: Link, click_id: str, *, is_bot: bool = False) -> None:
    db.add(
        Click(
            click_id=click_id,
            link_id=link.id,
            at=dt.datetime.now(dt.UTC),
            ip_hash="0" * 64,
            is_bot=is_bot,
            outcome="live",
        )
    )
    db.flush()


@pytest.fixture
def ops(db: Session, world: World) -> dict[str, str]:
    return bearer(db, world.ops_user)


class TestIssueAndGoLive:
    def test_issue_submit_and_signoff_then_the_list_shows_readiness_and_clicks(
        self, client: TestClient, db: Session, world: World, ops: dict[str, str]
    ) -> None:
        answer = client.post(f"{V1}/links", json=link_body(world, submit=False), headers=ops)
        assert answer.status_code == 201, answer.text
        draft = answer.json()
        assert draft["status"] == "draft"
        assert draft["short_url"].endswith(f"/r/{draft['code']}")
        assert draft["readiness"] == {"contract": True, "signoff": False, "health": True}

        submitted = client.post(f"{V1}/links/{draft['id']}/submit", headers=ops).json()
        assert submitted["status"] == "pending_signoff" and submitted["signoff_due_at"]

        signed = client.post(f"{V1}/links/{draft['id']}/signoff", json={"comment": "looks right"}, headers=ops)
        assert signed.status_code == 200, signed.text
        assert signed.json()["status"] == "live"
        assert signed.json()["signed_off_by_id"] == world.ops_user.id

        link = db.get(Link, draft["id"])
        assert link is not None
        click(db, link, "C1")
        click(db, link, "C1")  # the same visitor again within the hour keeps its click id
        click(db, link, "C2")
        click(db, link, "C3", is_bot=True)

        (listed,) = client.get(f"{V1}/links", params={"brand_id": world.brand.id}, headers=ops).json()
        assert listed["readiness"] == {"contract": True, "signoff": True, "health": True}
        assert (listed["clicks"], listed["unique_clicks"]) == (3, 2)
        assert listed["utm"]["utm_source"] == "instagram"

    def test_a_link_for_a_creator_without_a_contract_is_refused_at_signoff(
        self, client: TestClient, world: World, ops: dict[str, str]
    ) -> None:
        created = client.post(f"{V1}/links", json=link_body(world, creator_id=world.spare.id), headers=ops).json()
        assert created["readiness"] == {"contract": False, "signoff": False, "health": True}
        answer = client.post(f"{V1}/links/{created['id']}/signoff", json={}, headers=ops)
        assert answer.status_code == 409
        assert answer.json()["errors"] == [{"loc": ["contract"], "msg": "missing accepted contract"}]

    def test_the_readiness_shows_a_broken_landing_page(
        self, client: TestClient, db: Session, world: World, ops: dict[str, str]
    ) -> None:
        link = service.sign_off(db, world.ops, link_id=issued(db, world, world.creator.id).id)
        link.health = "broken"
        db.flush()
        shown = client.get(f"{V1}/links/{link.id}", headers=ops).json()
        assert shown["readiness"] == {"contract": True, "signoff": True, "health": False}
        assert shown["health"] == "broken"

    def test_a_second_link_for_the_same_creator_and_campaign_is_409(
        self, client: TestClient, world: World, ops: dict[str, str]
    ) -> None:
        assert client.post(f"{V1}/links", json=link_body(world), headers=ops).status_code == 201
        assert client.post(f"{V1}/links", json=link_body(world), headers=ops).status_code == 409
        assert client.post(f"{V1}/links", json=link_body(world, sku="SKU-A1"), headers=ops).status_code == 201

    def test_a_destination_off_the_allow_list_is_422_naming_destination_url(
        self, client: TestClient, world: World, ops: dict[str, str]
    ) -> None:
        answer = client.post(
            f"{V1}/links", json=link_body(world, destination_url="https://evil.example.net/"), headers=ops
        )
        assert answer.status_code == 422
        assert [e["loc"] for e in answer.json()["errors"]] == [["destination_url"]]

    def test_an_expiry_without_a_utc_offset_is_422_naming_expires_at(
        self, client: TestClient, world: World, ops: dict[str, str]
    ) -> None:
        body = link_body(world, expires_at="2026-12-01T00:00:00")
        answer = client.post(f"{V1}/links", json=body, headers=ops)
        assert answer.status_code == 422
        assert [e["loc"] for e in answer.json()["errors"]] == [["expires_at"]]

    def test_an_unknown_sku_is_422_naming_sku(self, client: TestClient, world: World, ops: dict[str, str]) -> None:
        answer = client.post(f"{V1}/links", json=link_body(world, sku="NOPE"), headers=ops)
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["loc"] == ["sku"]

    def test_a_request_without_credentials_is_401(self, client: TestClient, world: World) -> None:
        assert client.post(f"{V1}/links", json=link_body(world)).status_code == 401
        assert client.get(f"{V1}/links").status_code == 401

    def test_a_creator_cannot_issue_its_own_link(self, client: TestClient, db: Session, world: World) -> None:
        answer = client.post(f"{V1}/links", json=link_body(world), headers=bearer(db, world.creator_user))
        assert answer.status_code == 404  # the campaign is outside a creator's scope, so it does not exist


class TestPreviewAndTemplate:
    def test_the_preview_returns_utm_and_landing_url(
        self, client: TestClient, world: World, ops: dict[str, str]
    ) -> None:
        body = link_body(world, sku="SKU-A1")
        answer = client.post(f"{V1}/links/preview", json=body, headers=ops)
        assert answer.status_code == 200, answer.text
        assert answer.json()["utm"]["utm_term"] == "sku-a1"
        assert answer.json()["landing_url"].startswith(URL + "?utm_source=instagram")

    def test_the_template_is_read_and_replaced(self, client: TestClient, world: World, ops: dict[str, str]) -> None:
        path = f"{V1}/brands/{world.brand.id}/utm-template"
        assert client.get(path, headers=ops).json()["utm_medium"] == "affiliate"
        params = {"utm_source": "{channel}", "utm_medium": "creator", "utm_campaign": "{brand}-{campaign}"}
        answer = client.put(path, json={"params": params, "reason": "brand prefix"}, headers=ops)
        assert answer.status_code == 200 and answer.json() == params
        assert client.get(path, headers=ops).json() == params

    def test_an_invalid_template_is_422_naming_the_parameter(
        self, client: TestClient, world: World, ops: dict[str, str]
    ) -> None:
        params = {"utm_source": "{channel}", "utm_medium": "Affiliate", "utm_campaign": "{campaign}"}
        answer = client.put(f"{V1}/brands/{world.brand.id}/utm-template", json={"params": params}, headers=ops)
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["loc"] == ["params.utm_medium"]

    def test_a_malformed_placeholder_is_422_not_500(
        self, client: TestClient, world: World, ops: dict[str, str]
    ) -> None:
        params = {"utm_source": "{channel", "utm_medium": "affiliate", "utm_campaign": "{campaign}"}
        answer = client.put(f"{V1}/brands/{world.brand.id}/utm-template", json={"params": params}, headers=ops)
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["loc"] == ["params.utm_source"]


class TestRotateAndRetire:
    def test_rotation_keeps_the_short_url(
        self, client: TestClient, db: Session, world: World, ops: dict[str, str]
    ) -> None:
        link = service.sign_off(db, world.ops, link_id=issued(db, world, world.creator.id).id)
        body = {"destination_url": "https://shop.example.com/p/2", "reason": "sold out"}
        answer = client.post(f"{V1}/links/{link.id}/rotate", json=body, headers=ops)
        assert answer.status_code == 200
        assert answer.json()["code"] == link.code
        assert answer.json()["destination_url"] == "https://shop.example.com/p/2"

    def test_rotation_without_a_reason_is_422(
        self, client: TestClient, db: Session, world: World, ops: dict[str, str]
    ) -> None:
        link = issued(db, world, world.creator.id)
        answer = client.post(f"{V1}/links/{link.id}/rotate", json={"destination_url": URL}, headers=ops)
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["loc"] == ["body", "reason"]

    def test_rotation_off_the_allow_list_is_422(
        self, client: TestClient, db: Session, world: World, ops: dict[str, str]
    ) -> None:
        link = issued(db, world, world.creator.id)
        body = {"destination_url": "https://evil.example.net/", "reason": "x"}
        answer = client.post(f"{V1}/links/{link.id}/rotate", json=body, headers=ops)
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["loc"] == ["destination_url"]

    def test_retirement_is_recorded(self, client: TestClient, db: Session, world: World, ops: dict[str, str]) -> None:
        link = issued(db, world, world.creator.id)
        answer = client.post(f"{V1}/links/{link.id}/retire", json={"reason": "creator left"}, headers=ops)
        assert answer.status_code == 200 and answer.json()["status"] == "retired"
        assert client.post(f"{V1}/links/{link.id}/retire", json={"reason": "again"}, headers=ops).status_code == 409


class TestScopes:
    def test_a_creator_key_sees_only_its_own_links_and_coupons(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        own = issued(db, world, world.creator.id)
        other = issued(db, world, world.spare.id)
        coupon.issue_creator_code(db, world.ops, campaign_id=world.campaign.id, creator_id=world.creator.id)
        coupon.issue_creator_code(db, world.ops, campaign_id=world.campaign.id, creator_id=world.spare.id)
        coupon.issue_batch(db, world.ops, campaign_id=world.campaign.id, count=3)
        mine = bearer(db, world.creator_user)

        assert [x["id"] for x in client.get(f"{V1}/links", headers=mine).json()] == [own.id]
        assert client.get(f"{V1}/links", params={"creator_id": world.spare.id}, headers=mine).json() == []
        assert client.get(f"{V1}/links/{own.id}", headers=mine).status_code == 200
        assert client.get(f"{V1}/links/{other.id}", headers=mine).status_code == 404
        codes = client.get(f"{V1}/coupons", headers=mine).json()
        assert [(c["creator_id"], c["code"]) for c in codes] == [(world.creator.id, "ANNAGLOWSPRI")]

    def test_a_creator_key_sees_only_its_own_notifications(self, client: TestClient, db: Session, world: World) -> None:
        import httpx

        for creator_id in (world.creator.id, world.spare.id):
            link = issued(db, world, creator_id)
            link.status = "live"
        db.flush()
        with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(404))) as probe:
            health.check_links(db, factories.SYSTEM, client=probe, brand_id=world.brand.id)
        mine = client.get(f"{V1}/notifications", headers=bearer(db, world.creator_user)).json()
        assert [(n["kind"], n["creator_id"]) for n in mine] == [("link.broken", world.creator.id)]
        staff = client.get(
            f"{V1}/notifications", params={"brand_id": world.brand.id}, headers=bearer(db, world.ops_user)
        )
        assert len(staff.json()) == 4

    def test_social_ops_of_another_brand_gets_404_for_a_link(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        link = issued(db, world, world.creator.id)
        other = build_world(db, handle="someone.else")
        stranger = bearer(db, other.ops_user)
        assert client.get(f"{V1}/links/{link.id}", headers=stranger).status_code == 404
        assert client.post(f"{V1}/links/{link.id}/signoff", json={}, headers=stranger).status_code == 404
        rotate = {"destination_url": URL, "reason": "hijack"}
        assert client.post(f"{V1}/links/{link.id}/rotate", json=rotate, headers=stranger).status_code == 404
        assert client.get(f"{V1}/links", headers=stranger).json() == []
        assert client.get(f"{V1}/brands/{world.brand.id}/signoffs", headers=stranger).status_code == 404


class TestSignoffQueue:
    def test_pending_links_are_listed_with_their_due_times(
        self, client: TestClient, db: Session, world: World, ops: dict[str, str]
    ) -> None:
        pending = issued(db, world, world.creator.id)
        service.sign_off(db, world.ops, link_id=issued(db, world, world.creator.id, sku="SKU-A1").id)
        issued(db, world, world.spare.id, submit=False)
        answer = client.get(f"{V1}/brands/{world.brand.id}/signoffs", headers=ops)
        assert answer.status_code == 200
        queue = answer.json()
        assert [x["id"] for x in queue["pending"]] == [pending.id]
        due = dt.datetime.fromisoformat(queue["pending"][0]["signoff_due_at"])
        assert due == pending.signoff_due_at
        assert queue["breaches"] == []


class TestCoupons:
    def test_a_creator_code_is_issued_once(self, client: TestClient, world: World, ops: dict[str, str]) -> None:
        path = f"{V1}/campaigns/{world.campaign.id}/coupons"
        answer = client.post(path, json={"creator_id": world.creator.id}, headers=ops)
        assert answer.status_code == 201, answer.text
        assert answer.json()["code"] == "ANNAGLOWSPRI"
        assert answer.json()["valid_until"] is not None
        assert client.post(path, json={"creator_id": world.creator.id}, headers=ops).status_code == 409

    def test_a_batch_returns_every_code(self, client: TestClient, world: World, ops: dict[str, str]) -> None:
        answer = client.post(
            f"{V1}/campaigns/{world.campaign.id}/coupon-batches", json={"count": 25, "prefix": "vip"}, headers=ops
        )
        assert answer.status_code == 201
        codes = [c["code"] for c in answer.json()]
        assert len(set(codes)) == 25 and all(c.startswith("VIP-") for c in codes)
        assert all(c["is_single_use"] for c in answer.json())

    def test_a_batch_count_outside_the_limits_is_422(
        self, client: TestClient, world: World, ops: dict[str, str]
    ) -> None:
        path = f"{V1}/campaigns/{world.campaign.id}/coupon-batches"
        assert client.post(path, json={"count": 0}, headers=ops).status_code == 422
        assert client.post(path, json={"count": 10_001}, headers=ops).status_code == 422

    def test_an_import_of_a_good_file_reports_the_count(
        self, client: TestClient, world: World, ops: dict[str, str]
    ) -> None:
        data = b"code,creator_handle\nANNA10,anna.glow\nGIFT-100,\n"
        answer = client.post(
            f"{V1}/campaigns/{world.campaign.id}/coupons/import", files={"file": ("codes.csv", data)}, headers=ops
        )
        assert answer.status_code == 200 and answer.json() == {"imported": 2}
        listed = client.get(f"{V1}/coupons", params={"campaign_id": world.campaign.id}, headers=ops).json()
        assert sorted(c["code"] for c in listed) == ["ANNA10", "GIFT-100"]

    def test_an_import_of_a_bad_file_is_422_line_by_line_and_imports_nothing(
        self, client: TestClient, world: World, ops: dict[str, str]
    ) -> None:
        data = b"code,creator_handle\nANNA10,anna.glow\nx,anna.glow\nGIFT-100,ghost\n"
        answer = client.post(
            f"{V1}/campaigns/{world.campaign.id}/coupons/import", files={"file": ("codes.csv", data)}, headers=ops
        )
        assert answer.status_code == 422
        assert [e["loc"] for e in answer.json()["errors"]] == [["line 3", "code"], ["line 4", "creator_handle"]]
        assert client.get(f"{V1}/coupons", params={"campaign_id": world.campaign.id}, headers=ops).json() == []

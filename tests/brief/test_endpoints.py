"""The briefs, approvals and creatives API with API keys: status codes, error bodies naming the fields or the
missing items, and who may call what."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from clearline.brief import approval, creative
from clearline.kit.storage import LocalStorage
from clearline.link import service as link_service
from clearline.models import User
from tests import factories
from tests.brief.conftest import approved_brief, brief_in, offer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


def bearer(db: Session, user: User) -> dict[str, str]:
    """An API key for ``user``; commits the setup so far, which a failed request's rollback must not undo."""
    headers = {"authorization": f"Bearer {factories.api_key(db, user)}"}
    db.commit()
    return headers


@pytest.fixture
def keys(db, program):  # type: ignore[no-untyped-def]
    brand, _, _, _ = program
    other = factories.brand(db)
    return {
        role: bearer(db, factories.user(db, (role, brand.id), password=None))
        for role in ("marketing", "legal", "social_ops")
    } | {"outsider": bearer(db, factories.user(db, ("legal", other.id), password=None))}


@pytest.fixture(autouse=True)
def files(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    storage = LocalStorage(tmp_path, max_bytes=4096)
    monkeypatch.setattr(creative, "default_storage", lambda: storage)
    return storage


def body(campaign_id: int, **overrides: object) -> dict[str, object]:
    return brief_in(campaign_id, **overrides).model_dump(exclude_none=True)


def later() -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()


class TestCreateBrief:
    def test_a_complete_brief_is_created_as_a_draft(self, client, program, keys):
        brand, campaign, _, _ = program
        response = client.post(f"/api/v1/brands/{brand.id}/briefs", json=body(campaign.id), headers=keys["marketing"])
        assert response.status_code == 201
        assert response.json()["status"] == "draft" and response.json()["skus"] == ["SKU-A1"]

    def test_missing_tracking_fields_are_a_422_naming_each(self, client, program, keys):
        brand, campaign, _, _ = program
        data = body(campaign.id)
        for name in ("landing_url", "disclaimers", "measurement_note"):
            del data[name]
        response = client.post(f"/api/v1/brands/{brand.id}/briefs", json=data, headers=keys["marketing"])
        assert response.status_code == 422
        assert [e["loc"] for e in response.json()["errors"]] == [["landing_url"], ["disclaimers"], ["measurement_note"]]

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"skus": ["SKU-ZZ"]}, "skus"),
            ({"offer_code": "NOPE"}, "offer_code"),
            ({"landing_url": "https://evil.example.net/"}, "landing_url"),
        ],
    )
    def test_an_unknown_value_is_a_422_naming_the_field(self, client, program, keys, overrides, field):
        brand, campaign, _, _ = program
        response = client.post(
            f"/api/v1/brands/{brand.id}/briefs", json=body(campaign.id, **overrides), headers=keys["marketing"]
        )
        assert response.status_code == 422
        assert [e["loc"][0] for e in response.json()["errors"]] == [field]

    def test_legal_may_not_write_a_brief(self, client, program, keys):
        brand, campaign, _, _ = program
        response = client.post(f"/api/v1/brands/{brand.id}/briefs", json=body(campaign.id), headers=keys["legal"])
        assert response.status_code == 403

    def test_without_a_key_it_is_401(self, client, program):
        brand, campaign, _, _ = program
        assert client.post(f"/api/v1/brands/{brand.id}/briefs", json=body(campaign.id)).status_code == 401


class TestTemplates:
    def test_a_template_fills_a_brief(self, client, db, program, keys):
        brand, campaign, _, _ = program
        made = client.post(
            f"/api/v1/brands/{brand.id}/brief-templates",
            json={"name": "Serum", "defaults": {"disclaimers": ["#ad"], "measurement_note": "coupon"}},
            headers=keys["marketing"],
        )
        assert made.status_code == 201
        data = body(campaign.id, template_id=made.json()["id"])
        del data["disclaimers"], data["measurement_note"]
        response = client.post(f"/api/v1/brands/{brand.id}/briefs", json=data, headers=keys["marketing"])
        assert response.status_code == 201 and response.json()["disclaimers"] == ["#ad"]


class TestUpdateAndSubmit:
    def test_a_brief_in_review_cannot_be_edited(self, client, program, keys):
        brand, campaign, _, _ = program
        brief_id = client.post(
            f"/api/v1/brands/{brand.id}/briefs", json=body(campaign.id), headers=keys["marketing"]
        ).json()["id"]
        submitted = client.post(f"/api/v1/briefs/{brief_id}/submit", headers=keys["marketing"])
        assert submitted.status_code == 200 and submitted.json()["status"] == "in_review"
        response = client.put(
            f"/api/v1/briefs/{brief_id}", json=body(campaign.id, title="x"), headers=keys["marketing"]
        )
        assert response.status_code == 409

    def test_a_draft_is_edited(self, client, program, keys):
        brand, campaign, _, _ = program
        brief_id = client.post(
            f"/api/v1/brands/{brand.id}/briefs", json=body(campaign.id), headers=keys["marketing"]
        ).json()["id"]
        response = client.put(
            f"/api/v1/briefs/{brief_id}", json=body(campaign.id, title="Renamed"), headers=keys["marketing"]
        )
        assert response.status_code == 200 and response.json()["title"] == "Renamed"

    def test_another_brands_user_does_not_see_the_brief(self, client, program, keys):
        brand, campaign, _, _ = program
        brief_id = client.post(
            f"/api/v1/brands/{brand.id}/briefs", json=body(campaign.id), headers=keys["marketing"]
        ).json()["id"]
        assert client.get(f"/api/v1/briefs/{brief_id}", headers=keys["outsider"]).status_code == 404


class TestApprovals:
    def _submitted(self, client, program, keys):  # type: ignore[no-untyped-def]
        brand, campaign, _, _ = program
        brief_id = client.post(
            f"/api/v1/brands/{brand.id}/briefs", json=body(campaign.id), headers=keys["marketing"]
        ).json()["id"]
        client.post(f"/api/v1/briefs/{brief_id}/submit", headers=keys["marketing"])
        [step] = client.get("/api/v1/approvals", headers=keys["legal"]).json()
        return brief_id, step

    def test_the_queue_shows_a_reviewer_its_roles_steps(self, client, program, keys):
        brief_id, step = self._submitted(client, program, keys)
        assert (step["subject_type"], step["subject_id"], step["kind"]) == ("brief", brief_id, "legal_clearance")
        assert client.get("/api/v1/approvals", headers=keys["marketing"]).json() == []
        assert client.get("/api/v1/approvals", headers=keys["outsider"]).json() == []

    def test_legal_decides_and_the_decision_is_recorded(self, client, program, keys):
        brief_id, step = self._submitted(client, program, keys)
        response = client.post(
            f"/api/v1/approvals/{step['id']}/decision",
            json={"decision": "approved", "comment": "fine"},
            headers=keys["legal"],
        )
        assert response.status_code == 200
        decided = response.json()
        assert decided["decision"] == "approved" and decided["comment"] == "fine"
        assert decided["approver_id"] is not None and decided["decided_at"] is not None
        assert client.get(f"/api/v1/briefs/{brief_id}", headers=keys["marketing"]).json()["status"] == "approved"

    def test_another_role_gets_403_and_another_brand_404(self, client, program, keys):
        _, step = self._submitted(client, program, keys)
        url = f"/api/v1/approvals/{step['id']}/decision"
        assert client.post(url, json={"decision": "approved"}, headers=keys["marketing"]).status_code == 403
        assert client.post(url, json={"decision": "approved"}, headers=keys["outsider"]).status_code == 404

    def test_a_second_decision_is_409(self, client, program, keys):
        _, step = self._submitted(client, program, keys)
        url = f"/api/v1/approvals/{step['id']}/decision"
        client.post(url, json={"decision": "changes_requested", "comment": "claims"}, headers=keys["legal"])
        assert client.post(url, json={"decision": "approved"}, headers=keys["legal"]).status_code == 409

    def test_an_unknown_decision_is_422(self, client, program, keys):
        _, step = self._submitted(client, program, keys)
        response = client.post(
            f"/api/v1/approvals/{step['id']}/decision", json={"decision": "maybe"}, headers=keys["legal"]
        )
        assert response.status_code == 422


class TestCreatives:
    def _creative(self, client, db, program, keys) -> int:  # type: ignore[no-untyped-def]
        brand, campaign, creator, actors = program
        brief = approved_brief(db, brand, campaign, actors)
        db.commit()
        response = client.post(
            "/api/v1/creatives",
            json={"brief_id": brief.id, "creator_id": creator.id, "channel": "instagram"},
            headers=keys["social_ops"],
        )
        assert response.status_code == 201 and response.json()["status"] == "draft"
        return response.json()["id"]

    def test_a_version_with_a_png_is_stored(self, client, db, program, keys, files):
        creative_id = self._creative(client, db, program, keys)
        response = client.post(
            f"/api/v1/creatives/{creative_id}/versions",
            data={"caption": "Glow! #ad"},
            files={"file": ("hero.png", PNG, "image/png")},
            headers=keys["social_ops"],
        )
        assert response.status_code == 201
        assert response.json()["version"] == 1 and files.get(response.json()["file_key"]) == PNG

    def test_a_fake_png_is_422(self, client, db, program, keys):
        creative_id = self._creative(client, db, program, keys)
        response = client.post(
            f"/api/v1/creatives/{creative_id}/versions",
            data={"caption": "x"},
            files={"file": ("hero.png", b"MZ\x90\x00 not an image", "image/png")},
            headers=keys["social_ops"],
        )
        assert response.status_code == 422 and response.json()["errors"][0]["loc"] == ["file"]

    def test_scheduling_without_link_and_approval_is_409_listing_both(self, client, db, program, keys):
        creative_id = self._creative(client, db, program, keys)
        response = client.post(
            f"/api/v1/creatives/{creative_id}/schedule", json={"scheduled_for": later()}, headers=keys["social_ops"]
        )
        assert response.status_code == 409
        assert response.json()["error"] == "schedule_refused"
        assert [e["loc"] for e in response.json()["errors"]] == [["link"], ["approval"]]

    def test_scheduling_for_a_creator_without_contract_lists_all_three(self, client, db, program, keys):
        brand, campaign, _, actors = program
        brief = approved_brief(db, brand, campaign, actors)
        stranger = factories.creator(db, brand.id)
        made = creative.create_creative(
            db, actors["social_ops"], brief_id=brief.id, creator_id=stranger.id, channel="tiktok"
        )
        db.commit()
        response = client.post(
            f"/api/v1/creatives/{made.id}/schedule", json={"scheduled_for": later()}, headers=keys["social_ops"]
        )
        assert response.status_code == 409
        assert [e["loc"][0] for e in response.json()["errors"]] == ["contract", "link", "approval"]
        assert "contract" in response.json()["detail"]

    def test_only_social_ops_schedules(self, client, db, program, keys):
        creative_id = self._creative(client, db, program, keys)
        response = client.post(
            f"/api/v1/creatives/{creative_id}/schedule", json={"scheduled_for": later()}, headers=keys["marketing"]
        )
        assert response.status_code == 403

    def test_a_naive_time_is_422(self, client, db, program, keys):
        creative_id = self._creative(client, db, program, keys)
        response = client.post(
            f"/api/v1/creatives/{creative_id}/schedule",
            json={"scheduled_for": "2026-12-24T10:00:00"},
            headers=keys["social_ops"],
        )
        assert response.status_code == 422

    def test_approved_with_a_live_link_it_is_scheduled_then_posted(self, client, db, program, keys):
        brand, campaign, creator, actors = program
        creative_id = self._creative(client, db, program, keys)
        proof = {"url": "https://instagram.com/p/abc", "posted_at": later()}
        early = client.post(f"/api/v1/creatives/{creative_id}/proofs", json=proof, headers=keys["social_ops"])
        assert early.status_code == 409
        client.post(
            f"/api/v1/creatives/{creative_id}/versions", data={"caption": "Glow! #ad"}, headers=keys["social_ops"]
        )
        [step] = client.get("/api/v1/approvals", headers=keys["marketing"]).json()
        client.post(
            f"/api/v1/approvals/{step['id']}/decision", json={"decision": "approved"}, headers=keys["marketing"]
        )
        link = link_service.issue_link(
            db,
            actors["social_ops"],
            campaign_id=campaign.id,
            creator_id=creator.id,
            channel="instagram",
            destination_url="https://shop.example.com/serum",
        )
        link_service.sign_off(db, actors["social_ops"], link_id=link.id)
        db.commit()
        scheduled = client.post(
            f"/api/v1/creatives/{creative_id}/schedule", json={"scheduled_for": later()}, headers=keys["social_ops"]
        )
        assert scheduled.status_code == 201 and scheduled.json()["channel"] == "instagram"
        posted = client.post(f"/api/v1/creatives/{creative_id}/proofs", json=proof, headers=keys["social_ops"])
        assert posted.status_code == 201 and posted.json()["url"] == proof["url"]
        listed = client.get("/api/v1/creatives", headers=keys["social_ops"]).json()
        assert [c["status"] for c in listed] == ["posted"]


class TestProofs:
    def _scheduled(self, client, db, program, keys) -> int:  # type: ignore[no-untyped-def]
        brand, campaign, creator, actors = program
        brief = approved_brief(db, brand, campaign, actors)
        made = creative.create_creative(
            db, actors["social_ops"], brief_id=brief.id, creator_id=creator.id, channel="instagram"
        )
        creative.add_version(db, actors["social_ops"], creative_id=made.id, caption="Glow! #ad")
        [step] = creative.open_reviews_of(db, actors["marketing"], [made.id])[made.id]
        approval.decide(db, actors["marketing"], step_id=step.id, decision="approved")
        link = link_service.issue_link(
            db,
            actors["social_ops"],
            campaign_id=campaign.id,
            creator_id=creator.id,
            channel="instagram",
            destination_url="https://shop.example.com/serum",
        )
        link_service.sign_off(db, actors["social_ops"], link_id=link.id)
        creative.schedule(db, actors["social_ops"], creative_id=made.id, scheduled_for=dt.datetime.now(dt.UTC))
        db.commit()
        return made.id

    def test_a_proof_with_its_file_is_stored_from_a_multipart_form(self, client, db, program, keys, files):
        creative_id = self._scheduled(client, db, program, keys)
        response = client.post(
            f"/api/v1/creatives/{creative_id}/proofs",
            data={"url": "https://instagram.com/p/abc", "posted_at": dt.datetime.now(dt.UTC).isoformat()},
            files={"file": ("posted.png", PNG, "image/png")},
            headers=keys["social_ops"],
        )
        assert response.status_code == 201, response.text
        assert files.get(response.json()["file_key"]) == PNG

    def test_a_proof_file_over_the_size_limit_is_422_and_nothing_is_posted(self, client, db, program, keys):
        creative_id = self._scheduled(client, db, program, keys)
        response = client.post(
            f"/api/v1/creatives/{creative_id}/proofs",
            data={"url": "https://instagram.com/p/abc", "posted_at": dt.datetime.now(dt.UTC).isoformat()},
            files={"file": ("posted.png", PNG + b"\x00" * 5000, "image/png")},
            headers=keys["social_ops"],
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["file"] and "larger than 4096" in response.json()["detail"]
        listed = client.get("/api/v1/creatives", headers=keys["social_ops"]).json()
        assert [c["status"] for c in listed] == ["scheduled"]

    def test_a_proof_whose_url_is_not_a_web_address_is_422_naming_it(self, client, db, program, keys):
        creative_id = self._scheduled(client, db, program, keys)
        response = client.post(
            f"/api/v1/creatives/{creative_id}/proofs",
            json={"url": "javascript:alert(1)", "posted_at": dt.datetime.now(dt.UTC).isoformat()},
            headers=keys["social_ops"],
        )
        assert response.status_code == 422
        assert [e["loc"] for e in response.json()["errors"]] == [["url"]]
        assert client.get("/api/v1/creatives", headers=keys["social_ops"]).json()[0]["status"] == "scheduled"

    def test_a_proof_form_without_its_url_is_422_naming_it(self, client, db, program, keys):
        creative_id = self._scheduled(client, db, program, keys)
        response = client.post(
            f"/api/v1/creatives/{creative_id}/proofs",
            data={"posted_at": dt.datetime.now(dt.UTC).isoformat()},
            files={"file": ("posted.png", PNG, "image/png")},
            headers=keys["social_ops"],
        )
        assert response.status_code == 422
        assert [e["loc"] for e in response.json()["errors"]] == [["body", "url"]]


class TestDuplicatesAndCollisions:
    def test_duplicates_are_listed_for_marketing(self, client, db, program, keys):
        brand, campaign, _, _ = program
        for team, title in (("growth", "Glow serum launch"), ("brand", "Glow serum launch!")):
            client.post(
                f"/api/v1/brands/{brand.id}/briefs",
                json=body(campaign.id, team=team, title=title),
                headers=keys["marketing"],
            )
        [found] = client.get("/api/v1/briefs-duplicates", headers=keys["marketing"]).json()
        assert found["skus"] == ["SKU-A1"] and found["teams"] == ["growth", "brand"]

    def test_collisions_are_listed_across_brands(self, client, db, program):
        brand, _, _, _ = program
        other = factories.brand(db)
        factories.skus(db, other.id)
        now = dt.datetime.now(dt.UTC)
        offer(db, other.id, "RIVAL", now, now + dt.timedelta(days=3), ("SKU-B1",))
        steward = bearer(
            db, factories.user(db, ("brand_steward", brand.id), ("brand_steward", other.id), password=None)
        )
        [found] = client.get("/api/v1/offer-collisions", headers=steward).json()
        assert found["offers"] == ["SPRING20", "RIVAL"] and found["skus"] == ["SKU-B1"]

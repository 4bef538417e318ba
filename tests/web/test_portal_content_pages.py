"""The portal's content forms through the TestClient: a creator (or its agency, for a roster creator) answers an
approved brief with a creative, uploads versions within the file limits, reads the feedback, and records proof
of posting — and can never reach another creator's content."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.auth import service as auth_service
from clearline.brief import approval, creative
from clearline.creator import service as creator_service
from clearline.kit.storage import LocalStorage
from clearline.link import service as link_service
from clearline.models import ApprovalStep, Creative, CreativeVersion, ProofOfPosting
from tests import factories
from tests.brief.conftest import approved_brief, build_program
from tests.web.conftest import log_in

PASSWORD = "correct horse battery"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


@pytest.fixture(autouse=True)
def files(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    storage = LocalStorage(tmp_path, max_bytes=2048)
    monkeypatch.setattr(creative, "default_storage", lambda: storage)
    return storage


@pytest.fixture
def world(db: Session):  # type: ignore[no-untyped-def]
    brand, campaign, creator, actors = build_program(db)
    brief = approved_brief(db, brand, campaign, actors)
    user = factories.user(db, ("creator", brand.id), creator_id=creator.id)
    db.commit()
    return {"brand": brand, "campaign": campaign, "creator": creator, "actors": actors, "brief": brief, "user": user}


def _signed_in(client: TestClient, email: str) -> str:
    client.headers["accept"] = "text/html"
    return log_in(client, email, PASSWORD)


def _new_creative(client: TestClient, token: str, brief_id: int, **fields: object) -> int:
    answer = client.post(
        f"/portal/briefs/{brief_id}/creatives",
        data={"channel": "instagram", "csrf_token": token, **fields},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    found = re.search(r"#creative-(\d+)$", answer.headers["location"])
    assert found
    return int(found.group(1))


def _upload(client: TestClient, token: str, creative_id: int, content: bytes, kind: str = "image/png") -> object:
    return client.post(
        f"/portal/creatives/{creative_id}/versions",
        data={"caption": "My glow routine #ad", "csrf_token": token},
        files={"file": ("cut.png", content, kind)},
        follow_redirects=False,
    )


class TestAnsweringABrief:
    def test_the_creator_sees_the_approved_brief_and_answers_it_for_a_channel(self, client, world) -> None:
        token = _signed_in(client, world["user"].email)
        page = client.get("/portal").text
        assert world["brief"].title in page and "New creative" in page
        creative_id = _new_creative(client, token, world["brief"].id)
        page = client.get("/portal").text
        assert f'id="creative-{creative_id}"' in page and "No version yet." in page

    def test_the_same_channel_twice_is_refused_on_the_page(self, client, world) -> None:
        token = _signed_in(client, world["user"].email)
        _new_creative(client, token, world["brief"].id)
        again = client.post(
            f"/portal/briefs/{world['brief'].id}/creatives", data={"channel": "instagram", "csrf_token": token}
        )
        assert again.status_code == 409
        assert "already answers brief" in again.text

    def test_a_brief_of_a_brand_without_a_contract_is_not_found(self, client, db, world) -> None:
        other = factories.brand(db)
        outsider = factories.creator(db, other.id)
        user = factories.user(db, ("creator", other.id), creator_id=outsider.id)
        db.commit()
        token = _signed_in(client, user.email)
        assert world["brief"].title not in client.get("/portal").text
        answer = client.post(
            f"/portal/briefs/{world['brief'].id}/creatives", data={"channel": "instagram", "csrf_token": token}
        )
        assert answer.status_code == 404
        assert db.scalar(select(Creative.id).where(Creative.creator_id == outsider.id)) is None

    def test_without_the_csrf_token_nothing_is_created(self, client, db, world) -> None:
        _signed_in(client, world["user"].email)
        answer = client.post(f"/portal/briefs/{world['brief'].id}/creatives", data={"channel": "instagram"})
        assert answer.status_code == 401
        assert db.scalar(select(Creative.id)) is None

    def test_staff_cannot_use_the_portal_forms(self, client, db, world) -> None:
        ops = factories.user(db, ("social_ops", world["brand"].id))
        db.commit()
        token = _signed_in(client, ops.email)
        answer = client.post(
            f"/portal/briefs/{world['brief'].id}/creatives", data={"channel": "instagram", "csrf_token": token}
        )
        assert answer.status_code == 403


class TestVersions:
    def test_a_version_is_uploaded_and_sent_for_approval_with_its_due_time(self, client, db, world, files) -> None:
        token = _signed_in(client, world["user"].email)
        creative_id = _new_creative(client, token, world["brief"].id)
        answer = _upload(client, token, creative_id, PNG)
        assert answer.status_code == 303  # type: ignore[attr-defined]
        version = db.scalar(select(CreativeVersion).where(CreativeVersion.creative_id == creative_id))
        assert version is not None and files.get(version.file_key) == PNG
        [step] = db.scalars(
            select(ApprovalStep).where(ApprovalStep.subject_type == "creative", ApprovalStep.subject_id == creative_id)
        )
        page = client.get("/portal").text
        assert "Version 1" in page and "cut.png" in page
        assert "In review: content check by marketing, due" in page and step.due_at.strftime("%Y-%m-%d") in page

    @pytest.mark.parametrize(
        ("content", "kind", "message"),
        [
            (b"MZ\x90\x00 a program", "application/x-msdownload", "type &#39;application/x-msdownload&#39; is not"),
            (PNG + b"\x00" * 4096, "image/png", "file is larger than 2048 bytes"),
            (b"MZ\x90\x00 not a picture", "image/png", "file content does not match its type"),
        ],
    )
    def test_a_file_outside_the_limits_is_refused_with_the_reason_on_the_page(
        self, client, db, world, content, kind, message
    ) -> None:
        token = _signed_in(client, world["user"].email)
        creative_id = _new_creative(client, token, world["brief"].id)
        answer = _upload(client, token, creative_id, content, kind)
        assert answer.status_code == 422  # type: ignore[attr-defined]
        assert message in answer.text  # type: ignore[attr-defined]
        assert 'role="alert"' in answer.text  # type: ignore[attr-defined]
        assert db.scalar(select(CreativeVersion.id).where(CreativeVersion.creative_id == creative_id)) is None

    def test_a_creator_cannot_upload_to_another_creators_creative(self, client, db, world) -> None:
        brand, actors = world["brand"], world["actors"]
        other = factories.creator(db, brand.id)
        factories.contract(db, brand.id, creator_id=other.id)
        theirs = creative.create_creative(
            db, actors["social_ops"], brief_id=world["brief"].id, creator_id=other.id, channel="tiktok"
        )
        db.commit()
        token = _signed_in(client, world["user"].email)
        assert f'id="creative-{theirs.id}"' not in client.get("/portal").text
        assert _upload(client, token, theirs.id, PNG).status_code == 404  # type: ignore[attr-defined]


class TestFeedbackAndProof:
    def _approved_and_scheduled(self, db: Session, world: dict, creative_id: int) -> None:  # type: ignore[type-arg]
        actors, reviewer = world["actors"], factories.user(db, ("marketing", world["brand"].id))
        [step] = creative.open_reviews_of(db, actors["marketing"], [creative_id])[creative_id]
        approval.decide(
            db, auth_service.actor_for(db, reviewer), step_id=step.id, decision="approved", comment="on brand, go"
        )
        link = link_service.issue_link(
            db,
            actors["social_ops"],
            campaign_id=world["campaign"].id,
            creator_id=world["creator"].id,
            channel="instagram",
            destination_url="https://shop.example.com/serum",
        )
        link_service.sign_off(db, actors["social_ops"], link_id=link.id)
        creative.schedule(db, actors["social_ops"], creative_id=creative_id, scheduled_for=dt.datetime.now(dt.UTC))
        db.commit()
        world["reviewer"] = reviewer

    def test_the_creator_reads_who_decided_when_and_why(self, client, db, world) -> None:
        token = _signed_in(client, world["user"].email)
        creative_id = _new_creative(client, token, world["brief"].id)
        _upload(client, token, creative_id, PNG)
        [step] = creative.open_reviews_of(db, world["actors"]["marketing"], [creative_id])[creative_id]
        approval.decide(
            db, world["actors"]["marketing"], step_id=step.id, decision="changes_requested", comment="add #ad up top"
        )
        db.commit()
        page = client.get("/portal").text
        row = re.search(rf'<tr data-step-id="{step.id}">(.*?)</tr>', page, re.S)
        assert row, page
        assert "changes requested" in row.group(1) and "add #ad up top" in row.group(1)
        assert world["actors"]["marketing"].label.split("@")[0].replace("user", "User ") in row.group(1)
        assert step.decided_at is not None and step.decided_at.strftime("%Y-%m-%d %H:%M") in row.group(1)

    def test_the_creator_records_proof_of_posting_with_a_screenshot(self, client, db, world, files) -> None:
        token = _signed_in(client, world["user"].email)
        creative_id = _new_creative(client, token, world["brief"].id)
        _upload(client, token, creative_id, PNG)
        self._approved_and_scheduled(db, world, creative_id)
        assert "Record proof of posting" in client.get("/portal").text
        answer = client.post(
            f"/portal/creatives/{creative_id}/proofs",
            data={"url": "https://instagram.com/p/glow1", "posted_at": "2026-11-20T18:30", "csrf_token": token},
            files={"file": ("shot.png", PNG, "image/png")},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        proof = db.scalar(select(ProofOfPosting).where(ProofOfPosting.creative_id == creative_id))
        assert proof is not None and files.get(proof.file_key) == PNG
        assert proof.posted_at == dt.datetime(2026, 11, 20, 18, 30, tzinfo=dt.UTC)
        page = client.get("/portal").text
        assert "https://instagram.com/p/glow1" in page and "2026-11-20 18:30 UTC" in page

    def test_a_proof_without_url_and_time_names_both(self, client, db, world) -> None:
        token = _signed_in(client, world["user"].email)
        creative_id = _new_creative(client, token, world["brief"].id)
        _upload(client, token, creative_id, PNG)
        self._approved_and_scheduled(db, world, creative_id)
        answer = client.post(f"/portal/creatives/{creative_id}/proofs", data={"csrf_token": token})
        assert answer.status_code == 422
        assert "url: " in answer.text and "posted_at: " in answer.text
        assert db.scalar(select(ProofOfPosting.id)) is None


class TestAgency:
    def test_an_agency_answers_for_its_roster_creator_and_not_for_others(self, client, db, world) -> None:
        brand = world["brand"]
        agency = factories.agency(db, brand.id)
        creator_service.import_roster(
            db, factories.SYSTEM, agency_id=agency.id, data=f"handle\n{world['creator'].handle}\n"
        )
        off_roster = factories.creator(db, brand.id)
        user = factories.user(db, ("agency", brand.id), agency_id=agency.id)
        db.commit()
        token = _signed_in(client, user.email)
        page = client.get("/portal").text
        assert world["brief"].title in page and f"@{world['creator'].handle}" in page
        creative_id = _new_creative(client, token, world["brief"].id, creator_id=world["creator"].id)
        assert _upload(client, token, creative_id, PNG).status_code == 303  # type: ignore[attr-defined]
        made = db.get(Creative, creative_id)
        assert made is not None and made.creator_id == world["creator"].id and made.status == "in_review"
        refused = client.post(
            f"/portal/briefs/{world['brief'].id}/creatives",
            data={"channel": "tiktok", "creator_id": str(off_roster.id), "csrf_token": token},
        )
        assert refused.status_code == 403

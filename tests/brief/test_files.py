"""Reviewers open what they approve: a version's file and a proof's file, streamed to whoever may read the
creative (API key or web session), with the stored type, a safe name and no sniffing; 404 for anyone else."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from clearline.brief import approval, creative
from clearline.kit.storage import LocalStorage
from clearline.link import service as link_service
from clearline.models import CreativeVersion, ProofOfPosting
from tests import factories
from tests.brief.conftest import approved_brief
from tests.brief.test_endpoints import bearer
from tests.web.conftest import log_in

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
PDF = b"%PDF-1.7\n" + b"x" * 200_000  # several chunks


@pytest.fixture(autouse=True)
def files(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    storage = LocalStorage(tmp_path / "files", max_bytes=1024 * 1024)
    monkeypatch.setattr(creative, "default_storage", lambda: storage)
    return storage


@pytest.fixture
def made(db, program):  # type: ignore[no-untyped-def]
    """A creative by the program's creator with a first version (hero.png) and a second one without a file."""
    brand, campaign, creator, actors = program
    brief = approved_brief(db, brand, campaign, actors)
    found = creative.create_creative(
        db, actors["social_ops"], brief_id=brief.id, creator_id=creator.id, channel="instagram"
    )
    first = creative.add_version(
        db,
        actors["marketing"],
        creative_id=found.id,
        caption="v1",
        data=PNG,
        file_name="hero.png",
        content_type="image/png",
    )
    second = creative.add_version(db, actors["marketing"], creative_id=found.id, caption="v2, caption only")
    db.commit()
    return found, first, second


def url(creative_id: int, version_id: int) -> str:
    return f"/api/v1/creatives/{creative_id}/versions/{version_id}/file"


def staff(db: Session, role: str, brand_id: int) -> dict[str, str]:
    return bearer(db, factories.user(db, (role, brand_id), password=None))


class TestVersionFile:
    @pytest.mark.parametrize("role", ["marketing", "legal", "social_ops", "admin"])
    def test_the_brands_reviewers_get_the_file_with_its_type_and_name(self, client, db, program, made, role):
        brand = program[0]
        found, first, _ = made
        answer = client.get(url(found.id, first.id), headers=staff(db, role, brand.id))
        assert answer.status_code == 200, answer.text
        assert answer.content == PNG
        assert answer.headers["content-type"] == "image/png"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-disposition"] == "inline; filename=\"hero.png\"; filename*=UTF-8''hero.png"
        assert answer.headers["content-length"] == str(len(PNG))

    def test_download_asks_the_browser_to_save_it(self, client, db, program, made):
        found, first, _ = made
        answer = client.get(
            url(found.id, first.id), params={"download": "true"}, headers=staff(db, "legal", program[0].id)
        )
        assert answer.headers["content-disposition"].startswith('attachment; filename="hero.png"')

    def test_the_creative_s_creator_gets_its_own_file(self, client, db, program, made):
        brand, _, creator, _ = program
        found, first, _ = made
        headers = bearer(db, factories.user(db, ("creator", brand.id), creator_id=creator.id, password=None))
        assert client.get(url(found.id, first.id), headers=headers).content == PNG

    def test_another_creator_of_the_brand_gets_404(self, client, db, program, made):
        brand = program[0]
        found, first, _ = made
        other = factories.creator(db, brand.id)
        headers = bearer(db, factories.user(db, ("creator", brand.id), creator_id=other.id, password=None))
        answer = client.get(url(found.id, first.id), headers=headers)
        assert answer.status_code == 404
        assert PNG not in answer.content

    def test_staff_of_another_brand_get_404(self, client, db, made):
        found, first, _ = made
        elsewhere = factories.brand(db)
        assert client.get(url(found.id, first.id), headers=staff(db, "legal", elsewhere.id)).status_code == 404

    def test_without_credentials_it_is_401(self, client, made):
        found, first, _ = made
        assert client.get(url(found.id, first.id)).status_code == 401

    def test_a_version_without_a_file_is_404(self, client, db, program, made):
        found, _, second = made
        assert client.get(url(found.id, second.id), headers=staff(db, "legal", program[0].id)).status_code == 404

    def test_a_version_of_another_creative_is_404(self, client, db, program, made):
        brand, _, creator, actors = program
        found, first, _ = made
        brief_id = found.brief_id
        other = creative.create_creative(
            db, actors["marketing"], brief_id=brief_id, creator_id=creator.id, channel="tiktok"
        )
        db.commit()
        assert client.get(url(other.id, first.id), headers=staff(db, "legal", brand.id)).status_code == 404

    def test_a_web_session_opens_it_as_a_page_links_to_it(self, client, db, program, made):
        brand = program[0]
        found, first, _ = made
        reviewer = factories.user(db, ("marketing", brand.id), password="correct horse battery")
        db.commit()
        log_in(client, reviewer.email, "correct horse battery")
        answer = client.get(url(found.id, first.id))
        assert answer.status_code == 200 and answer.content == PNG

    def test_a_large_file_is_streamed_whole(self, client, db, program, made, files, monkeypatch):
        brand, _, _, actors = program
        found, _, _ = made
        version = creative.add_version(
            db,
            actors["marketing"],
            creative_id=found.id,
            caption="v3",
            data=PDF,
            file_name="deck.pdf",
            content_type="application/pdf",
        )
        db.commit()
        monkeypatch.setattr(LocalStorage, "get", lambda self, key: pytest.fail("read whole into memory"))
        answer = client.get(url(found.id, version.id), headers=staff(db, "legal", brand.id))
        assert answer.content == PDF
        assert answer.headers["content-type"] == "application/pdf"
        assert answer.headers["content-length"] == str(len(PDF))

    def test_a_name_cannot_break_the_header_or_pick_another_extension(self, client, db, program, made):
        found, first, _ = made
        stored = db.get(CreativeVersion, first.id)
        assert stored is not None
        stored.file_name = 'a"b\r\nSet-Cookie: x=1;é.html'
        db.commit()
        answer = client.get(url(found.id, first.id), headers=staff(db, "legal", program[0].id))
        disposition = answer.headers["content-disposition"]
        assert disposition == (
            'inline; filename="a_bSet-Cookie_ x_1_e.html.png"; '
            "filename*=UTF-8''a%22bSet-Cookie%3A%20x%3D1%3B%C3%A9.html.png"
        )
        assert "set-cookie" not in answer.headers

    def test_a_type_the_upload_never_accepts_is_only_a_download(self, client, db, program, made):
        found, first, _ = made
        stored = db.get(CreativeVersion, first.id)
        assert stored is not None
        stored.content_type = "text/html"
        db.commit()
        answer = client.get(url(found.id, first.id), headers=staff(db, "legal", program[0].id))
        assert answer.headers["content-type"] == "application/octet-stream"
        assert answer.headers["content-disposition"].startswith('attachment; filename="hero.png"')

    def test_a_row_whose_key_is_a_path_serves_nothing(self, client, db, program, made, files):
        found, first, _ = made
        secret = files.root.parent / "secret.txt"
        secret.write_text("do not serve")
        stored = db.get(CreativeVersion, first.id)
        assert stored is not None
        stored.file_key = "../secret.txt"
        db.commit()
        answer = client.get(url(found.id, first.id), headers=staff(db, "legal", program[0].id))
        assert answer.status_code == 404
        assert b"do not serve" not in answer.content


class TestProofFile:
    def _posted(self, db: Session, program, data: bytes | None) -> tuple[int, ProofOfPosting]:  # type: ignore[no-untyped-def]
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
        proof = creative.add_proof(
            db,
            actors["social_ops"],
            creative_id=made.id,
            url="https://instagram.com/p/1",
            posted_at=dt.datetime.now(dt.UTC),
            data=data,
            file_name="posted.png",
            content_type="image/png",
        )
        db.commit()
        return made.id, proof

    def test_the_proof_keeps_its_files_name_type_and_size(self, db, program):
        _, proof = self._posted(db, program, PNG)
        assert (proof.file_name, proof.content_type, proof.size_bytes) == ("posted.png", "image/png", len(PNG))

    def test_a_reviewer_opens_the_proofs_file(self, client, db, program):
        creative_id, proof = self._posted(db, program, PNG)
        answer = client.get(
            f"/api/v1/creatives/{creative_id}/proofs/{proof.id}/file", headers=staff(db, "marketing", program[0].id)
        )
        assert answer.status_code == 200 and answer.content == PNG
        assert answer.headers["content-type"] == "image/png"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-disposition"].startswith('inline; filename="posted.png"')

    def test_a_proof_without_a_file_is_404(self, client, db, program):
        creative_id, proof = self._posted(db, program, None)
        answer = client.get(
            f"/api/v1/creatives/{creative_id}/proofs/{proof.id}/file", headers=staff(db, "marketing", program[0].id)
        )
        assert answer.status_code == 404

    def test_staff_of_another_brand_get_404(self, client, db, program):
        creative_id, proof = self._posted(db, program, PNG)
        elsewhere = factories.brand(db)
        answer = client.get(
            f"/api/v1/creatives/{creative_id}/proofs/{proof.id}/file", headers=staff(db, "social_ops", elsewhere.id)
        )
        assert answer.status_code == 404

    def test_a_proof_kept_before_names_were_stored_gets_a_name_from_its_id(self, client, db, program):
        creative_id, proof = self._posted(db, program, PNG)
        stored = db.get(ProofOfPosting, proof.id)
        assert stored is not None
        stored.file_name = ""
        db.commit()
        answer = client.get(
            f"/api/v1/creatives/{creative_id}/proofs/{proof.id}/file", headers=staff(db, "marketing", program[0].id)
        )
        assert answer.headers["content-disposition"].startswith(f'inline; filename="proof-{proof.id}.png"')

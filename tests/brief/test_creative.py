"""Creatives: versions with stored files, review rounds (legal too for high-risk claims), the scheduling gate
with no exceptions, and proofs of posting."""

from __future__ import annotations

import datetime as dt
from itertools import product

import pytest
from sqlalchemy import select

from clearline.auth import service as auth_service
from clearline.brief import approval, creative, service
from clearline.contract import service as contract_service
from clearline.kit.errors import ConflictError, ForbiddenError, NotFoundError, ValidationFailedError
from clearline.kit.storage import LocalStorage
from clearline.link import service as link_service
from clearline.models import AuditEvent, Contract, CreativeVersion, ScheduledPost
from tests import factories
from tests.brief.conftest import approved_brief, brief_in, open_steps, pin_clock

UTC = dt.UTC
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
MONDAY_10AM = dt.datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def tomorrow() -> dt.datetime:
    return dt.datetime.now(UTC) + dt.timedelta(days=1)


@pytest.fixture
def storage(tmp_path):  # type: ignore[no-untyped-def]
    return LocalStorage(tmp_path, max_bytes=1024)


@pytest.fixture
def made(db, program):  # type: ignore[no-untyped-def]
    """An instagram creative by the contracted creator on an approved brief."""
    brand, campaign, creator, actors = program
    brief = approved_brief(db, brand, campaign, actors)
    return creative.create_creative(
        db, actors["social_ops"], brief_id=brief.id, creator_id=creator.id, channel="Instagram"
    )


def approve_round(db, program, subject) -> None:  # type: ignore[no-untyped-def]
    _, _, _, actors = program
    for step in open_steps(db, subject, "creative"):
        approval.decide(db, actors[step.role], step_id=step.id, decision="approved")


def live_link(db, program) -> None:  # type: ignore[no-untyped-def]
    _, campaign, creator, actors = program
    link = link_service.issue_link(
        db,
        actors["social_ops"],
        campaign_id=campaign.id,
        creator_id=creator.id,
        channel="instagram",
        destination_url="https://shop.example.com/serum",
    )
    link_service.sign_off(db, actors["social_ops"], link_id=link.id)


def end_contract(db, program) -> None:  # type: ignore[no-untyped-def]
    brand, _, creator, _ = program
    contract = db.scalar(select(Contract).where(Contract.creator_id == creator.id))
    legal = factories.actor(db, ("legal", brand.id))
    contract_service.terminate_contract(db, legal, contract_id=contract.id, reason="creator left")


class TestCreateCreative:
    def test_a_creative_follows_an_approved_brief_on_one_channel(self, db, program, made):
        assert (made.status, made.channel, made.is_high_risk) == ("draft", "instagram", False)

    def test_a_brief_not_yet_approved_takes_no_creatives(self, db, program):
        brand, campaign, creator, actors = program
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        with pytest.raises(ConflictError):
            creative.create_creative(db, actors["social_ops"], brief_id=brief.id, creator_id=creator.id, channel="x")

    def test_a_creator_answers_its_own_brands_briefs_only(self, db, program):
        brand, campaign, creator, actors = program
        brief = approved_brief(db, brand, campaign, actors)
        stranger_brand = factories.brand(db)
        stranger = factories.creator(db, stranger_brand.id)
        user = factories.user(db, ("creator", stranger_brand.id), creator_id=stranger.id, password=None)
        with pytest.raises(NotFoundError):
            creative.create_creative(
                db, auth_service.actor_for(db, user), brief_id=brief.id, creator_id=stranger.id, channel="tiktok"
            )

    def test_legal_does_not_make_creatives(self, db, program):
        brand, campaign, creator, actors = program
        brief = approved_brief(db, brand, campaign, actors)
        with pytest.raises(ForbiddenError):
            creative.create_creative(db, actors["legal"], brief_id=brief.id, creator_id=creator.id, channel="x")


class TestAgencyScope:
    """An agency acts for its roster creators on the brands it works for, never for anyone else."""

    def _agency(self, db, brand):  # type: ignore[no-untyped-def]
        from clearline.creator import service as creator_service

        agency = factories.agency(db, brand.id)
        return agency, creator_service

    def test_an_agency_makes_and_reads_content_for_its_roster_creator(self, db, program):
        brand, campaign, creator, actors = program
        brief = approved_brief(db, brand, campaign, actors)
        agency, creator_service = self._agency(db, brand)
        creator_service.import_roster(db, factories.SYSTEM, agency_id=agency.id, data=f"handle\n{creator.handle}\n")
        who = factories.actor(db, ("agency", brand.id), agency_id=agency.id)
        made = creative.create_creative(db, who, brief_id=brief.id, creator_id=creator.id, channel="tiktok")
        creative.add_version(db, who, creative_id=made.id, caption="v1")
        assert [c.id for c in creative.list_creatives(db, who)] == [made.id]
        assert service.get_brief(db, who, brief.id).id == brief.id

    def test_an_agency_cannot_act_for_a_creator_off_its_roster(self, db, program):
        brand, campaign, creator, actors = program
        brief = approved_brief(db, brand, campaign, actors)
        agency, creator_service = self._agency(db, brand)
        member = factories.creator(db, brand.id)
        factories.contract(db, brand.id, creator_id=member.id)
        creator_service.import_roster(db, factories.SYSTEM, agency_id=agency.id, data=f"handle\n{member.handle}\n")
        who = factories.actor(db, ("agency", brand.id), agency_id=agency.id)
        with pytest.raises(ForbiddenError):
            creative.create_creative(db, who, brief_id=brief.id, creator_id=creator.id, channel="tiktok")
        made = creative.create_creative(
            db, actors["social_ops"], brief_id=brief.id, creator_id=creator.id, channel="tiktok"
        )
        assert creative.list_creatives(db, who) == []
        with pytest.raises(NotFoundError):
            creative.add_version(db, who, creative_id=made.id, caption="not mine")

    def test_an_agency_does_not_see_its_roster_creators_content_for_another_brand(self, db, program):
        brand, campaign, creator, actors = program
        agency, creator_service = self._agency(db, brand)
        creator_service.import_roster(db, factories.SYSTEM, agency_id=agency.id, data=f"handle\n{creator.handle}\n")
        other = factories.brand(db)
        factories.skus(db, other.id)
        brief_id = approved_brief(db, brand, campaign, actors).id
        elsewhere = creative.Creative(brand_id=other.id, brief_id=brief_id, creator_id=creator.id, channel="youtube")
        db.add(elsewhere)
        db.flush()
        who = factories.actor(db, ("agency", brand.id), agency_id=agency.id)
        assert elsewhere.id not in [c.id for c in creative.list_creatives(db, who)]


class TestAddVersion:
    def test_a_version_keeps_its_file_in_storage_under_a_content_key(self, db, program, made, storage):
        _, _, _, actors = program
        version = creative.add_version(
            db,
            actors["social_ops"],
            creative_id=made.id,
            caption="Glow! #ad",
            data=PNG,
            file_name="hero.png",
            content_type="image/png",
            storage=storage,
        )
        assert (version.version, version.file_name, version.content_type, version.size_bytes) == (
            1,
            "hero.png",
            "image/png",
            len(PNG),
        )
        assert version.file_key.endswith(".png") and storage.get(version.file_key) == PNG

    def test_versions_are_numbered_in_order(self, db, program, made):
        _, _, _, actors = program
        creative.add_version(db, actors["social_ops"], creative_id=made.id, caption="one")
        approval.decide(
            db, actors["marketing"], step_id=open_steps(db, made, "creative")[0].id, decision="changes_requested"
        )
        second = creative.add_version(db, actors["social_ops"], creative_id=made.id, caption="two")
        assert second.version == 2 and second.file_key == ""

    def test_a_fake_png_is_refused_and_nothing_is_recorded(self, db, program, made, storage):
        _, _, _, actors = program
        with pytest.raises(ValidationFailedError):
            creative.add_version(
                db,
                actors["social_ops"],
                creative_id=made.id,
                caption="x",
                data=b"GIF89a pretending",
                file_name="hero.png",
                content_type="image/png",
                storage=storage,
            )
        assert db.scalar(select(CreativeVersion).where(CreativeVersion.creative_id == made.id)) is None
        assert open_steps(db, made, "creative") == [] and made.status == "draft"

    def test_a_file_over_the_limit_or_of_a_refused_type_is_refused(self, db, program, made, storage):
        _, _, _, actors = program
        for data, content_type in ((PNG * 100, "image/png"), (b"<svg/>", "image/svg+xml")):
            with pytest.raises(ValidationFailedError):
                creative.add_version(
                    db,
                    actors["social_ops"],
                    creative_id=made.id,
                    caption="x",
                    data=data,
                    file_name="f",
                    content_type=content_type,
                    storage=storage,
                )

    def test_a_version_opens_a_content_check_for_marketing_on_its_channel(self, db, program, made, monkeypatch):
        _, _, _, actors = program
        pin_clock(monkeypatch, MONDAY_10AM)
        creative.add_version(db, actors["social_ops"], creative_id=made.id, caption="Glow! #ad")
        [step] = open_steps(db, made, "creative")
        assert (step.kind, step.role, step.channel) == ("content_check", "marketing", "instagram")
        assert step.due_at == dt.datetime(2026, 12, 10, 9, 0, tzinfo=UTC)  # 24 business hours
        assert made.status == "in_review"

    def test_a_high_risk_creative_needs_legal_clearance_in_its_first_round(self, db, program, monkeypatch):
        brand, campaign, creator, actors = program
        brief = approved_brief(db, brand, campaign, actors)
        risky = creative.create_creative(
            db, actors["social_ops"], brief_id=brief.id, creator_id=creator.id, channel="tiktok", is_high_risk=True
        )
        pin_clock(monkeypatch, MONDAY_10AM)
        creative.add_version(db, actors["social_ops"], creative_id=risky.id, caption="Clears acne in 3 days")
        steps = {s.kind: s for s in open_steps(db, risky, "creative")}
        assert sorted(steps) == ["content_check", "legal_clearance"]
        assert steps["legal_clearance"].role == "legal"
        assert steps["legal_clearance"].due_at == dt.datetime(2026, 12, 15, 9, 0, tzinfo=UTC)  # 48 business hours

    def test_reworked_claims_get_72_business_hours_of_legal_review(self, db, program, monkeypatch):
        brand, campaign, creator, actors = program
        brief = approved_brief(db, brand, campaign, actors)
        risky = creative.create_creative(
            db, actors["social_ops"], brief_id=brief.id, creator_id=creator.id, channel="tiktok", is_high_risk=True
        )
        creative.add_version(db, actors["social_ops"], creative_id=risky.id, caption="Clears acne in 3 days")
        legal_step = next(s for s in open_steps(db, risky, "creative") if s.role == "legal")
        approval.decide(db, actors["legal"], step_id=legal_step.id, decision="changes_requested", comment="proof?")
        pin_clock(monkeypatch, MONDAY_10AM)
        creative.add_version(db, actors["social_ops"], creative_id=risky.id, caption="Helps skin look clearer")
        steps = {s.kind: s for s in open_steps(db, risky, "creative")}
        assert sorted(steps) == ["claims_rework", "content_check"]
        assert steps["claims_rework"].due_at == dt.datetime(2026, 12, 18, 9, 0, tzinfo=UTC)

    def test_a_new_version_during_review_replaces_the_open_round(self, db, program, made):
        _, _, _, actors = program
        creative.add_version(db, actors["social_ops"], creative_id=made.id, caption="one")
        [old] = open_steps(db, made, "creative")
        creative.add_version(db, actors["social_ops"], creative_id=made.id, caption="one, fixed typo")
        [new] = open_steps(db, made, "creative")
        assert new.id != old.id and old.decision == "superseded"
        approval.decide(db, actors["marketing"], step_id=new.id, decision="approved")
        assert made.status == "approved"

    def test_an_approved_creative_takes_no_new_version(self, db, program, made):
        _, _, _, actors = program
        creative.add_version(db, actors["social_ops"], creative_id=made.id, caption="one")
        approve_round(db, program, made)
        with pytest.raises(ConflictError):
            creative.add_version(db, actors["social_ops"], creative_id=made.id, caption="two")

    def test_the_creator_may_add_its_own_version(self, db, program, made):
        brand, _, creator, _ = program
        user = factories.user(db, ("creator", brand.id), creator_id=creator.id, password=None)
        version = creative.add_version(db, auth_service.actor_for(db, user), creative_id=made.id, caption="mine")
        assert version.created_by_id == user.id


class TestOnCreativeDecision:
    def _risky(self, db, program):  # type: ignore[no-untyped-def]
        brand, campaign, creator, actors = program
        brief = approved_brief(db, brand, campaign, actors)
        risky = creative.create_creative(
            db, actors["social_ops"], brief_id=brief.id, creator_id=creator.id, channel="tiktok", is_high_risk=True
        )
        creative.add_version(db, actors["social_ops"], creative_id=risky.id, caption="Clears acne in 3 days")
        return risky, {s.role: s for s in open_steps(db, risky, "creative")}

    def test_approved_only_when_every_open_step_approves(self, db, program):
        _, _, _, actors = program
        risky, steps = self._risky(db, program)
        approval.decide(db, actors["marketing"], step_id=steps["marketing"].id, decision="approved")
        assert risky.status == "in_review" and risky.approved_at is None
        approval.decide(db, actors["legal"], step_id=steps["legal"].id, decision="approved")
        assert risky.status == "approved" and risky.approved_at is not None

    def test_a_change_request_supersedes_the_rounds_other_open_steps(self, db, program):
        _, _, _, actors = program
        risky, steps = self._risky(db, program)
        approval.decide(db, actors["legal"], step_id=steps["legal"].id, decision="changes_requested", comment="no")
        assert risky.status == "rework"
        other = steps["marketing"]
        assert (other.decision, other.approver_id) == ("superseded", None) and other.decided_at is not None
        with pytest.raises(ConflictError):
            approval.decide(db, actors["marketing"], step_id=other.id, decision="approved")
        assert risky.status == "rework"

    def test_a_superseded_step_never_breaches(self, db, program):
        _, _, _, actors = program
        risky, steps = self._risky(db, program)
        approval.decide(db, actors["legal"], step_id=steps["legal"].id, decision="changes_requested")
        later = steps["marketing"].due_at + dt.timedelta(days=10)
        assert steps["marketing"] not in approval.check_breaches(db, factories.SYSTEM, now=later)


class TestSchedule:
    @pytest.mark.parametrize(
        ("has_contract", "has_link", "has_approval"),
        [combo for combo in product([True, False], repeat=3) if not all(combo)],
    )
    def test_each_missing_item_is_named(self, db, program, made, has_contract, has_link, has_approval):
        _, _, _, actors = program
        if has_approval:
            creative.add_version(db, actors["social_ops"], creative_id=made.id, caption="Glow! #ad")
            approve_round(db, program, made)
        if has_link:
            live_link(db, program)
        if not has_contract:
            end_contract(db, program)
        with pytest.raises(creative.ScheduleRefusedError) as refused:
            creative.schedule(db, actors["social_ops"], creative_id=made.id, scheduled_for=tomorrow())
        expected = [
            name
            for name, present in (("contract", has_contract), ("link", has_link), ("approval", has_approval))
            if not present
        ]
        assert refused.value.status_code == 409
        assert [d["loc"][0] for d in refused.value.details] == expected
        assert all(name in refused.value.message or name == "link" for name in expected if name != "approval")
        assert db.scalar(select(ScheduledPost).where(ScheduledPost.creative_id == made.id)) is None

    def test_with_contract_link_and_approval_it_is_scheduled(self, db, program, made):
        _, _, _, actors = program
        creative.add_version(db, actors["social_ops"], creative_id=made.id, caption="Glow! #ad")
        approve_round(db, program, made)
        live_link(db, program)
        when = tomorrow()
        post = creative.schedule(db, actors["social_ops"], creative_id=made.id, scheduled_for=when)
        assert (post.channel, post.scheduled_for, post.scheduled_by_id) == (
            "instagram",
            when,
            actors["social_ops"].user_id,
        )
        assert made.status == "scheduled"

    def test_a_link_pending_sign_off_is_not_live(self, db, program, made):
        _, campaign, creator, actors = program
        creative.add_version(db, actors["social_ops"], creative_id=made.id, caption="Glow! #ad")
        approve_round(db, program, made)
        link_service.issue_link(
            db,
            actors["social_ops"],
            campaign_id=campaign.id,
            creator_id=creator.id,
            channel="instagram",
            destination_url="https://shop.example.com/serum",
        )
        with pytest.raises(creative.ScheduleRefusedError) as refused:
            creative.schedule(db, actors["social_ops"], creative_id=made.id, scheduled_for=tomorrow())
        assert [d["loc"][0] for d in refused.value.details] == ["link"]

    def test_a_link_that_expires_before_the_post_does_not_count(self, db, program, made):
        _, _, _, actors = program
        creative.add_version(db, actors["social_ops"], creative_id=made.id, caption="Glow! #ad")
        approve_round(db, program, made)
        live_link(db, program)
        with pytest.raises(creative.ScheduleRefusedError) as refused:
            creative.schedule(
                db, actors["social_ops"], creative_id=made.id, scheduled_for=tomorrow() + dt.timedelta(days=90)
            )
        assert [d["loc"][0] for d in refused.value.details] == ["link"]

    def test_a_creative_in_rework_is_not_approved(self, db, program, made):
        _, _, _, actors = program
        creative.add_version(db, actors["social_ops"], creative_id=made.id, caption="Glow! #ad")
        [step] = open_steps(db, made, "creative")
        approval.decide(db, actors["marketing"], step_id=step.id, decision="changes_requested")
        live_link(db, program)
        with pytest.raises(creative.ScheduleRefusedError) as refused:
            creative.schedule(db, actors["social_ops"], creative_id=made.id, scheduled_for=tomorrow())
        assert [d["loc"][0] for d in refused.value.details] == ["approval"]
        assert "instagram" in refused.value.details[0]["msg"]

    @pytest.mark.parametrize("role", ["marketing", "legal", "finance"])
    def test_only_social_ops_schedules(self, db, program, made, role):
        brand, _, _, actors = program
        creative.add_version(db, actors["social_ops"], creative_id=made.id, caption="Glow! #ad")
        approve_round(db, program, made)
        live_link(db, program)
        with pytest.raises(ForbiddenError):
            creative.schedule(db, factories.actor(db, (role, brand.id)), creative_id=made.id, scheduled_for=tomorrow())
        assert made.status == "approved"

    def test_another_brands_social_ops_does_not_find_the_creative(self, db, program, made):
        outsider = factories.actor(db, ("social_ops", factories.brand(db).id))
        with pytest.raises(NotFoundError):
            creative.schedule(db, outsider, creative_id=made.id, scheduled_for=tomorrow())

    def test_a_time_without_an_offset_is_refused(self, db, program, made):
        _, _, _, actors = program
        with pytest.raises(ValidationFailedError) as caught:
            creative.schedule(
                db, actors["social_ops"], creative_id=made.id, scheduled_for=dt.datetime(2026, 12, 24, 10, 0)
            )
        assert caught.value.details[0]["loc"] == ["scheduled_for"]

    def test_the_refusal_is_audited(self, db, program, made):
        _, _, _, actors = program
        with pytest.raises(creative.ScheduleRefusedError):
            creative.schedule(db, actors["social_ops"], creative_id=made.id, scheduled_for=tomorrow())
        event = db.scalar(
            select(AuditEvent).where(AuditEvent.action == "schedule.refused", AuditEvent.entity_id == str(made.id))
        )
        assert [m["item"] for m in event.after["missing"]] == ["link", "approval"]


class TestAddProof:
    def _scheduled(self, db, program, made) -> None:  # type: ignore[no-untyped-def]
        _, _, _, actors = program
        creative.add_version(db, actors["social_ops"], creative_id=made.id, caption="Glow! #ad")
        approve_round(db, program, made)
        live_link(db, program)
        creative.schedule(db, actors["social_ops"], creative_id=made.id, scheduled_for=tomorrow())

    def test_a_proof_of_scheduled_content_keeps_url_time_and_file(self, db, program, made, storage):
        _, _, _, actors = program
        self._scheduled(db, program, made)
        posted_at = dt.datetime.now(UTC).replace(microsecond=0)
        proof = creative.add_proof(
            db,
            actors["social_ops"],
            creative_id=made.id,
            url="https://instagram.com/p/abc",
            posted_at=posted_at,
            data=PNG,
            file_name="screenshot.png",
            content_type="image/png",
            storage=storage,
        )
        assert (proof.url, proof.posted_at) == ("https://instagram.com/p/abc", posted_at)
        assert storage.get(proof.file_key) == PNG
        assert made.status == "posted"

    def test_unscheduled_content_cannot_be_posted(self, db, program, made):
        _, _, _, actors = program
        creative.add_version(db, actors["social_ops"], creative_id=made.id, caption="Glow! #ad")
        approve_round(db, program, made)
        with pytest.raises(ConflictError):
            creative.add_proof(
                db, actors["social_ops"], creative_id=made.id, url="https://instagram.com/p/abc", posted_at=tomorrow()
            )
        assert made.status == "approved"

    def test_the_creator_posts_its_own_proof(self, db, program, made):
        brand, _, creator, _ = program
        self._scheduled(db, program, made)
        user = factories.user(db, ("creator", brand.id), creator_id=creator.id, password=None)
        proof = creative.add_proof(
            db,
            auth_service.actor_for(db, user),
            creative_id=made.id,
            url="https://instagram.com/p/mine",
            posted_at=dt.datetime.now(UTC),
        )
        assert proof.creative_id == made.id

    def test_marketing_does_not_record_proofs(self, db, program, made):
        _, _, _, actors = program
        self._scheduled(db, program, made)
        with pytest.raises(ForbiddenError):
            creative.add_proof(
                db, actors["marketing"], creative_id=made.id, url="https://instagram.com/p/x", posted_at=tomorrow()
            )

"""A brief from draft to scheduled content, each step timed against its SLA; the scheduling gate."""

from __future__ import annotations

import datetime as dt

import pytest

from clearline.brief import approval, creative, service
from clearline.brief.schemas import BriefIn
from clearline.kit.clock import BusinessCalendar
from clearline.kit.errors import ConflictError, ValidationFailedError
from clearline.link import service as link_service
from tests import factories


def _brief(campaign_id: int, **overrides) -> BriefIn:  # type: ignore[no-untyped-def]
    fields = dict(
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


class TestBrief:
    def test_brief_missing_tracking_fields_is_rejected_naming_each(self, db, program):
        brand, campaign, _, actors = program
        with pytest.raises(ValidationFailedError) as caught:
            service.create_brief(
                db,
                actors["marketing"],
                brand_id=brand.id,
                data=_brief(campaign.id, landing_url=None, measurement_note="", skus=[]),
            )
        assert sorted(d["loc"][0] for d in caught.value.details) == ["landing_url", "measurement_note", "skus"]

    def test_more_than_two_legal_rounds_flags_the_brief_ambiguous(self, db, program):
        brand, campaign, _, actors = program
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=_brief(campaign.id))
        for _ in range(3):
            service.submit_brief(db, actors["marketing"], brief_id=brief.id)
            [step] = approval.queue(db, actors["legal"], brand_id=brand.id)
            approval.decide(db, actors["legal"], step_id=step.id, decision="changes_requested", comment="unclear")
        assert brief.legal_rounds == 3 and brief.is_ambiguous

    def test_new_offer_gets_legal_clearance_due_in_48_business_hours(self, db, program):
        brand, campaign, _, actors = program
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=_brief(campaign.id))
        service.submit_brief(db, actors["marketing"], brief_id=brief.id)
        [step] = approval.queue(db, actors["legal"], brand_id=brand.id)
        assert step.kind == "legal_clearance"
        calendar = BusinessCalendar.from_settings(__import__("clearline.config").config.get_settings())
        assert calendar.hours_between(step.opened_at, step.due_at) == pytest.approx(48)
        assert approval.check_breaches(db, factories.SYSTEM, now=step.due_at - dt.timedelta(minutes=1)) == []
        assert approval.check_breaches(db, factories.SYSTEM, now=step.due_at + dt.timedelta(minutes=1)) == [step]
        assert step.escalated_at is not None


class TestSchedulingGate:
    def test_draft_to_scheduled_and_the_refusal_lists_everything_missing(self, db, program):
        brand, campaign, creator, actors = program
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=_brief(campaign.id))
        service.submit_brief(db, actors["marketing"], brief_id=brief.id)
        [step] = approval.queue(db, actors["legal"], brand_id=brand.id)
        approval.decide(db, actors["legal"], step_id=step.id, decision="approved", comment="ok")
        assert brief.status == "approved" and brief.approved_at is not None
        made = creative.create_creative(
            db, actors["social_ops"], brief_id=brief.id, creator_id=creator.id, channel="instagram"
        )
        with pytest.raises(ConflictError) as refused:
            creative.schedule(
                db,
                actors["social_ops"],
                creative_id=made.id,
                scheduled_for=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
            )
        assert [d["loc"][0] for d in refused.value.details] == ["link", "approval"]
        creative.add_version(db, actors["social_ops"], creative_id=made.id, caption="Glow! #ad")
        [check] = approval.queue(db, actors["marketing"], brand_id=brand.id)
        approval.decide(db, actors["marketing"], step_id=check.id, decision="approved")
        assert made.status == "approved"
        link = link_service.issue_link(
            db,
            actors["social_ops"],
            campaign_id=campaign.id,
            creator_id=creator.id,
            channel="instagram",
            destination_url="https://shop.example.com/serum",
        )
        link_service.sign_off(db, actors["social_ops"], link_id=link.id)
        post = creative.schedule(
            db, actors["social_ops"], creative_id=made.id, scheduled_for=dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        )
        assert post.channel == "instagram" and made.status == "scheduled"

    def test_creator_without_contract_is_refused_with_all_three_items(self, db, program):
        brand, campaign, _, actors = program
        stranger = factories.creator(db, brand.id)
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=_brief(campaign.id))
        brief.status = "approved"
        made = creative.create_creative(
            db, actors["social_ops"], brief_id=brief.id, creator_id=stranger.id, channel="tiktok"
        )
        with pytest.raises(ConflictError) as refused:
            creative.schedule(db, actors["social_ops"], creative_id=made.id, scheduled_for=dt.datetime.now(dt.UTC))
        assert [d["loc"][0] for d in refused.value.details] == ["contract", "link", "approval"]


class TestDuplicates:
    def test_near_duplicate_briefs_across_teams_are_flagged_and_distinct_ones_are_not(self, db, program):
        brand, campaign, _, actors = program
        a = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=_brief(campaign.id, team="growth"))
        b = service.create_brief(
            db,
            actors["marketing"],
            brand_id=brand.id,
            data=_brief(
                campaign.id, team="brand", title="Glow serum launch!", key_messages=["Visible glow in seven days"]
            ),
        )
        service.create_brief(
            db,
            actors["marketing"],
            brand_id=brand.id,
            data=_brief(
                campaign.id,
                team="retention",
                title="Towel bundle for the gym",
                call_to_action="Grab the bundle",
                key_messages=["Quick-dry microfibre for workouts"],
            ),
        )
        pairs = [d["brief_ids"] for d in service.duplicates(db, actors["marketing"])]
        assert pairs == [[a.id, b.id]]

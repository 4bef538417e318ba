"""Briefs (C3): tracking fields, templates, who writes, edit rounds with legal, SLAs in business hours,
duplicates across teams and brands, offer collisions across brands, and the evidence finance gets."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from clearline.brief import approval, creative, service
from clearline.brief.schemas import TRACKING_FIELDS
from clearline.kit.errors import ConflictError, ForbiddenError, NotFoundError, ValidationFailedError
from clearline.models import AuditEvent, Brief, Offer
from tests import factories
from tests.brief.conftest import approved_brief, brief_in, offer, open_steps, pin_clock, pin_settings

UTC = dt.UTC
# Friday 4 December 2026, 15:00 in Berlin (the default organisation time zone; business hours 9–17).
FRIDAY_3PM = dt.datetime(2026, 12, 4, 14, 0, tzinfo=UTC)


def locs(error: ValidationFailedError) -> list[str]:
    return [detail["loc"][0] for detail in error.details]


class TestCreateBrief:
    def test_every_missing_tracking_field_is_named_at_once(self, db, program):
        brand, campaign, _, actors = program
        empty = {name: None for name in TRACKING_FIELDS}
        with pytest.raises(ValidationFailedError) as caught:
            service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id, **empty))
        assert locs(caught.value) == list(TRACKING_FIELDS)
        assert all(name in caught.value.message for name in TRACKING_FIELDS)

    def test_empty_values_count_as_missing(self, db, program):
        brand, campaign, _, actors = program
        data = brief_in(campaign.id, key_messages=[], disclaimers=[], offer_code="", call_to_action="")
        with pytest.raises(ValidationFailedError) as caught:
            service.create_brief(db, actors["marketing"], brand_id=brand.id, data=data)
        assert locs(caught.value) == ["offer_code", "call_to_action", "key_messages", "disclaimers"]

    def test_blank_text_counts_as_missing(self, db, program):
        brand, campaign, _, actors = program
        data = brief_in(campaign.id, measurement_note="   ", key_messages=[" "])
        with pytest.raises(ValidationFailedError) as caught:
            service.create_brief(db, actors["marketing"], brand_id=brand.id, data=data)
        assert locs(caught.value) == ["key_messages", "measurement_note"]

    def test_an_unknown_sku_is_refused_naming_the_skus_field(self, db, program):
        brand, campaign, _, actors = program
        with pytest.raises(ValidationFailedError) as caught:
            service.create_brief(
                db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id, skus=["SKU-A1", "SKU-ZZ"])
            )
        assert caught.value.status_code == 422
        assert caught.value.details == [{"loc": ["skus", 1], "msg": "unknown SKU 'SKU-ZZ'"}]

    def test_another_brands_sku_is_unknown_here(self, db, program):
        brand, campaign, _, actors = program
        other = factories.brand(db)
        factories.skus(db, other.id, "sku,name,category,tier,price,currency,unit_cost\nSKU-OTHER,X,c,a,1.00,USD,0.5\n")
        with pytest.raises(ValidationFailedError) as caught:
            service.create_brief(
                db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id, skus=["SKU-OTHER"])
            )
        assert locs(caught.value) == ["skus"]

    def test_an_offer_the_brand_does_not_have_is_refused_naming_offer_code(self, db, program):
        brand, campaign, _, actors = program
        other = factories.brand(db)
        factories.skus(db, other.id)
        now = dt.datetime.now(UTC)
        offer(db, other.id, "OTHER10", now, now + dt.timedelta(days=5))
        for code in ("NOPE", "OTHER10"):
            with pytest.raises(ValidationFailedError) as caught:
                service.create_brief(
                    db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id, offer_code=code)
                )
            assert locs(caught.value) == ["offer_code"]

    @pytest.mark.parametrize(
        "url",
        [
            "https://evil.example.net/serum",
            "https://shop.example.com.evil.net/serum",
            "javascript:alert(1)",
            "ftp://shop.example.com/serum",
        ],
    )
    def test_a_landing_url_off_the_allow_list_is_refused_naming_landing_url(self, db, program, url):
        brand, campaign, _, actors = program
        with pytest.raises(ValidationFailedError) as caught:
            service.create_brief(
                db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id, landing_url=url)
            )
        assert locs(caught.value) == ["landing_url"]

    def test_a_subdomain_of_an_allowed_domain_is_accepted(self, db, program):
        brand, campaign, _, actors = program
        data = brief_in(campaign.id, landing_url="https://eu.shop.example.com/serum")
        assert service.create_brief(db, actors["marketing"], brand_id=brand.id, data=data).id

    def test_every_invalid_field_is_named_together(self, db, program):
        brand, campaign, _, actors = program
        data = brief_in(campaign.id, skus=["SKU-ZZ"], offer_code="NOPE", landing_url="https://evil.example.net/")
        with pytest.raises(ValidationFailedError) as caught:
            service.create_brief(db, actors["marketing"], brand_id=brand.id, data=data)
        assert locs(caught.value) == ["skus", "offer_code", "landing_url"]

    def test_a_template_fills_the_fields_the_brief_leaves_out(self, db, program):
        brand, campaign, _, actors = program
        template = service.create_template(
            db,
            actors["marketing"],
            brand_id=brand.id,
            name="Serum launch",
            defaults={
                "offer_code": "SPRING20",
                "landing_url": "https://shop.example.com/serum",
                "disclaimers": ["#ad", "Results vary"],
                "measurement_note": "coupon first, then click id",
                "assets": ["hero.jpg"],
            },
        )
        data = brief_in(
            campaign.id,
            template_id=template.id,
            offer_code=None,
            landing_url=None,
            disclaimers=None,
            measurement_note=None,
        )
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=data)
        assert brief.offer_code == "SPRING20"
        assert brief.disclaimers == ["#ad", "Results vary"]
        assert brief.measurement_note == "coupon first, then click id"
        assert brief.assets == ["hero.jpg"]

    def test_what_the_brief_says_wins_over_the_template(self, db, program):
        brand, campaign, _, actors = program
        template = service.create_template(
            db, actors["marketing"], brand_id=brand.id, name="T", defaults={"call_to_action": "Buy today"}
        )
        data = brief_in(campaign.id, template_id=template.id, call_to_action="Shop now")
        assert service.create_brief(db, actors["marketing"], brand_id=brand.id, data=data).call_to_action == "Shop now"

    def test_a_template_still_leaves_missing_fields_named(self, db, program):
        brand, campaign, _, actors = program
        template = service.create_template(
            db, actors["marketing"], brand_id=brand.id, name="T", defaults={"disclaimers": ["#ad"]}
        )
        data = brief_in(campaign.id, template_id=template.id, disclaimers=None, measurement_note=None)
        with pytest.raises(ValidationFailedError) as caught:
            service.create_brief(db, actors["marketing"], brand_id=brand.id, data=data)
        assert locs(caught.value) == ["measurement_note"]

    def test_another_brands_template_is_refused(self, db, program):
        brand, campaign, _, actors = program
        other = factories.brand(db)
        template = service.create_template(db, factories.SYSTEM, brand_id=other.id, name="T", defaults={})
        with pytest.raises(ValidationFailedError) as caught:
            service.create_brief(
                db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id, template_id=template.id)
            )
        assert locs(caught.value) == ["template_id"]

    def test_a_campaign_of_another_brand_is_refused(self, db, program):
        brand, _, _, actors = program
        other = factories.brand(db)
        from tests.link.conftest import campaign as make_campaign

        foreign = make_campaign(db, other.id, slug="foreign")
        marketer = factories.actor(db, ("marketing", brand.id), ("marketing", other.id))
        with pytest.raises(ValidationFailedError) as caught:
            service.create_brief(db, marketer, brand_id=brand.id, data=brief_in(foreign.id))
        assert locs(caught.value) == ["campaign_id"]

    @pytest.mark.parametrize("role", ["legal", "social_ops", "finance", "brand_ops"])
    def test_only_marketing_writes_a_brief(self, db, program, role):
        brand, campaign, _, _ = program
        with pytest.raises(ForbiddenError):
            service.create_brief(
                db, factories.actor(db, (role, brand.id)), brand_id=brand.id, data=brief_in(campaign.id)
            )

    def test_another_brands_marketing_does_not_see_the_brand(self, db, program):
        brand, campaign, _, _ = program
        outsider = factories.actor(db, ("marketing", factories.brand(db).id))
        with pytest.raises(NotFoundError):
            service.create_brief(db, outsider, brand_id=brand.id, data=brief_in(campaign.id))

    def test_a_new_brief_is_an_audited_draft(self, db, program):
        brand, campaign, _, actors = program
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        assert (brief.status, brief.legal_rounds, brief.is_ambiguous, brief.approved_at) == ("draft", 0, False, None)
        assert brief.created_by_id == actors["marketing"].user_id
        event = db.scalar(
            select(AuditEvent).where(AuditEvent.action == "brief.created", AuditEvent.entity_id == str(brief.id))
        )
        assert event is not None and event.after["offer_code"] == "SPRING20"


class TestUpdateBrief:
    def test_a_draft_can_be_edited(self, db, program):
        brand, campaign, _, actors = program
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        service.update_brief(
            db, actors["marketing"], brief_id=brief.id, data=brief_in(campaign.id, skus=["SKU-A1", "SKU-B1"])
        )
        assert db.get(Brief, brief.id).skus == ["SKU-A1", "SKU-B1"]

    def test_a_brief_legal_sent_back_can_be_edited(self, db, program):
        brand, campaign, _, actors = program
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        service.submit_brief(db, actors["marketing"], brief_id=brief.id)
        [step] = open_steps(db, brief)
        approval.decide(db, actors["legal"], step_id=step.id, decision="changes_requested", comment="claim?")
        service.update_brief(
            db, actors["marketing"], brief_id=brief.id, data=brief_in(campaign.id, key_messages=["Feels lighter"])
        )
        assert brief.key_messages == ["Feels lighter"] and brief.status == "changes_requested"

    def test_a_brief_in_review_cannot_be_edited(self, db, program):
        brand, campaign, _, actors = program
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        service.submit_brief(db, actors["marketing"], brief_id=brief.id)
        with pytest.raises(ConflictError):
            service.update_brief(db, actors["marketing"], brief_id=brief.id, data=brief_in(campaign.id, title="New"))
        assert brief.title == "Glow serum launch"

    def test_an_approved_brief_cannot_be_edited(self, db, program):
        brand, campaign, _, actors = program
        brief = approved_brief(db, brand, campaign, actors)
        with pytest.raises(ConflictError):
            service.update_brief(db, actors["marketing"], brief_id=brief.id, data=brief_in(campaign.id, title="New"))

    def test_an_edit_is_checked_like_a_new_brief(self, db, program):
        brand, campaign, _, actors = program
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        with pytest.raises(ValidationFailedError) as caught:
            service.update_brief(
                db, actors["marketing"], brief_id=brief.id, data=brief_in(campaign.id, landing_url=None)
            )
        assert locs(caught.value) == ["landing_url"]
        assert brief.landing_url == "https://shop.example.com/serum"

    def test_only_marketing_edits(self, db, program):
        brand, campaign, _, actors = program
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        with pytest.raises(ForbiddenError):
            service.update_brief(db, actors["legal"], brief_id=brief.id, data=brief_in(campaign.id, title="Legal's"))

    def test_the_edit_is_audited_with_before_and_after(self, db, program):
        brand, campaign, _, actors = program
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        service.update_brief(
            db, actors["marketing"], brief_id=brief.id, data=brief_in(campaign.id, call_to_action="Try it")
        )
        event = db.scalar(
            select(AuditEvent).where(AuditEvent.action == "brief.updated", AuditEvent.entity_id == str(brief.id))
        )
        assert event.before["call_to_action"] == "Shop now" and event.after["call_to_action"] == "Try it"


class TestSubmitBrief:
    def test_a_new_offer_goes_to_legal_clearance_due_in_48_business_hours(self, db, program, monkeypatch):
        brand, campaign, _, actors = program
        pin_clock(monkeypatch, FRIDAY_3PM)
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        service.submit_brief(db, actors["marketing"], brief_id=brief.id)
        [step] = open_steps(db, brief)
        assert (step.kind, step.role, step.opened_at) == ("legal_clearance", "legal", FRIDAY_3PM)
        # Friday 2 h, five full days of 8 h the week after, then 6 h on Monday: 15:00 Berlin.
        assert step.due_at == dt.datetime(2026, 12, 14, 14, 0, tzinfo=UTC)
        assert brief.status == "in_review"

    def test_an_offer_approved_in_another_brief_gets_a_content_check_due_in_24_business_hours(
        self, db, program, monkeypatch
    ):
        brand, campaign, _, actors = program
        approved_brief(db, brand, campaign, actors)
        pin_clock(monkeypatch, FRIDAY_3PM)
        brief = service.create_brief(
            db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id, title="Second serum brief")
        )
        service.submit_brief(db, actors["marketing"], brief_id=brief.id)
        [step] = open_steps(db, brief)
        assert step.kind == "content_check" and step.role == "legal"
        # Friday 2 h, Monday 8, Tuesday 8, Wednesday 6: 15:00 Berlin.
        assert step.due_at == dt.datetime(2026, 12, 9, 14, 0, tzinfo=UTC)

    def test_an_offer_only_submitted_elsewhere_is_still_new(self, db, program):
        brand, campaign, _, actors = program
        first = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        service.submit_brief(db, actors["marketing"], brief_id=first.id)
        second = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        service.submit_brief(db, actors["marketing"], brief_id=second.id)
        assert [s.kind for s in open_steps(db, second)] == ["legal_clearance"]

    def test_an_offer_approved_on_another_brand_is_new_here(self, db, program):
        brand, campaign, _, actors = program
        other = factories.brand(db)
        factories.skus(db, other.id)
        now = dt.datetime.now(UTC)
        offer(db, other.id, "SPRING20", now, now + dt.timedelta(days=9))
        from tests.link.conftest import campaign as make_campaign

        other_campaign = make_campaign(db, other.id, slug="other")
        other_actors = {role: factories.actor(db, (role, other.id)) for role in ("marketing", "legal")}
        approved_brief(db, other, other_campaign, other_actors)
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        service.submit_brief(db, actors["marketing"], brief_id=brief.id)
        assert [s.kind for s in open_steps(db, brief)] == ["legal_clearance"]

    def test_a_night_is_skipped(self, db, program, monkeypatch):
        brand, campaign, _, actors = program
        approved_brief(db, brand, campaign, actors)
        pin_clock(monkeypatch, dt.datetime(2026, 12, 8, 20, 30, tzinfo=UTC))  # Tuesday 21:30 in Berlin
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        service.submit_brief(db, actors["marketing"], brief_id=brief.id)
        [step] = open_steps(db, brief)
        # The clock starts Wednesday 09:00; three working days later is Friday 17:00 Berlin.
        assert step.due_at == dt.datetime(2026, 12, 11, 16, 0, tzinfo=UTC)

    def test_a_holiday_is_skipped(self, db, program, monkeypatch):
        brand, campaign, _, actors = program
        approved_brief(db, brand, campaign, actors)
        pin_clock(monkeypatch, FRIDAY_3PM)
        pin_settings(monkeypatch, holidays=[dt.date(2026, 12, 7)])
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        service.submit_brief(db, actors["marketing"], brief_id=brief.id)
        [step] = open_steps(db, brief)
        assert step.due_at == dt.datetime(2026, 12, 10, 14, 0, tzinfo=UTC)  # Thursday, not Wednesday

    def test_the_sla_hours_are_configurable(self, db, program, monkeypatch):
        brand, campaign, _, actors = program
        pin_clock(monkeypatch, FRIDAY_3PM)
        pin_settings(monkeypatch, approval_sla_hours={"content_check": 24, "legal_clearance": 4, "claims_rework": 72})
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        service.submit_brief(db, actors["marketing"], brief_id=brief.id)
        [step] = open_steps(db, brief)
        assert step.due_at == dt.datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # Friday 2 h, then Monday 11:00 Berlin

    def test_a_brief_in_review_cannot_be_submitted_twice(self, db, program):
        brand, campaign, _, actors = program
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        service.submit_brief(db, actors["marketing"], brief_id=brief.id)
        with pytest.raises(ConflictError):
            service.submit_brief(db, actors["marketing"], brief_id=brief.id)
        assert len(open_steps(db, brief)) == 1

    def test_only_marketing_submits(self, db, program):
        brand, campaign, _, actors = program
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        with pytest.raises(ForbiddenError):
            service.submit_brief(db, actors["legal"], brief_id=brief.id)
        assert brief.status == "draft"


class TestOnBriefDecision:
    def _round(self, db, brief, actors, decision: str) -> None:  # type: ignore[no-untyped-def]
        service.submit_brief(db, actors["marketing"], brief_id=brief.id)
        [step] = open_steps(db, brief)
        approval.decide(db, actors["legal"], step_id=step.id, decision=decision, comment="see notes")

    def test_each_change_request_is_a_legal_round(self, db, program):
        brand, campaign, _, actors = program
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        self._round(db, brief, actors, "changes_requested")
        assert (brief.status, brief.legal_rounds) == ("changes_requested", 1)

    def test_two_rounds_are_not_ambiguous(self, db, program):
        brand, campaign, _, actors = program
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        for _ in range(2):
            self._round(db, brief, actors, "changes_requested")
        self._round(db, brief, actors, "approved")
        assert (brief.legal_rounds, brief.is_ambiguous, brief.status) == (2, False, "approved")

    def test_a_third_round_flags_the_brief_ambiguous(self, db, program):
        brand, campaign, _, actors = program
        brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        for _ in range(3):
            self._round(db, brief, actors, "changes_requested")
        self._round(db, brief, actors, "approved")
        assert (brief.legal_rounds, brief.is_ambiguous, brief.status) == (3, True, "approved")

    def test_approval_records_when(self, db, program, monkeypatch):
        brand, campaign, _, actors = program
        pin_clock(monkeypatch, FRIDAY_3PM)
        brief = approved_brief(db, brand, campaign, actors)
        assert brief.approved_at == FRIDAY_3PM


class TestCreateTemplate:
    def test_unknown_default_fields_are_refused_by_name(self, db, program):
        brand, _, _, actors = program
        with pytest.raises(ValidationFailedError) as caught:
            service.create_template(
                db, actors["marketing"], brand_id=brand.id, name="T", defaults={"title": "x", "budget": 1}
            )
        assert [d["loc"] for d in caught.value.details] == [["defaults", "title"], ["defaults", "budget"]]

    def test_only_marketing_writes_templates(self, db, program):
        brand, _, _, actors = program
        with pytest.raises(ForbiddenError):
            service.create_template(db, actors["legal"], brand_id=brand.id, name="T", defaults={})


def _portfolio(db, program):  # type: ignore[no-untyped-def]
    """A second brand selling the same SKU codes, and a marketer with both brands."""
    brand, campaign, _, _ = program
    other = factories.brand(db, domains=("shop.example.com", "other.example.com"))
    factories.skus(db, other.id)
    now = dt.datetime.now(UTC)
    offer(db, other.id, "WINTER15", now, now + dt.timedelta(days=20))
    from tests.link.conftest import campaign as make_campaign

    other_campaign = make_campaign(db, other.id, slug="winter")
    marketer = factories.actor(db, ("marketing", brand.id), ("marketing", other.id))
    return other, other_campaign, marketer


class TestDuplicates:
    def test_a_reworded_brief_on_the_same_sku_from_another_team_is_flagged(self, db, program):
        brand, campaign, _, actors = program
        a = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        b = service.create_brief(
            db,
            actors["marketing"],
            brand_id=brand.id,
            data=brief_in(
                campaign.id, team="brand", title="Glow serum launch!", key_messages=["Visible glow in seven days"]
            ),
        )
        [found] = service.duplicates(db, actors["marketing"])
        assert found["brief_ids"] == [a.id, b.id]
        assert found["skus"] == ["SKU-A1"] and found["teams"] == ["growth", "brand"]
        assert found["similarity"] >= service.SIMILARITY_THRESHOLD

    def test_a_reworded_brief_on_the_same_sku_in_another_brand_is_flagged(self, db, program):
        brand, campaign, _, _ = program
        other, other_campaign, marketer = _portfolio(db, program)
        a = service.create_brief(db, marketer, brand_id=brand.id, data=brief_in(campaign.id))
        b = service.create_brief(
            db,
            marketer,
            brand_id=other.id,
            data=brief_in(
                other_campaign.id,
                offer_code="WINTER15",
                landing_url="https://other.example.com/serum",
                title="Launch: the glow serum",
                call_to_action="Shop now!",
                key_messages=["A visible glow in 7 days"],
            ),
        )
        [found] = service.duplicates(db, marketer)
        assert found["brief_ids"] == [a.id, b.id] and found["brands"] == [brand.id, other.id]

    def test_distinct_briefs_on_the_same_sku_are_not_flagged(self, db, program):
        brand, campaign, _, actors = program
        service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        service.create_brief(
            db,
            actors["marketing"],
            brand_id=brand.id,
            data=brief_in(
                campaign.id,
                team="retention",
                title="Serum refill subscription",
                call_to_action="Subscribe and save",
                key_messages=["Never run out: a refill every month"],
            ),
        )
        assert service.duplicates(db, actors["marketing"]) == []

    def test_a_short_brief_whose_words_all_appear_in_another_is_not_a_duplicate(self, db, program):
        brand, campaign, _, actors = program
        service.create_brief(
            db,
            actors["marketing"],
            brand_id=brand.id,
            data=brief_in(
                campaign.id,
                title="Glow serum launch with the summer glow routine",
                key_messages=["Visible glow in 7 days", "Dermatologist tested", "Pairs with the SPF cleanser"],
            ),
        )
        service.create_brief(
            db,
            actors["marketing"],
            brand_id=brand.id,
            data=brief_in(campaign.id, team="retention", title="Serum", call_to_action="Shop", key_messages=["Glow"]),
        )
        assert service.duplicates(db, actors["marketing"]) == []

    def test_the_same_team_on_the_same_brand_is_not_flagged(self, db, program):
        brand, campaign, _, actors = program
        service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        service.create_brief(
            db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id, title="Glow serum launch!")
        )
        assert service.duplicates(db, actors["marketing"]) == []

    def test_similar_briefs_on_different_skus_are_not_flagged(self, db, program):
        brand, campaign, _, actors = program
        service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        service.create_brief(
            db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id, team="brand", skus=["SKU-B1"])
        )
        assert service.duplicates(db, actors["marketing"]) == []

    def test_the_threshold_decides(self, db, program):
        brand, campaign, _, actors = program
        service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
        service.create_brief(
            db,
            actors["marketing"],
            brand_id=brand.id,
            data=brief_in(
                campaign.id,
                team="brand",
                title="Serum refill subscription",
                call_to_action="Subscribe and save",
                key_messages=["Never run out: a refill every month"],
            ),
        )
        assert len(service.duplicates(db, actors["marketing"], threshold=1)) == 1

    def test_a_marketer_sees_only_pairs_within_its_brands(self, db, program):
        brand, campaign, _, actors = program
        other, other_campaign, marketer = _portfolio(db, program)
        service.create_brief(db, marketer, brand_id=brand.id, data=brief_in(campaign.id))
        service.create_brief(
            db,
            marketer,
            brand_id=other.id,
            data=brief_in(other_campaign.id, offer_code="WINTER15", landing_url="https://other.example.com/s"),
        )
        assert service.duplicates(db, actors["marketing"]) == []
        assert len(service.duplicates(db, marketer)) == 1


class TestCollisions:
    def _steward(self, db, *brand_ids):  # type: ignore[no-untyped-def]
        return factories.actor(db, *[("brand_steward", b) for b in brand_ids])

    def test_overlapping_offers_on_the_same_sku_across_brands_collide(self, db, program):
        brand, _, _, _ = program
        other = factories.brand(db)
        factories.skus(db, other.id)
        now = dt.datetime.now(UTC)
        theirs = offer(db, other.id, "RIVAL25", now + dt.timedelta(days=10), now + dt.timedelta(days=40), ("SKU-A1",))
        [found] = service.collisions(db, self._steward(db, brand.id, other.id))
        assert found["offers"] == ["SPRING20", "RIVAL25"] and found["skus"] == ["SKU-A1"]
        assert found["brands"] == [brand.id, other.id]
        assert found["overlap"][0] == theirs.starts_at

    def test_windows_that_do_not_overlap_do_not_collide(self, db, program):
        brand, _, _, _ = program
        other = factories.brand(db)
        factories.skus(db, other.id)
        now = dt.datetime.now(UTC)
        offer(db, other.id, "LATER", now + dt.timedelta(days=31), now + dt.timedelta(days=60), ("SKU-A1",))
        offer(db, other.id, "EARLIER", now - dt.timedelta(days=30), now - dt.timedelta(days=2), ("SKU-A1",))
        assert service.collisions(db, self._steward(db, brand.id, other.id)) == []

    def test_windows_that_only_touch_do_not_collide(self, db, program):
        brand, _, _, _ = program
        spring = db.scalar(select(Offer).where(Offer.brand_id == brand.id))
        other = factories.brand(db)
        factories.skus(db, other.id)
        offer(db, other.id, "NEXT", spring.ends_at, spring.ends_at + dt.timedelta(days=5), ("SKU-A1",))
        assert service.collisions(db, self._steward(db, brand.id, other.id)) == []

    def test_overlapping_offers_on_different_skus_do_not_collide(self, db, program):
        brand, _, _, _ = program
        other = factories.brand(db)
        factories.skus(db, other.id)
        now = dt.datetime.now(UTC)
        offer(db, other.id, "TOWELS", now, now + dt.timedelta(days=5), ("SKU-C1",))
        offer(db, other.id, "NOSERUM", now, now + dt.timedelta(days=5), ("SKU-A1", "SKU-B1"), ("SKU-A1", "SKU-B1"))
        assert service.collisions(db, self._steward(db, brand.id, other.id)) == []

    def test_overlapping_offers_on_one_brand_are_not_a_collision(self, db, program):
        brand, _, _, _ = program
        now = dt.datetime.now(UTC)
        offer(db, brand.id, "FLASH", now, now + dt.timedelta(days=2), ("SKU-A1",))
        assert service.collisions(db, self._steward(db, brand.id)) == []


class TestBriefApprovedAt:
    """Evidence for finance: a payout line carries the approval of the brief its creator made content for."""

    def test_a_payout_line_carries_the_latest_brief_approval_and_the_link_sign_off(self, db, monkeypatch):
        from tests.payout.program import build

        world = build(db)
        payee = world.creator("glow.anna")
        link = world.link("glow.anna")
        legal = factories.actor(db, ("legal", world.brand.id))
        actors = {"marketing": world.ops, "legal": legal}
        offer(db, world.brand.id, "SPRING20", world.start, world.start + dt.timedelta(days=200))
        first_at = world.at(1)
        pin_clock(monkeypatch, first_at)
        first = approved_brief(db, world.brand, world.campaign, actors)
        second_at = world.at(2)
        pin_clock(monkeypatch, second_at)
        approved_brief(db, world.brand, world.campaign, actors, title="Another brief nobody made content for")
        creative.create_creative(db, world.ops, brief_id=first.id, creator_id=payee.creator_id, channel="instagram")
        world.order("glow.anna", day=3)
        line = world.line_of(world.run(), "glow.anna")
        assert line.brief_approved_at == first_at
        assert line.link_signed_off_at == link.signed_off_at

    def test_a_payee_without_content_has_no_brief_approval(self, db):
        from tests.payout.program import build

        world = build(db)
        world.creator("no.content")
        world.order("no.content", day=3)
        assert world.line_of(world.run(), "no.content").brief_approved_at is None

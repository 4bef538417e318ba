"""A link cannot go live without an accepted contract and a social_ops sign-off."""

from __future__ import annotations

import datetime as dt

import pytest

from clearline.kit.clock import BusinessCalendar
from clearline.kit.errors import ConflictError, ForbiddenError, ValidationFailedError
from clearline.link import service
from tests.link.conftest import contracted_creator


class TestSignOff:
    def test_link_without_accepted_contract_cannot_go_live(self, ops_session, program):
        session, actor = ops_session
        link = service.issue_link(
            session,
            actor,
            campaign_id=program.campaign_id,
            creator_id=program.other_creator_id,
            channel="tiktok",
            destination_url="https://shop.example.com/",
        )
        assert link.status == "pending_signoff"
        with pytest.raises(ConflictError, match="no accepted contract"):
            service.sign_off(session, actor, link_id=link.id)
        assert link.status == "pending_signoff" and link.signed_off_at is None
        session.rollback()

    def test_draft_link_cannot_be_signed_off_before_submission(self, ops_session, program):
        session, actor = ops_session
        link = service.issue_link(
            session,
            actor,
            campaign_id=program.campaign_id,
            creator_id=contracted_creator(session, program.brand_id),
            channel="tiktok",
            destination_url="https://shop.example.com/",
            submit=False,
        )
        with pytest.raises(ConflictError, match="only a link pending sign-off"):
            service.sign_off(session, actor, link_id=link.id)
        service.submit_for_signoff(session, actor, link_id=link.id)
        assert service.sign_off(session, actor, link_id=link.id).status == "live"
        assert service.readiness(session, link) == {"contract": True, "signoff": True, "health": True}
        session.rollback()

    def test_only_social_ops_signs_off(self, ops_session, program):
        from clearline.auth.actor import Actor

        session, actor = ops_session
        link = service.issue_link(
            session,
            actor,
            campaign_id=program.campaign_id,
            creator_id=contracted_creator(session, program.brand_id),
            channel="tiktok",
            destination_url="https://shop.example.com/",
        )
        finance = Actor(user_id=None, label="finance", grants={"finance": frozenset({program.brand_id})})
        with pytest.raises((ForbiddenError,)):
            service.sign_off(session, finance, link_id=link.id)
        session.rollback()

    def test_signoff_is_due_one_business_hour_after_submission(self, ops_session, program):
        session, actor = ops_session
        link = service.issue_link(
            session,
            actor,
            campaign_id=program.campaign_id,
            creator_id=contracted_creator(session, program.brand_id),
            channel="tiktok",
            destination_url="https://shop.example.com/",
        )
        expected = service.calendar().add_hours(link.signoff_requested_at, 1)
        assert link.signoff_due_at == expected
        assert service.calendar().hours_between(link.signoff_requested_at, link.signoff_due_at) == pytest.approx(1)
        session.rollback()

    def test_overdue_signoffs_are_listed_as_breaches(self, ops_session, program):
        session, actor = ops_session
        link = service.issue_link(
            session,
            actor,
            campaign_id=program.campaign_id,
            creator_id=contracted_creator(session, program.brand_id),
            channel="tiktok",
            destination_url="https://shop.example.com/",
        )
        later = link.signoff_due_at + dt.timedelta(minutes=1)
        queue = service.signoff_queue(session, actor, brand_id=program.brand_id, now=later)
        assert link in queue["pending"] and link in queue["breaches"]
        early = service.signoff_queue(session, actor, brand_id=program.brand_id, now=link.signoff_requested_at)
        assert link not in early["breaches"]
        session.rollback()


class TestDestinations:
    @pytest.mark.parametrize(
        "url",
        [
            "https://evil.example.net/",
            "https://shop.example.com.evil.net/",
            "javascript:alert(1)",
            "https://user:pw@shop.example.com/",
            "//evil.example.net",
            "ftp://shop.example.com/",
        ],
    )
    def test_destination_off_the_allow_list_is_refused(self, ops_session, program, url):
        session, actor = ops_session
        with pytest.raises(ValidationFailedError) as caught:
            service.issue_link(
                session,
                actor,
                campaign_id=program.campaign_id,
                creator_id=contracted_creator(session, program.brand_id),
                channel="tiktok",
                destination_url=url,
            )
        assert caught.value.details[0]["loc"] == ["destination_url"]
        session.rollback()

    def test_subdomain_of_an_allowed_domain_is_accepted(self, ops_session, program):
        session, actor = ops_session
        link = service.issue_link(
            session,
            actor,
            campaign_id=program.campaign_id,
            creator_id=contracted_creator(session, program.brand_id),
            channel="tiktok",
            destination_url="https://eu.shop.example.com/p",
        )
        assert link.destination_url == "https://eu.shop.example.com/p"
        session.rollback()


def test_business_calendar_skips_nights_and_weekends():
    calendar = BusinessCalendar(timezone="UTC")
    friday_late = dt.datetime(2026, 11, 27, 16, 30, tzinfo=dt.UTC)
    assert calendar.add_hours(friday_late, 1) == dt.datetime(2026, 11, 30, 9, 30, tzinfo=dt.UTC)

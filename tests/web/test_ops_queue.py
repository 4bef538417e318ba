"""Social ops' queue on the approvals page, in Chromium: a link waiting for sign-off with its due time (and an
overdue one badged), an approved creative blocked only by that link; ops signs the link off from the queue, the
creative turns ready to schedule, and ops schedules it from the same page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from clearline.auth import service as auth_service
from clearline.auth.actor import Actor
from clearline.brief import approval, creative
from clearline.brief import service as brief_service
from clearline.brief.schemas import BriefIn
from clearline.contract import service as contract_service
from clearline.creator import service as creator_service
from clearline.creator.schemas import CreatorCreate
from clearline.link import service as link_service
from clearline.models import ApprovalStep, Campaign, Creative, Link, ScheduledPost, User
from tests import factories
from tests.web.conftest import LiveServer, sign_in

pytestmark = pytest.mark.browser

SYSTEM = Actor.system("tests: ops queue")
OPS = "ops@clearline.demo"


def utc(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def staff(session, email: str) -> Actor:  # type: ignore[no-untyped-def]
    return auth_service.actor_for(session, session.scalar(select(User).where(User.email == email)))


def contracted_creator(session, brand_id: int, handle: str) -> int:  # type: ignore[no-untyped-def]
    made = creator_service.create_creator(
        session, SYSTEM, brand_id=brand_id, data=CreatorCreate(handle=handle, name=handle, channels=["instagram"])
    )
    user = auth_service.create_user(
        session, SYSTEM, email=f"{handle}@creators.test", name=handle, password=None,
        grants=[("creator", brand_id)], creator_id=made.id,
    )
    contract = factories.contract(session, brand_id, creator_id=made.id)
    contract_service.accept_contract(session, auth_service.actor_for(session, user), contract_id=contract.id)
    return made.id


@pytest.fixture
def arranged(live_server: LiveServer) -> dict[str, int]:
    """Olly (accepted contract) with a pending link and an approved instagram creative; Pia with an overdue one."""
    with live_server.session() as session:
        brand_id = live_server.brand_id
        campaign = session.scalar(select(Campaign).where(Campaign.brand_id == brand_id).order_by(Campaign.id))
        assert campaign is not None
        olly, pia = (contracted_creator(session, brand_id, h) for h in ("olly.queue", "pia.queue"))
        links = {
            who: link_service.issue_link(
                session, SYSTEM, campaign_id=campaign.id, creator_id=creator_id, channel="instagram",
                destination_url="https://shop.acme-beauty.com/collections/glow?ref=queue",
            )
            for who, creator_id in (("olly", olly), ("pia", pia))
        }
        links["pia"].signoff_requested_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
        links["pia"].signoff_due_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        marketing, legal = staff(session, "marketing@clearline.demo"), staff(session, "legal@clearline.demo")
        brief = brief_service.create_brief(
            session,
            marketing,
            brand_id=brand_id,
            data=BriefIn(
                campaign_id=campaign.id,
                title="Queue drop: night serum",
                skus=["ACME-A001"],
                offer_code="GLOW20",
                landing_url="https://shop.acme-beauty.com/collections/glow",
                call_to_action="Try it tonight",
                key_messages=["Wake up glowing"],
                disclaimers=["#ad"],
                measurement_note="link and coupon",
            ),
        )
        brief_service.submit_brief(session, marketing, brief_id=brief.id)
        for step in approval.queue(session, legal, brand_id=brand_id):
            if step.subject_type == "brief" and step.subject_id == brief.id:
                approval.decide(session, legal, step_id=step.id, decision="approved")
        made = creative.create_creative(session, marketing, brief_id=brief.id, creator_id=olly, channel="instagram")
        creative.add_version(session, marketing, creative_id=made.id, caption="#ad night routine")
        review = session.scalar(
            select(ApprovalStep).where(ApprovalStep.subject_type == "creative", ApprovalStep.subject_id == made.id)
        )
        assert review is not None
        approval.decide(session, marketing, step_id=review.id, decision="approved")
        assert made.status == "approved"
        session.commit()
        return {"olly_link": links["olly"].id, "pia_link": links["pia"].id, "creative": made.id, "brief": brief.id}


def test_ops_signs_off_a_link_from_the_queue_and_schedules_the_creative_it_unblocks(
    page: Page, live_server: LiveServer, arranged: dict[str, int]
) -> None:
    with live_server.session() as session:
        olly_link, pia_link = session.get(Link, arranged["olly_link"]), session.get(Link, arranged["pia_link"])
        assert olly_link is not None and pia_link is not None and olly_link.signoff_due_at is not None

    sign_in(page, OPS)
    page.get_by_role("link", name="Approvals").click()
    queue = page.locator(f"#ops-queue-{live_server.brand_id}")
    fresh = queue.locator(f'tr[data-link-id="{olly_link.id}"]')
    expect(fresh).to_contain_text("@olly.queue")
    expect(fresh.locator("td.due")).to_have_text(utc(olly_link.signoff_due_at))
    expect(fresh.locator(".badge.bad")).to_have_count(0)
    late = queue.locator(f'tr[data-link-id="{pia_link.id}"]')
    expect(late.locator(".badge.bad")).to_have_text("SLA breached")

    # The approved creative is blocked by the link alone: ✓ contract, ✗ live link, ✓ approval, no button.
    row = queue.locator(f"#schedule-{arranged['creative']}")
    expect(row).to_contain_text("Queue drop: night serum")
    expect(row.locator(".gate-contract .tick")).to_have_text("✓")
    expect(row.locator(".gate-link .tick")).to_have_text("✗")
    expect(row.locator(".gate-approval .tick")).to_have_text("✓")
    expect(row).to_contain_text("no live, signed-off sales link")
    expect(row.get_by_role("button", name="Schedule")).to_have_count(0)

    fresh.get_by_role("button", name=f"Sign off {olly_link.code}").click()
    page.wait_for_url(re.compile(r"/approvals\?signed="))
    expect(page.locator("#signed-notice")).to_contain_text("signed off")
    queue = page.locator(f"#ops-queue-{live_server.brand_id}")
    expect(queue.locator(f'tr[data-link-id="{olly_link.id}"]')).to_have_count(0)
    expect(queue.locator(f'tr[data-link-id="{pia_link.id}"]')).to_have_count(1)

    row = queue.locator(f"#schedule-{arranged['creative']}")
    expect(row.locator(".gate-link .tick")).to_have_text("✓")
    expect(row).to_have_class(re.compile(r"\bready\b"))
    post_at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(hour=17, minute=30, second=0, microsecond=0)
    row.get_by_label("Post at (UTC)").fill(post_at.strftime("%Y-%m-%dT%H:%M"))
    row.get_by_role("button", name="Schedule").click()
    page.wait_for_url(re.compile(r"/approvals\?scheduled="))
    expect(page.locator("#scheduled-notice")).to_contain_text(f"Creative #{arranged['creative']} scheduled")
    expect(page.locator(f"#schedule-{arranged['creative']}")).to_have_count(0)

    with live_server.session() as session:
        signed = session.get(Link, olly_link.id)
        assert signed is not None and signed.status == "live" and signed.signed_off_at is not None
        made = session.get(Creative, arranged["creative"])
        assert made is not None and made.status == "scheduled"
        post = session.scalar(select(ScheduledPost).where(ScheduledPost.creative_id == made.id))
        assert post is not None and post.scheduled_for == post_at

"""A brief from draft to posted content through the web pages only, in Chromium: marketing writes and submits it,
legal clears it in its queue (due times, a breached step badged), a creator answers it with a creative and
uploads versions (a refused file type named on the page), marketing asks for changes and the creator reads the
feedback, ops' schedule is refused with every missing item listed, and once the contract is accepted, the link
signed off and the creative approved, ops schedules it and the creator records proof of posting."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select

from clearline.auth import service as auth_service
from clearline.auth.actor import Actor
from clearline.brief import approval, creative
from clearline.brief import service as brief_service
from clearline.brief.schemas import BriefIn
from clearline.creator import service as creator_service
from clearline.creator.schemas import CreatorCreate
from clearline.kit.storage import LocalStorage
from clearline.link import service as link_service
from clearline.models import ApprovalStep, AuditEvent, Brief, Campaign, Creative, CreativeVersion, Link, User
from tests import factories
from tests.web.conftest import DEMO_PASSWORD, LiveServer, sign_in

pytestmark = pytest.mark.browser

SYSTEM = Actor.system("tests: brief flow")
ZOE = "zoe.zest@creators.demo"
TITLE = "Zest drop: vitamin C glow"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def utc(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login"))


def opens_file(page: Page, link: Locator, content: bytes, name: str) -> None:
    """Following ``link`` serves the stored file itself: its bytes, its type, never sniffed, shown inline."""
    with page.expect_response(lambda r: r.url.endswith("/file")) as served:
        link.click()
    response = served.value
    assert response.status == 200
    assert response.body() == content
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith(f'inline; filename="{name}"')


@pytest.fixture
def files(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """The live server runs in this process: its uploads go to a temporary directory."""
    storage = LocalStorage(tmp_path, max_bytes=1024 * 1024)
    monkeypatch.setattr(creative, "default_storage", lambda: storage)
    return storage


@pytest.fixture
def newcomer(live_server: LiveServer) -> dict[str, int]:
    """Zoe, a new creator with a login: her contract is offered but not accepted, her link waits for sign-off.
    And a brief left with legal past its SLA, so the queue has a breach to show."""
    with live_server.session() as session:
        brand_id = live_server.brand_id
        zoe = creator_service.create_creator(
            session,
            SYSTEM,
            brand_id=brand_id,
            data=CreatorCreate(handle="zoe.zest", name="Zoe Zest", channels=["instagram"]),
        )
        auth_service.create_user(
            session,
            SYSTEM,
            email=ZOE,
            name="Zoe Zest",
            password=DEMO_PASSWORD,
            grants=[("creator", brand_id)],
            creator_id=zoe.id,
        )
        contract = factories.contract(session, brand_id, creator_id=zoe.id)
        campaigns = list(session.scalars(select(Campaign).where(Campaign.brand_id == brand_id)))
        for campaign in campaigns:
            link_service.issue_link(
                session,
                SYSTEM,
                campaign_id=campaign.id,
                creator_id=zoe.id,
                channel="instagram",
                destination_url="https://shop.acme-beauty.com/collections/glow?ref=zoe",
            )
        marketing = auth_service.actor_for(
            session, session.scalar(select(User).where(User.email == "marketing@clearline.demo"))
        )
        late = brief_service.create_brief(
            session,
            marketing,
            brand_id=brand_id,
            data=BriefIn(
                campaign_id=campaigns[0].id,
                title="Holiday gift sets",
                skus=["ACME-A001"],
                offer_code="GLOW20",
                landing_url="https://shop.acme-beauty.com/collections/gifts",
                call_to_action="Gift the glow",
                key_messages=["Limited sets"],
                disclaimers=["#ad"],
                measurement_note="link and coupon",
            ),
        )
        brief_service.submit_brief(session, marketing, brief_id=late.id)
        overdue = session.scalar(
            select(ApprovalStep).where(ApprovalStep.subject_type == "brief", ApprovalStep.subject_id == late.id)
        )
        overdue.opened_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=9)
        overdue.due_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        approval.check_breaches(session, SYSTEM)
        session.commit()
        return {"creator_id": zoe.id, "contract_id": contract.id}


def test_a_brief_goes_from_draft_to_posted_content_through_the_pages(
    browser, live_server: LiveServer, files: LocalStorage, newcomer: dict[str, int]
) -> None:
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(20_000)
    page = context.new_page()

    # Marketing writes the brief and sends it to legal.
    sign_in(page, "marketing@clearline.demo")
    page.goto("/briefs")
    editor = page.locator("#brief-editor")
    editor.get_by_label("Title").fill(TITLE)
    editor.get_by_label("Team").fill("growth")
    editor.get_by_label("SKUs (comma or line separated)").fill("ACME-A001")
    editor.get_by_label("Offer code").select_option("GLOW20")
    editor.get_by_label("Landing URL").fill("https://shop.acme-beauty.com/collections/glow")
    editor.get_by_label("Call to action").fill("Use my code for 20 % off")
    editor.get_by_label("Key messages (one per line)").fill("Visible glow in two weeks\nDermatologist tested")
    editor.get_by_label("Mandatory disclaimers (one per line)").fill("#ad")
    editor.get_by_label("Measurement note").fill("Signed link and personal coupon code")
    editor.get_by_role("button", name="Save brief").click()
    expect(page.locator("#brief-status")).to_have_text("draft")
    page.get_by_role("button", name="Submit to legal").click()
    expect(page.locator("#brief-status")).to_have_text("in review")
    brief_url = page.url
    with live_server.session() as session:
        brief = session.scalar(select(Brief).where(Brief.title == TITLE))
        assert brief is not None
        step = session.scalar(
            select(ApprovalStep).where(ApprovalStep.subject_type == "brief", ApprovalStep.subject_id == brief.id)
        )
        assert step is not None
    expect(page.locator("table.dense")).to_contain_text(utc(step.due_at))
    log_out(page)

    # Legal's queue: the new brief with its due time, the old one badged as breached; legal clears the new one.
    sign_in(page, "legal@clearline.demo")
    page.get_by_role("link", name="Approvals").click()
    mine = page.locator("article.approval", has_text=TITLE)
    expect(mine).to_contain_text("legal clearance · legal")
    expect(mine).to_contain_text(f"due {utc(step.due_at)}")
    late = page.locator("article.approval", has_text="Holiday gift sets")
    expect(late.locator(".badge.bad")).to_have_text("SLA breached")
    mine.get_by_label("Comment").fill("Cleared: GLOW20 wording is fine")
    mine.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("approved")
    expect(page.locator("article.approval", has_text=TITLE)).to_have_count(0)
    page.goto(brief_url)
    expect(page.locator("#brief-status")).to_have_text("approved")
    expect(page.get_by_role("cell", name="Cleared: GLOW20 wording is fine")).to_be_visible()
    log_out(page)

    # Zoe answers the brief: a creative for instagram, a refused file, then a real version into review.
    sign_in(page, ZOE)
    page.goto("/portal")
    article = page.locator(f"#brief-{brief.id}")
    expect(article).to_contain_text(TITLE)
    expect(article).to_contain_text("Visible glow in two weeks")
    article.get_by_label("Channel").select_option("instagram")
    article.get_by_role("button", name="New creative").click()
    expect(page.get_by_role("status")).to_contain_text("Creative created")
    with live_server.session() as session:
        made = session.scalar(select(Creative).where(Creative.brief_id == brief.id))
        assert made is not None
    card = page.locator(f"#creative-{made.id}")
    expect(card.locator(".creative-status")).to_have_text("draft")
    card.get_by_label("Caption").fill("My morning glow routine #ad")
    card.get_by_label("File").set_input_files(
        {"name": "routine.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ\x90\x00 not media"}
    )
    card.get_by_role("button", name="Upload and submit for approval").click()
    card = page.locator(f"#creative-{made.id}")
    expect(card.get_by_role("alert")).to_contain_text("file type 'application/x-msdownload' is not accepted")
    expect(card.get_by_role("alert")).to_contain_text("allowed: ")
    card.get_by_label("Caption").fill("My morning glow routine #ad")
    card.get_by_label("File").set_input_files({"name": "routine.png", "mimeType": "image/png", "buffer": PNG})
    card.get_by_role("button", name="Upload and submit for approval").click()
    expect(page.get_by_role("status")).to_contain_text("sent for approval")
    card = page.locator(f"#creative-{made.id}")
    expect(card.locator(".creative-status")).to_have_text("in review")
    expect(card).to_contain_text("Version 1 · routine.png")
    with live_server.session() as session:
        review = session.scalar(
            select(ApprovalStep).where(
                ApprovalStep.subject_type == "creative",
                ApprovalStep.subject_id == made.id,
                ApprovalStep.decided_at.is_(None),
            )
        )
        assert review is not None
        stored = session.scalar(select(CreativeVersion.file_key).where(CreativeVersion.creative_id == made.id))
    assert files.get(stored) == PNG
    expect(card).to_contain_text(f"In review: content check by marketing, due {utc(review.due_at)}")
    log_out(page)

    # Marketing opens the file under review from its queue, then asks for changes; legal opens it from the brief.
    sign_in(page, "marketing@clearline.demo")
    page.goto("/approvals")
    item = page.locator("article.approval", has_text=f"Creative #{made.id} for instagram")
    expect(item).to_contain_text("content check · marketing")
    expect(item).to_contain_text(f"due {utc(review.due_at)}")
    expect(item.locator(".under-review")).to_contain_text("Version 1 · routine.png")
    opens_file(page, item.get_by_role("link", name="Open version 1: routine.png"), PNG, "routine.png")
    page.go_back()
    item = page.locator("article.approval", has_text=f"Creative #{made.id} for instagram")
    item.get_by_label("Comment").fill("Put #ad at the very start")
    item.get_by_role("button", name="Request changes").click()
    expect(page.get_by_role("status")).to_contain_text("changes requested")
    log_out(page)

    sign_in(page, "legal@clearline.demo")
    page.goto(brief_url)
    row = page.locator(f"#creative-{made.id}")
    opens_file(page, row.get_by_role("link", name="Open version 1: routine.png"), PNG, "routine.png")
    page.go_back()
    log_out(page)

    sign_in(page, ZOE)
    page.goto("/portal")
    feedback = page.locator("#feedback tbody tr", has_text="Put #ad at the very start")
    expect(feedback.locator("td.approver")).to_have_text("Mia Marketing")
    expect(feedback).to_contain_text("changes requested")
    expect(feedback).to_contain_text(TITLE)
    card = page.locator(f"#creative-{made.id}")
    expect(card.locator(".creative-status")).to_have_text("rework")
    card.get_by_label("Caption").fill("#ad My morning glow routine")
    card.get_by_label("File").set_input_files({"name": "routine-v2.png", "mimeType": "image/png", "buffer": PNG + b"2"})
    card.get_by_role("button", name="Upload and submit for approval").click()
    expect(page.locator(f"#creative-{made.id}")).to_contain_text("Version 2 · routine-v2.png")
    log_out(page)

    # Ops tries to schedule: no accepted contract, no live link, no approval — all three are listed.
    sign_in(page, "ops@clearline.demo")
    page.goto(brief_url)
    row = page.locator(f"#creative-{made.id}")
    expect(row).to_contain_text("@zoe.zest")
    row.get_by_role("button", name="Schedule").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("cannot schedule")
    lines = alert.locator("li")
    expect(lines).to_have_text(
        [
            "contract: the creator has no accepted contract with this brand",
            "link: no live, signed-off sales link for this creator and campaign",
            "approval: the creative is not approved for instagram (status in_review)",
        ]
    )
    expect(page.locator(f"#creative-{made.id} .creative-status")).to_have_text("in review")
    log_out(page)
    with live_server.session() as session:
        refusal = session.scalar(
            select(AuditEvent).where(AuditEvent.action == "schedule.refused", AuditEvent.entity_id == str(made.id))
        )
        assert refusal is not None
        assert [m["item"] for m in refusal.after["missing"]] == ["contract", "link", "approval"]

    # What was missing is put in place, each by its owner: marketing approves, Zoe signs, ops signs the link off.
    sign_in(page, "marketing@clearline.demo")
    page.goto("/approvals")
    item = page.locator("article.approval", has_text=f"Creative #{made.id} for instagram")
    item.get_by_label("Comment").fill("On brand, go")
    item.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("approved")
    log_out(page)

    sign_in(page, ZOE)
    page.goto(f"/contracts/{newcomer['contract_id']}")
    page.get_by_role("button", name="Accept contract").click()
    expect(page.locator("dd.accepted")).to_contain_text("UTC")
    page.goto("/portal")
    expect(page.locator(f"#creative-{made.id} .creative-status")).to_have_text("approved")
    expect(page.locator("#feedback tbody tr", has_text="On brand, go").locator("td.approver")).to_have_text(
        "Mia Marketing"
    )
    log_out(page)

    with live_server.session() as session:
        code = session.scalar(
            select(Link.code).where(Link.creator_id == newcomer["creator_id"], Link.campaign_id == brief.campaign_id)
        )
    sign_in(page, "ops@clearline.demo")
    page.goto("/links")
    page.get_by_role("button", name=f"Sign off {code}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Link {code} signed off: it is live")
    page.goto(brief_url)
    row = page.locator(f"#creative-{made.id}")
    expect(row).to_contain_text("✓ contract, live link, approval")
    row.get_by_label("Post at (UTC)").fill((dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"))
    row.get_by_role("button", name="Schedule").click()
    expect(page.locator(f"#creative-{made.id} .creative-status")).to_have_text("scheduled")
    log_out(page)

    # Zoe posts and records the proof: URL, time and a screenshot.
    sign_in(page, ZOE)
    page.goto("/portal")
    card = page.locator(f"#creative-{made.id}")
    card.get_by_label("Post URL").fill("https://www.instagram.com/p/zest1")
    card.get_by_label("Posted at (UTC)").fill("2026-11-24T18:00")
    card.get_by_label("Screenshot (optional)").set_input_files(
        {"name": "posted.png", "mimeType": "image/png", "buffer": PNG + b"posted"}
    )
    card.get_by_role("button", name="Record proof of posting").click()
    expect(page.get_by_role("status")).to_contain_text("Proof of posting recorded")
    card = page.locator(f"#creative-{made.id}")
    expect(card.locator(".creative-status")).to_have_text("posted")
    expect(card.locator(".proof")).to_contain_text("Posted 2026-11-24 18:00 UTC: https://www.instagram.com/p/zest1")
    expect(card.locator(".proof")).to_contain_text("file kept")
    opens_file(page, card.get_by_role("link", name="Open the proof's file posted.png"), PNG + b"posted", "posted.png")
    context.close()

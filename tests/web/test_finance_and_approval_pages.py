"""Finance walks run → approve → download in Chromium; marketing and legal take a brief through approval."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from clearline.ingest import schemas
from clearline.ingest import service as ingest
from clearline.models import Brand, CouponCode, Creator, PayoutRun
from tests.web.conftest import DEMO_PASSWORD, LiveServer

pytestmark = pytest.mark.browser


def log_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


@pytest.fixture(scope="module")
def cleared_order(live_server: LiveServer) -> str:
    """Anna's coupon order from 20 days ago: past her 14-day window, so a run pays it."""
    with live_server.session() as session:
        brand = session.get(Brand, live_server.brand_id)
        anna = session.scalar(select(Creator).where(Creator.handle == "anna.glow"))
        code = session.scalar(
            select(CouponCode.code).where(CouponCode.creator_id == anna.id, CouponCode.is_single_use.is_(False))
        )
        sku = "ACME-A001"
        ingest.apply_order(
            session,
            brand=brand,
            source="postback",
            event_id=None,
            data=schemas.OrderIn(
                order_id="web-1",
                created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=20),
                currency="USD",
                coupon_codes=[code],
                lines=[{"sku": sku, "quantity": 7, "unit_price": "40.00"}],
            ),
        )
        session.commit()
    return "web-1"


class TestPayoutRunPage:
    def test_finance_runs_a_second_user_approves_and_downloads_both_files(
        self, browser, live_server: LiveServer, cleared_order: str
    ) -> None:
        first = browser.new_context(base_url=live_server.url, accept_downloads=True)
        page = first.new_page()
        log_in(page, "finance@clearline.demo")
        page.get_by_role("link", name="Payouts").click()
        page.get_by_label("As of").fill(dt.date.today().isoformat())
        page.get_by_role("button", name="Create payout run").click()
        expect(page.locator("#run-status")).to_have_text("draft")
        expect(page.get_by_text("Four eyes")).to_be_visible()
        expect(page.get_by_role("cell", name=re.compile("Anna Glow"))).to_be_visible()
        run_url = page.url
        first.close()

        second = browser.new_context(base_url=live_server.url, accept_downloads=True)
        page = second.new_page()
        log_in(page, "finance2@clearline.demo")
        page.goto(run_url)
        page.get_by_role("button", name="Approve run").click()
        expect(page.locator("#run-status")).to_have_text("approved")
        expect(page.locator("#approved-by")).to_have_text("finance2@clearline.demo")
        with page.expect_download() as download:
            page.get_by_role("link", name="Download payout CSV").click()
        text = Path(download.value.path()).read_text()
        rows = list(csv.DictReader(io.StringIO(text)))
        assert text.splitlines()[0].startswith("payout_run_id,payout_line_id,payee_type,payee_id,payee_name")
        anna = next(r for r in rows if r["payee_name"] == "Anna Glow")
        assert anna["run_approved_by"] == "finance2@clearline.demo"
        assert anna["commission_amount"] == "60.00"  # 7 × 9.00 = 63.00, capped at 60.00 per order
        with page.expect_download() as detail:
            page.get_by_role("link", name="Download detail CSV").click()
        detail_rows = list(csv.DictReader(io.StringIO(Path(detail.value.path()).read_text())))
        assert [r["order_id"] for r in detail_rows if r["payout_line_id"] == anna["payout_line_id"]] == ["web-1"]
        second.close()
        with live_server.session() as session:
            run = session.scalar(select(PayoutRun).order_by(PayoutRun.id.desc()))
            assert run.status == "approved" and run.exported_at is not None

    def test_the_creator_of_a_run_cannot_approve_it(self, page: Page, live_server: LiveServer) -> None:
        from clearline.auth import service as auth_service
        from clearline.models import User
        from clearline.payout import service as payout_service

        with live_server.session() as session:
            finance = session.scalar(select(User).where(User.email == "finance@clearline.demo"))
            actor = auth_service.actor_for(session, finance)
            brand = session.get(Brand, live_server.brand_id)
            ingest.apply_order(
                session,
                brand=brand,
                source="postback",
                event_id=None,
                data=schemas.OrderIn(
                    order_id="web-2",
                    created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=20),
                    currency="USD",
                    coupon_codes=[
                        session.scalar(
                            select(CouponCode.code)
                            .join(Creator, Creator.id == CouponCode.creator_id)
                            .where(Creator.handle == "ben.makes", CouponCode.is_single_use.is_(False))
                        )
                    ],
                    lines=[{"sku": "ACME-A001", "quantity": 7, "unit_price": "40.00"}],
                ),
            )
            run = payout_service.create_run(session, actor, brand_id=brand.id, as_of=dt.datetime.now(dt.UTC))
            session.commit()
            run_id = run.id
        log_in(page, "finance@clearline.demo")
        page.goto(f"/payouts/runs/{run_id}")
        expect(page.get_by_role("button", name="Approve run")).to_have_count(0)
        expect(page.get_by_text("another finance user must approve")).to_be_visible()


class TestApprovalFlow:
    def test_marketing_writes_a_brief_and_legal_approves_it_in_the_queue(
        self, page: Page, live_server: LiveServer
    ) -> None:
        log_in(page, "marketing@clearline.demo")
        page.goto("/briefs")
        page.get_by_label("Title").fill("Night serum drop")
        page.get_by_role("button", name="Save brief").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("missing tracking field")
        for field in ("skus", "offer_code", "landing_url", "measurement_note"):
            expect(alert).to_contain_text(field)
        page.get_by_label("SKUs (comma or line separated)").fill("ACME-A001")
        page.get_by_label("Offer code").select_option("GLOW20")
        page.get_by_label("Landing URL").fill("https://shop.acme-beauty.com/night")
        page.get_by_label("Call to action").fill("Use my code")
        page.get_by_label("Key messages (one per line)").fill("Wake up glowing")
        page.get_by_label("Mandatory disclaimers (one per line)").fill("#ad")
        page.get_by_label("Measurement note").fill("clid and coupon")
        page.get_by_role("button", name="Save brief").click()
        expect(page.locator("#brief-status")).to_have_text("draft")
        page.get_by_role("button", name="Submit to legal").click()
        expect(page.locator("#brief-status")).to_have_text("in review")
        brief_url = page.url
        page.get_by_role("button", name="Log out").click()

        log_in(page, "legal@clearline.demo")
        page.get_by_role("link", name="Approvals").click()
        item = page.locator("article.approval", has_text="Night serum drop")
        expect(item).to_contain_text("legal clearance")
        expect(item).to_contain_text("due")
        item.get_by_label("Comment").fill("cleared")
        item.get_by_role("button", name="Approve").click()
        expect(page.get_by_role("status")).to_contain_text("approved")
        page.goto(brief_url)
        expect(page.locator("#brief-status")).to_have_text("approved")
        expect(page.get_by_role("cell", name="cleared")).to_be_visible()

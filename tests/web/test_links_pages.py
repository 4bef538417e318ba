"""Social ops' links page: readiness and clicks, the sign-off queue with its SLA, the sign-off itself and
the recent alerts — in Chromium on the simulated pilot, and the access rules through the TestClient."""

from __future__ import annotations

import datetime as dt
import re
from itertools import count

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.auth import service as auth_service
from clearline.auth.actor import Actor
from clearline.creator import service as creator_service
from clearline.creator.schemas import CreatorCreate
from clearline.link import health
from clearline.link import repository as link_repository
from clearline.link import service as link_service
from clearline.models import Campaign, Creator, Link, Offer, User
from tests import factories
from tests.commission.program import build
from tests.web.conftest import LiveServer, log_in, sign_in

OPS = "ops@clearline.demo"
PASSWORD = "correct horse battery"
SYSTEM = Actor.system("tests")
_skus = count()


def utc_text(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def actor_of(session: Session, email: str) -> Actor:
    return auth_service.actor_for(session, session.scalar(select(User).where(User.email == email)))


def issue(
    server: LiveServer, handle: str, *, destination: str = "https://shop.acme-beauty.com/collections/glow"
) -> Link:
    """A new pending link for ``handle`` on the pilot campaign, for an SKU no other test used (one canonical
    link per creator, campaign and SKU)."""
    with server.session() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.brand_id == server.brand_id))
        offer = session.scalar(select(Offer).where(Offer.brand_id == server.brand_id))
        creator = session.scalar(select(Creator).where(Creator.handle == handle))
        assert campaign and offer and creator
        link = link_service.issue_link(
            session,
            actor_of(session, OPS),
            campaign_id=campaign.id,
            creator_id=creator.id,
            channel="instagram",
            destination_url=destination,
            sku=sorted(offer.eligible_skus)[next(_skus)],
        )
        session.commit()
        return link


def stored(server: LiveServer, link_id: int) -> Link:
    with server.session() as session:
        found = session.get(Link, link_id)
        assert found is not None
        return found


@pytest.mark.browser
class TestLinksPage:
    def test_ops_sees_every_link_with_its_readiness_and_clicks(
        self, pilot_page: Page, pilot_server: LiveServer
    ) -> None:
        with pilot_server.session() as session:
            links = link_repository.list_links(session, SYSTEM, brand_id=pilot_server.brand_id)
            clicks = link_repository.click_counts(session, [x.id for x in links])
            anna = next(
                x
                for x in links
                if x.creator_id == session.scalar(select(Creator.id).where(Creator.handle == "anna.glow"))
            )
        assert clicks[anna.id][0] > 0, "the pilot simulation clicks every link"
        sign_in(pilot_page, OPS)
        pilot_page.get_by_role("navigation").get_by_role("link", name="Links").click()
        expect(pilot_page).to_have_url(re.compile(r"/links$"))
        expect(pilot_page.get_by_role("heading", name=re.compile("Acme Beauty links"))).to_be_visible()
        expect(pilot_page.locator("table.links tbody tr")).to_have_count(len(links))
        row = pilot_page.locator(f'table.links tr[data-link-id="{anna.id}"]')
        expect(row).to_contain_text(anna.code)
        expect(row).to_contain_text("@anna.glow")
        expect(row.locator("td.status")).to_have_text("live")
        for check in ("contract", "signoff", "health"):
            expect(row.locator(f"td.ready-{check} .tick")).to_have_text("✓")
        expect(row.locator("td.clicks")).to_have_text(str(clicks[anna.id][0]))
        expect(row.locator("td.visitors")).to_have_text(str(clicks[anna.id][1]))

    def test_ops_signs_off_a_pending_link_and_it_goes_live(self, pilot_page: Page, pilot_server: LiveServer) -> None:
        link = issue(pilot_server, "ben.makes")
        assert link.status == "pending_signoff" and link.signoff_due_at is not None
        sign_in(pilot_page, OPS)
        pilot_page.goto("/links")
        pending = pilot_page.locator(f'table.pending tr[data-link-id="{link.id}"]')
        expect(pending).to_contain_text("@ben.makes")
        expect(pending.locator("td.due")).to_have_text(utc_text(link.signoff_due_at))
        listed = pilot_page.locator(f'table.links tr[data-link-id="{link.id}"]')
        expect(listed.locator("td.ready-contract .tick")).to_have_text("✓")
        expect(listed.locator("td.ready-signoff .tick")).to_have_text("✗")

        pending.get_by_role("button", name=f"Sign off {link.code}").click()
        expect(pilot_page.get_by_role("status")).to_have_text(f"Link {link.code} signed off: it is live.")
        expect(pilot_page.locator(f'table.pending tr[data-link-id="{link.id}"]')).to_have_count(0)
        listed = pilot_page.locator(f'table.links tr[data-link-id="{link.id}"]')
        expect(listed.locator("td.status")).to_have_text("live")
        expect(listed.locator("td.ready-signoff .tick")).to_have_text("✓")
        after = stored(pilot_server, link.id)
        with pilot_server.session() as session:
            ops_id = session.scalar(select(User.id).where(User.email == OPS))
        assert (after.status, after.signed_off_by_id) == ("live", ops_id)

    def test_an_overdue_sign_off_is_flagged_and_a_refusal_shows_on_its_row(
        self, pilot_page: Page, pilot_server: LiveServer
    ) -> None:
        with pilot_server.session() as session:
            creator_service.create_creator(
                session,
                SYSTEM,
                brand_id=pilot_server.brand_id,
                data=CreatorCreate(handle="zoe.unsigned", name="Zoe Unsigned", channels=["instagram"]),
            )
            session.commit()
        link = issue(pilot_server, "zoe.unsigned")
        with pilot_server.session() as session:
            late = session.get(Link, link.id)
            assert late is not None
            late.signoff_due_at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
            session.commit()

        sign_in(pilot_page, OPS)
        pilot_page.goto("/links")
        row = pilot_page.locator(f'table.pending tr[data-link-id="{link.id}"]')
        expect(row).to_have_class("overdue")
        expect(row.locator("td.due .badge")).to_have_text("overdue")
        expect(pilot_page.locator("p.summary")).to_contain_text("overdue")
        listed = pilot_page.locator(f'table.links tr[data-link-id="{link.id}"]')
        expect(listed.locator("td.ready-contract .tick")).to_have_text("✗")

        row.get_by_role("button", name=f"Sign off {link.code}").click()
        row = pilot_page.locator(f'table.pending tr[data-link-id="{link.id}"]')
        expect(row.get_by_role("alert")).to_have_text(
            "the creator has no accepted contract with this brand: the link cannot go live"
        )
        expect(pilot_page).to_have_url(re.compile(r"/links$"))
        assert stored(pilot_server, link.id).status == "pending_signoff"

    def test_a_broken_landing_page_fails_health_and_alerts_ops(
        self, pilot_page: Page, pilot_server: LiveServer
    ) -> None:
        link = issue(pilot_server, "cara.skin", destination="https://shop.acme-beauty.com/gone")
        with pilot_server.session() as session:
            link_service.sign_off(session, actor_of(session, OPS), link_id=link.id)

            def landing(request: httpx.Request) -> httpx.Response:
                return httpx.Response(404 if request.url.path == "/gone" else 200)

            with httpx.Client(transport=httpx.MockTransport(landing)) as client:
                report = health.check_links(session, SYSTEM, client=client, brand_id=pilot_server.brand_id)
            session.commit()
        assert link.code in report.broken

        sign_in(pilot_page, OPS)
        pilot_page.goto("/links")
        listed = pilot_page.locator(f'table.links tr[data-link-id="{link.id}"]')
        expect(listed.locator("td.ready-health .tick")).to_have_text("✗")
        alerts = pilot_page.locator("#alerts tbody tr").filter(has_text=f"Link {link.code} is broken")
        expect(alerts).to_have_count(1)
        expect(alerts).to_contain_text("link.broken")
        expect(alerts).to_contain_text("social ops")


class TestLinksAccess:
    """Fast checks through the TestClient, inside the per-test rolled-back transaction."""

    def _pending_without_contract(self, db: Session):  # type: ignore[no-untyped-def]
        program = build(db)
        program.creator("unsigned.one", contracted=False)
        link = link_service.issue_link(
            db,
            program.ops,
            campaign_id=program.campaign.id,
            creator_id=program.creators["unsigned.one"].id,
            channel="instagram",
            destination_url="https://shop.example.com/p",
        )
        return program, link

    def test_a_role_without_links_cannot_open_the_page(self, html_client: TestClient, db: Session) -> None:
        brand = factories.brand(db)
        user = factories.user(db, ("finance", brand.id))
        log_in(html_client, user.email, PASSWORD)
        assert html_client.get("/links").status_code == 403

    def test_another_brands_links_answer_404(self, html_client: TestClient, db: Session) -> None:
        mine, other = factories.brand(db), factories.brand(db)
        user = factories.user(db, ("social_ops", mine.id))
        log_in(html_client, user.email, PASSWORD)
        assert html_client.get(f"/links?brand_id={mine.id}").status_code == 200
        assert html_client.get(f"/links?brand_id={other.id}").status_code == 404

    def test_a_sign_off_without_a_contract_answers_409_on_the_row(self, html_client: TestClient, db: Session) -> None:
        program, link = self._pending_without_contract(db)
        user = factories.user(db, ("social_ops", program.brand.id))
        token = log_in(html_client, user.email, PASSWORD)
        answer = html_client.post(f"/links/{link.id}/signoff", data={"brand_id": program.brand.id, "csrf_token": token})
        assert answer.status_code == 409
        assert "no accepted contract" in answer.text
        assert link_repository.get_link(db, SYSTEM, link.id).status == "pending_signoff"

    def test_a_sign_off_needs_the_csrf_token(self, html_client: TestClient, db: Session) -> None:
        program, link = self._pending_without_contract(db)
        user = factories.user(db, ("social_ops", program.brand.id))
        log_in(html_client, user.email, PASSWORD)
        answer = html_client.post(f"/links/{link.id}/signoff", data={"brand_id": program.brand.id})
        assert answer.status_code == 401

    def test_ops_of_another_brand_cannot_sign_off(self, html_client: TestClient, db: Session) -> None:
        program, link = self._pending_without_contract(db)
        user = factories.user(db, ("social_ops", factories.brand(db).id))
        token = log_in(html_client, user.email, PASSWORD)
        answer = html_client.post(f"/links/{link.id}/signoff", data={"brand_id": program.brand.id, "csrf_token": token})
        assert answer.status_code == 404

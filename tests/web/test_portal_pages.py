"""The creator / agency portal: own links, codes, clicks, sales, earnings, payouts, disputes, briefs and
feedback — in Chromium on the simulated pilot, and the money and access rules through the TestClient."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.kit.money import format_minor
from clearline.ledger import service as ledger
from clearline.link import repository as link_repository
from clearline.models import CommissionLine, CouponCode, Creator, Dispute, PayoutLine, RosterEntry, User
from clearline.payout import dispute as dispute_service
from tests import factories
from tests.payout.program import build, cpa
from tests.web.conftest import LiveServer, log_in, sign_in

ANNA = "anna.glow@creators.demo"
AGENCY = "agency@northstar.demo"
PASSWORD = "correct horse battery"
SYSTEM = Actor.system("tests")
SALES_SHOWN = 200


def usd(minor: int) -> str:
    return f"{format_minor(minor, 'USD')} USD"


def commission_ids(page: Page) -> list[int]:
    return [
        int(x)
        for x in page.locator("table.sales tbody tr").evaluate_all("rows => rows.map(r => r.dataset.commissionId)")
    ]


@pytest.mark.browser
class TestCreatorPortal:
    def test_anna_sees_her_own_links_codes_clicks_money_and_payouts_and_no_one_elses(
        self, pilot_page: Page, pilot_server: LiveServer
    ) -> None:
        with pilot_server.session() as session:
            anna = session.scalar(select(Creator).where(Creator.handle == "anna.glow"))
            assert anna is not None
            links = link_repository.list_links(session, SYSTEM, creator_id=anna.id)
            clicks = link_repository.click_counts(session, [x.id for x in links])
            codes = link_repository.coupons(session, SYSTEM, creator_id=anna.id)
            others = list(session.scalars(select(CouponCode.code).where(CouponCode.creator_id != anna.id)))
            lines = list(session.scalars(select(CommissionLine.id).where(CommissionLine.creator_id == anna.id)))
            payouts = list(
                session.scalars(
                    select(PayoutLine).where(PayoutLine.payee_type == "creator", PayoutLine.payee_id == anna.id)
                )
            )
            balances = ledger.balances(session, owner_type="creator", owner_id=anna.id)
        assert links and codes and others and lines and payouts

        sign_in(pilot_page, ANNA)
        expect(pilot_page).to_have_url(re.compile(r"/portal$"))
        rows = pilot_page.locator("#links tbody tr")
        expect(rows).to_have_count(len(links))
        for link in links:
            row = pilot_page.locator(f'#links tr[data-link-id="{link.id}"]')
            expect(row.locator("code.short-url")).to_have_text(f"{pilot_server.url}/r/{link.code}")
            expect(row.locator("td.clicks")).to_have_text(str(clicks[link.id][0]))
            expect(row.locator("td.visitors")).to_have_text(str(clicks[link.id][1]))
        expect(pilot_page.locator("#coupons tbody tr")).to_have_count(len(codes))
        expect(pilot_page.locator("#coupons")).to_contain_text("ANNAGLOWGLOW")
        coupons_text = pilot_page.locator("#coupons").inner_text()
        assert not [code for code in others if code in coupons_text]

        expect(pilot_page.locator("table.sales tbody tr")).to_have_count(min(len(lines), SALES_SHOWN))
        assert set(commission_ids(pilot_page)) <= set(lines)

        tiles = pilot_page.locator('dl.tiles[data-currency="USD"]')
        account = f"b{pilot_server.brand_id}:creator:{anna.id}"
        expect(tiles.locator(".pending dd")).to_have_text(usd(balances[f"{account}:pending:USD"]))
        expect(tiles.locator(".available dd")).to_have_text(usd(balances.get(f"{account}:available:USD", 0)))
        expect(tiles.locator(".paid dd")).to_have_text(usd(sum(x.total_amount for x in payouts)))

        expect(pilot_page.locator("#payouts tbody tr")).to_have_count(len(payouts))
        for payout in payouts:
            row = pilot_page.locator(f'#payouts tr[data-payout-line-id="{payout.id}"]')
            expect(row.locator("td.total")).to_have_text(usd(payout.total_amount))
            expect(row).to_contain_text(payout.invoice_reference)

        expect(pilot_page.locator("#briefs")).to_contain_text("Glow season: vitamin C serum hero")
        expect(pilot_page.locator("#feedback tbody tr").first).to_contain_text("on brand")
        expect(pilot_page.locator("#feedback")).not_to_contain_text(
            "soften"
        )  # legal's notes on the brief stay internal

    def test_anna_opens_a_dispute_on_a_commission_line(self, pilot_page: Page, pilot_server: LiveServer) -> None:
        with pilot_server.session() as session:
            anna_user = session.scalar(select(User).where(User.email == ANNA))
            assert anna_user is not None
            disputed = select(Dispute.commission_line_id).where(Dispute.status == "open")
            line_id = session.scalar(
                select(CommissionLine.id)
                .where(CommissionLine.creator_id == anna_user.creator_id, CommissionLine.id.not_in(disputed))
                .order_by(CommissionLine.id.desc())
                .limit(1)
            )
        sign_in(pilot_page, ANNA)
        row = pilot_page.locator(f'table.sales tr[data-commission-id="{line_id}"]')
        row.get_by_text("Dispute", exact=True).click()
        row.get_by_role("button", name="Open dispute").click()
        row = pilot_page.locator(f'table.sales tr[data-commission-id="{line_id}"]')
        expect(row.get_by_role("alert")).to_have_text("a reason is required")

        row.get_by_label("Reason").fill("The customer used my code in a live stream; one unit is missing.")
        row.get_by_role("button", name="Open dispute").click()
        expect(pilot_page.get_by_role("status")).to_contain_text("Dispute opened")
        row = pilot_page.locator(f'table.sales tr[data-commission-id="{line_id}"]')
        expect(row.locator("td.state .badge")).to_have_text("disputed")
        expect(row.get_by_text("Dispute", exact=True)).to_have_count(0)
        listed = pilot_page.locator(f'#disputes tr[data-commission-id="{line_id}"]')
        expect(listed).to_contain_text("one unit is missing")
        expect(listed).to_contain_text("open")
        with pilot_server.session() as session:
            (dispute,) = session.scalars(select(Dispute).where(Dispute.commission_line_id == line_id))
            assert (dispute.status, dispute.opened_by_id) == ("open", anna_user.id)

    def test_the_agency_sees_its_rosters_links_codes_and_sales_and_its_payouts(
        self, pilot_page: Page, pilot_server: LiveServer
    ) -> None:
        with pilot_server.session() as session:
            agency_user = session.scalar(select(User).where(User.email == AGENCY))
            assert agency_user is not None and agency_user.agency_id is not None
            roster = set(
                session.scalars(select(RosterEntry.creator_id).where(RosterEntry.agency_id == agency_user.agency_id))
            )
            links = [x for x in link_repository.list_links(session, SYSTEM) if x.creator_id in roster]
            lines = set(
                session.scalars(
                    select(CommissionLine.id).where(
                        or_(
                            CommissionLine.creator_id.in_(roster),
                            (CommissionLine.payee_type == "agency")
                            & (CommissionLine.payee_id == agency_user.agency_id),
                        )
                    )
                )
            )
            payouts = list(
                session.scalars(
                    select(PayoutLine).where(
                        PayoutLine.payee_type == "agency", PayoutLine.payee_id == agency_user.agency_id
                    )
                )
            )
        sign_in(pilot_page, AGENCY)
        expect(pilot_page.locator("#links tbody tr")).to_have_count(len(links))
        for handle in ("@gus.grooms", "@hana.hue", "@ivy.inks"):
            expect(pilot_page.locator("#links")).to_contain_text(handle)
            expect(pilot_page.locator("#coupons")).to_contain_text(handle)
        expect(pilot_page.locator("#coupons tbody tr")).to_have_count(3)
        expect(pilot_page.locator("#coupons")).not_to_contain_text("ANNAGLOWGLOW")
        expect(pilot_page.locator("table.sales tbody tr")).to_have_count(min(len(lines), SALES_SHOWN))
        assert set(commission_ids(pilot_page)) <= lines
        expect(pilot_page.locator("table.sales")).to_contain_text("onboarding retainer")
        expect(pilot_page.locator("#payouts tbody tr")).to_have_count(len(payouts))
        expect(pilot_page.locator('dl.tiles[data-currency="USD"] .paid dd')).to_have_text(
            usd(sum(x.total_amount for x in payouts))
        )
        briefs = pilot_page.locator("#briefs")
        expect(briefs.locator("h2")).to_contain_text("Briefs for your roster")
        for handle in ("@gus.grooms", "@hana.hue", "@ivy.inks"):
            expect(briefs.locator("section.creative h4", has_text=handle)).to_have_count(1)
        expect(briefs).not_to_contain_text("@anna.glow")


class TestPortalMoneyAndAccess:
    """Fast checks through the TestClient, inside the per-test rolled-back transaction."""

    def test_earnings_match_the_ledger_after_a_payout_a_clawback_a_reserve_and_an_adjustment(
        self, html_client: TestClient, db: Session
    ) -> None:
        program = build(db)
        anna = program.creator("anna", terms=cpa(reserve_pct="10", reserve_release_days=30))
        sold = program.order("anna", day=5, lines=[("SKU-A1", 2, "49.00")])  # 16.00, 1.60 held
        program.order("anna", day=8)  # 8.00, 0.80 held
        program.run_and_approve(day=20)  # pays 14.40 + 7.20
        program.refund(sold, day=30, lines=[("SKU-A1", "98.00")], kind="chargeback")  # claws back 16.00
        kept = program.commission_lines(program.order("anna", day=40))[0]  # 8.00, not cleared yet
        dispute = dispute_service.open_dispute(db, program.actor("anna"), commission_line_id=kept.id, reason="short")
        dispute_service.resolve(
            db, program.finance, dispute_id=dispute.id, decision="upheld", reason="agreed", adjustment=Decimal("5.00")
        )

        user = factories.user(db, ("creator", program.brand.id), creator_id=anna.creator_id)
        log_in(html_client, user.email, PASSWORD)
        page = html_client.get("/portal")
        assert page.status_code == 200

        def tile(kind: str) -> str:
            found = re.search(rf'class="tile {kind}"><dt>[^<]+</dt><dd>([^<]+)</dd>', page.text)
            assert found, kind
            return found.group(1)

        def balance(kind: str) -> int:
            return ledger.balance(db, ledger.Account(program.brand.id, "creator", anna.creator_id, kind, "USD"))

        assert balance(ledger.AVAILABLE) == -1100  # 8.00 − 2.40 reserve − 21.60 paid + 5.00 adjustment
        assert tile("pending") == usd(balance(ledger.PENDING)) == "8.00 USD"
        assert tile("available") == usd(balance(ledger.AVAILABLE)) == "-11.00 USD"
        assert tile("paid") == "21.60 USD"
        assert "2.40 held in reserve" in page.text

    def test_a_creator_cannot_dispute_another_creators_line(self, html_client: TestClient, db: Session) -> None:
        program = build(db)
        program.creator("anna")
        program.creator("ben")
        line = program.commission_lines(program.order("ben", day=5))[0]
        user = factories.user(db, ("creator", program.brand.id), creator_id=program.payees["anna"].creator_id)
        token = log_in(html_client, user.email, PASSWORD)
        answer = html_client.post(
            "/portal/disputes", data={"commission_line_id": line.id, "reason": "mine", "csrf_token": token}
        )
        assert answer.status_code == 404
        assert dispute_service.list_disputes(db, SYSTEM, brand_id=program.brand.id) == []
        portal = html_client.get("/portal")
        assert f'data-commission-id="{line.id}"' not in portal.text
        assert program.payees["ben"].coupon not in portal.text

    def test_a_dispute_needs_the_csrf_token_and_a_line_is_disputed_once(
        self, html_client: TestClient, db: Session
    ) -> None:
        program = build(db)
        program.creator("anna")
        line = program.commission_lines(program.order("anna", day=5))[0]
        user = factories.user(db, ("creator", program.brand.id), creator_id=program.payees["anna"].creator_id)
        token = log_in(html_client, user.email, PASSWORD)
        form = {"commission_line_id": line.id, "reason": "a unit is missing"}
        assert html_client.post("/portal/disputes", data=form).status_code == 401
        first = html_client.post("/portal/disputes", data={**form, "csrf_token": token}, follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"].startswith("/portal?disputed=")
        again = html_client.post("/portal/disputes", data={**form, "csrf_token": token})
        assert again.status_code == 409
        assert f"commission line {line.id} already has an open dispute" in again.text
        assert len(dispute_service.list_disputes(db, SYSTEM, brand_id=program.brand.id)) == 1

    def test_staff_cannot_open_the_portal(self, html_client: TestClient, db: Session) -> None:
        brand = factories.brand(db)
        user = factories.user(db, ("finance", brand.id))
        log_in(html_client, user.email, PASSWORD)
        assert html_client.get("/portal").status_code == 403

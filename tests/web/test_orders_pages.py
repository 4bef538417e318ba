"""Finance's order pages: the orders with attribution and commissions, and one order explained from its
lines to the ledger — in Chromium on the simulated pilot, and the access rules through the TestClient."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.commission import explain
from clearline.commission import repository as commission_repository
from clearline.models import CommissionLine, Order
from tests import factories
from tests.commission.program import Program, build
from tests.web.conftest import LiveServer, log_in, sign_in

FINANCE = "finance@clearline.demo"
PASSWORD = "correct horse battery"
SYSTEM = Actor.system("tests")


@pytest.mark.browser
class TestOrdersPage:
    def test_finance_sees_the_newest_orders_and_opens_one(self, pilot_page: Page, pilot_server: LiveServer) -> None:
        with pilot_server.session() as session:
            newest = commission_repository.list_orders(session, SYSTEM, brand_id=pilot_server.brand_id, limit=100)
        sign_in(pilot_page, FINANCE)
        pilot_page.get_by_role("navigation").get_by_role("link", name="Orders").click()
        expect(pilot_page.get_by_role("heading", name="Acme Beauty orders")).to_be_visible()
        rows = pilot_page.locator("table.orders tbody tr")
        expect(rows).to_have_count(len(newest))
        for order, attribution, earned, _ in newest[:10]:
            row = pilot_page.locator(f'table.orders tr[data-order-id="{order.external_id}"]')
            expect(row.locator("td.via .badge").first).to_have_text(attribution.via if attribution else "—")
            if attribution is not None:
                expect(row.locator("td.reason")).to_have_text(attribution.reason)
            if earned:
                expect(row.locator("td.earned")).to_contain_text(f"{earned // 100}.{earned % 100:02d} USD")
        expect(pilot_page.get_by_role("link", name="Older →")).to_be_visible()

        first = newest[0][0].external_id
        rows.first.get_by_role("link", name=first).click()
        expect(pilot_page.get_by_role("heading", name=f"Order {first}")).to_be_visible()
        expect(pilot_page).to_have_url(re.compile(rf"/orders/{pilot_server.brand_id}/{first}$"))

    def test_an_order_with_a_refund_is_explained_down_to_the_ledger(
        self, pilot_page: Page, pilot_server: LiveServer
    ) -> None:
        with pilot_server.session() as session:
            external_id = session.scalar(
                select(Order.external_id)
                .join(CommissionLine, CommissionLine.order_id == Order.id)
                .where(Order.brand_id == pilot_server.brand_id, CommissionLine.reversed_amount > 0)
                .order_by(Order.id)
                .limit(1)
            )
            assert external_id, "the pilot simulation returns part of some orders"
            expected = explain.explain_order(session, SYSTEM, brand_id=pilot_server.brand_id, order_id=external_id)
        sign_in(pilot_page, FINANCE)
        pilot_page.goto(f"/orders/{pilot_server.brand_id}/{external_id}")
        expect(pilot_page.get_by_role("heading", name=f"Order {external_id}")).to_be_visible()
        current = next(a for a in expected["attributions"] if a["is_current"])
        expect(pilot_page.locator("dd.attribution")).to_contain_text(current["reason"])

        lines = pilot_page.locator("table.order-lines tbody tr")
        expect(lines).to_have_count(len(expected["lines"]))
        for line in expected["lines"]:
            row = pilot_page.locator(f'table.order-lines tr[data-line-no="{line["line_no"]}"]')
            expect(row).to_contain_text(line["sku"])
            expect(row.locator("td.eligibility")).to_contain_text(line["ineligible_reason"] or "eligible")

        commissions = pilot_page.locator("article.commission")
        expect(commissions).to_have_count(len(expected["commissions"]))
        reversed_seen = False
        for c in expected["commissions"]:
            card = pilot_page.locator(f'article.commission[data-commission-id="{c["commission_line_id"]}"]')
            expect(card.locator("li.rule")).to_contain_text(c["rule"]["text"])
            expect(card.locator("li.contract")).to_contain_text(f"#{c['contract']['contract_id']}")
            expect(card.locator("li.contract .badge.version")).to_have_text(f"v{c['contract']['version']}")
            expect(card.locator("li.rate")).to_contain_text(c["rule"]["rate"])
            expect(card.locator("li.amount")).to_contain_text(f"{c['amount']} {c['currency']}")
            if c["reversed"] != "0.00":
                reversed_seen = True
                expect(card.locator("li.amount")).to_contain_text(f"reversed {c['reversed']} = {c['net']} USD")
            entries = card.locator("table.ledger tbody tr")
            expect(entries).to_have_count(len(c["ledger"]))
            for transfer in c["ledger"]:
                entry = card.locator(f'table.ledger tr[data-entry-id="{transfer["entry_id"]}"]')
                expect(entry).to_contain_text(transfer["kind"])
                for posting in transfer["postings"]:
                    expect(entry).to_contain_text(posting["account"])
        assert reversed_seen
        kinds = {t["kind"] for c in expected["commissions"] for t in c["ledger"]}
        assert "commission.accrued" in kinds and kinds & {"commission.reversed", "commission.clawed_back"}


def _program(db: Session) -> tuple[Program, dict[str, Order]]:
    """Two contracted creators: an order on ann's coupon, one on bea's click, and one where ann's coupon
    and bea's click disagree (the coupon wins; the conflict goes to fraud review)."""
    program = build(db)
    program.creator("ann")
    program.creator("bea")
    coupon = program.coupon("ann")
    link = program.link("bea")
    orders = {
        "coupon": program.order("WEB-COUPON", at=program.at(10), lines=[("SKU-A1", 1, "49.00")], coupon=coupon),
        "click": program.order(
            "WEB-CLICK",
            at=program.at(11),
            lines=[("SKU-B1", 2, "24.00")],
            click_id=program.click(link, at=program.at(11, hours=9)),
        ),
        "conflict": program.order(
            "WEB-CONFLICT",
            at=program.at(12),
            lines=[("SKU-A1", 1, "49.00")],
            coupon=coupon,
            click_id=program.click(link, at=program.at(12, hours=9)),
        ),
    }
    return program, orders


class TestOrdersAccess:
    """Fast checks through the TestClient, inside the per-test rolled-back transaction."""

    def test_finance_sees_via_reason_conflict_and_commissions(self, html_client: TestClient, db: Session) -> None:
        program, orders = _program(db)
        user = factories.user(db, ("finance", program.brand.id))
        log_in(html_client, user.email, PASSWORD)
        answer = html_client.get(f"/orders?brand_id={program.brand.id}")
        assert answer.status_code == 200
        rows = {
            m.group(1): m.group(0)
            for m in re.finditer(r'<tr data-order-id="([^"]+)">.*?</tr>', answer.text, flags=re.DOTALL)
        }
        assert set(rows) == {"WEB-COUPON", "WEB-CLICK", "WEB-CONFLICT"}
        assert "via-coupon" in rows["WEB-COUPON"] and "8.00 USD" in rows["WEB-COUPON"]
        assert "via-click" in rows["WEB-CLICK"] and "@bea" in rows["WEB-CLICK"]
        assert "conflict" not in rows["WEB-CLICK"]
        assert 'class="badge bad conflict"' in rows["WEB-CONFLICT"]
        assert "click says bea" in rows["WEB-CONFLICT"]
        assert "raised to fraud review" in rows["WEB-CONFLICT"]

    def test_a_creator_sees_her_own_order_explained_and_no_one_elses(
        self, html_client: TestClient, db: Session
    ) -> None:
        program, orders = _program(db)
        ann = factories.user(db, ("creator", program.brand.id), creator_id=program.creators["ann"].id)
        log_in(html_client, ann.email, PASSWORD)
        own = html_client.get(f"/orders/{program.brand.id}/WEB-COUPON")
        assert own.status_code == 200
        assert "Only your commissions on this order are shown." in own.text
        assert "CPA per unit, tier a" in own.text
        assert "order-lines" not in own.text  # the order's other lines are not the creator's business
        other = html_client.get(f"/orders/{program.brand.id}/WEB-CLICK")
        assert other.status_code == 404
        assert html_client.get(f"/orders/{program.brand.id}/NO-SUCH-ORDER").status_code == 404
        assert html_client.get(f"/orders?brand_id={program.brand.id}").status_code == 403

    def test_finance_of_another_brand_gets_404(self, html_client: TestClient, db: Session) -> None:
        program, _ = _program(db)
        user = factories.user(db, ("finance", factories.brand(db).id))
        log_in(html_client, user.email, PASSWORD)
        assert html_client.get(f"/orders/{program.brand.id}/WEB-COUPON").status_code == 404
        assert html_client.get(f"/orders?brand_id={program.brand.id}").status_code == 404

    def test_finance_opens_the_explain_chain(self, html_client: TestClient, db: Session) -> None:
        program, orders = _program(db)
        user = factories.user(db, ("finance", program.brand.id))
        log_in(html_client, user.email, PASSWORD)
        answer = html_client.get(f"/orders/{program.brand.id}/WEB-CONFLICT")
        assert answer.status_code == 200
        for text in (
            "Attributed by rule 1 (coupon)",
            "CPA per unit, tier a (new customer): 8.00 USD × 1",
            f"#{program.contracts['ann'].id}",
            "8.00 USD",
            "commission.accrued",
            "eligible",
        ):
            assert text in answer.text, text

    def test_a_user_who_does_not_read_orders_cannot_open_the_list(self, html_client: TestClient, db: Session) -> None:
        brand = factories.brand(db)
        user = factories.user(db, ("brand_ops", brand.id))
        log_in(html_client, user.email, PASSWORD)
        assert html_client.get("/orders").status_code == 403

"""The pages in headless Chromium against a live server seeded with the pilot program."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from clearline.auth.actor import Actor
from clearline.contract import repository as contract_repository
from clearline.creator import repository as creator_repository
from clearline.models import Sku
from tests.web.conftest import DEMO_PASSWORD, LiveServer

pytestmark = pytest.mark.browser

LEGAL = "legal@clearline.demo"
CATALOG = "catalog@clearline.demo"
ANNA = "anna.glow@creators.demo"
AGENCY = "agency@northstar.demo"

GOOD_SKU_CSV = (
    "sku,name,category,tier,price,currency,unit_cost,margin_pct,return_rate_pct\n"
    "NEW-GOOD-1,Good Serum,serums,a,19.00,USD,5.00,,3\n"
)
BAD_SKU_CSV = (
    "sku,name,category,tier,price,currency,unit_cost,margin_pct,return_rate_pct\n"
    "NEW-OK-1,Fine Serum,serums,a,19.00,USD,5.00,,3\n"
    "NEW-BAD-2,Broken Price,serums,a,abc,USD,5.00,,3\n"
    "NEW-BAD-3,Cost And Margin,care,b,12.00,USD,4.00,60,3\n"
)


def log_in(page: Page, email: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def utc_text(value) -> str:  # type: ignore[no-untyped-def]
    return value.strftime("%Y-%m-%d %H:%M UTC")


def contract_rows(live_server: LiveServer):  # type: ignore[no-untyped-def]
    with live_server.session() as session:
        return contract_repository.list_contracts(session, Actor.system())


def sku_count(live_server: LiveServer) -> int:
    with live_server.session() as session:
        return session.scalar(select(func.count()).select_from(Sku).where(Sku.brand_id == live_server.brand_id))


class TestLogin:
    def test_a_wrong_password_shows_an_error_and_no_session(self, page: Page) -> None:
        log_in(page, LEGAL, "not-the-password")
        expect(page.get_by_role("alert")).to_have_text("wrong e-mail or password")
        expect(page).to_have_url(re.compile(r"/login$"))
        expect(page.get_by_label("E-mail")).to_have_value(LEGAL)
        page.goto("/contracts")
        expect(page).to_have_url(re.compile(r"/login\?next=%2Fcontracts$"))

    def test_logging_in_returns_to_the_page_asked_for_and_logging_out_ends_the_session(self, page: Page) -> None:
        page.goto("/contracts")
        page.get_by_label("E-mail").fill(LEGAL)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(re.compile(r"/contracts$"))
        expect(page.get_by_role("heading", name=re.compile("^Contracts"))).to_be_visible()
        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(re.compile(r"/login$"))
        page.goto("/contracts")
        expect(page).to_have_url(re.compile(r"/login\?next="))


class TestContractsForLegal:
    def test_each_contract_shows_its_template_version_and_acceptance_date(
        self, page: Page, live_server: LiveServer
    ) -> None:
        rows = contract_rows(live_server)
        assert rows, "the pilot seeds contracts"
        log_in(page, LEGAL)
        page.goto("/contracts")
        table = page.locator("table.contracts tbody tr")
        expect(table).to_have_count(len(rows))
        for contract, version, acceptance in rows:
            assert version.version == 2
            assert acceptance is not None
            row = page.locator(f'tr[data-contract-id="{contract.id}"]')
            expect(row.locator("td.template")).to_contain_text("Creator performance agreement")
            expect(row.locator("td.template")).to_contain_text("v2")
            expect(row.locator("td.accepted")).to_have_text(utc_text(acceptance.accepted_at))
        expect(page.locator("table.contracts")).to_contain_text("@anna.glow")
        expect(page.locator("table.contracts")).to_contain_text("Northstar Talent")

    def test_the_templates_list_their_versions_and_legal_publishes_a_new_one(
        self, page: Page, live_server: LiveServer
    ) -> None:
        log_in(page, LEGAL)
        page.goto("/contracts")
        template = page.locator("article.template-card").filter(has_text="Creator performance agreement")
        expect(template.locator("tbody tr")).to_have_count(2)
        template.get_by_text("Publish a new version").click()
        template.get_by_label(re.compile("^Text of v3")).fill("v3: As v2, plus the new returns window.")
        template.get_by_label("Reason for the change").fill("returns window")
        template.get_by_role("button", name="Publish v3").click()
        expect(page.get_by_role("status")).to_contain_text("New template version published")
        template = page.locator("article.template-card").filter(has_text="Creator performance agreement")
        expect(template.locator("tbody tr")).to_have_count(3)
        expect(template.locator("h3")).to_contain_text("latest v3")
        # contracts keep the version they were made on
        for row in page.locator("table.contracts td.template").all():
            expect(row).to_contain_text("v2")


class TestPortal:
    def test_a_creator_sees_only_her_own_contract(self, page: Page, live_server: LiveServer) -> None:
        with live_server.session() as session:
            anna = creator_repository.creators_by_handle(session, ["anna.glow"])["anna.glow"]
        rows = contract_rows(live_server)
        own = [c for c, _, _ in rows if c.creator_id == anna.id]
        others = [c for c, _, _ in rows if c.creator_id != anna.id]
        assert len(own) == 1 and others
        log_in(page, ANNA)
        expect(page).to_have_url(re.compile(r"/portal$"))
        contracts = page.locator("table.contracts tbody tr")
        expect(contracts).to_have_count(1)
        expect(contracts.first).to_contain_text("@anna.glow")
        expect(contracts.first).to_contain_text("v2")
        expect(page.get_by_role("navigation").get_by_role("link", name="Contracts")).to_have_count(0)

        contract_page = page.goto(f"/contracts/{own[0].id}")
        assert contract_page is not None and contract_page.status == 200
        expect(page.get_by_role("heading", name=re.compile(f"Contract #{own[0].id}"))).to_be_visible()

        listing = page.goto("/contracts")
        assert listing is not None and listing.status == 403
        expect(page.get_by_role("alert")).to_contain_text("page is for")
        for other in others:
            foreign = page.goto(f"/contracts/{other.id}")
            assert foreign is not None and foreign.status == 404
            expect(page.get_by_role("alert")).to_have_text(f"no contract {other.id}")

    def test_an_agency_sees_its_contract_and_its_roster(self, page: Page) -> None:
        log_in(page, AGENCY)
        expect(page).to_have_url(re.compile(r"/portal$"))
        expect(page.locator("table.contracts tbody tr")).to_have_count(1)
        expect(page.locator("table.contracts")).to_contain_text("Northstar Talent")
        roster = page.locator("section").filter(has=page.get_by_role("heading", name=re.compile("^Roster")))
        for handle in ("@gus.grooms", "@hana.hue", "@ivy.inks"):
            expect(roster).to_contain_text(handle)
        expect(roster.locator("tbody tr")).to_have_count(3)


class TestCatalogUpload:
    def test_a_bad_sku_file_shows_line_numbered_errors_and_imports_nothing(
        self, page: Page, live_server: LiveServer
    ) -> None:
        before = sku_count(live_server)
        log_in(page, CATALOG)
        page.goto("/catalog")
        page.get_by_label("SKU file").set_input_files(
            files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": BAD_SKU_CSV.encode()}]
        )
        page.get_by_role("button", name="Upload").click()
        errors = page.locator(".error-box")
        expect(errors).to_contain_text("nothing imported")
        expect(errors.locator("li")).to_have_count(2)
        expect(errors.locator("li").nth(0)).to_contain_text("line 3 · price")
        expect(errors.locator("li").nth(1)).to_contain_text("line 4 · unit_cost")
        expect(page.locator("table").get_by_text("NEW-OK-1")).to_have_count(0)
        expect(page).to_have_url(re.compile(r"/catalog$"))  # htmx swapped the section in place
        assert sku_count(live_server) == before

    def test_an_expired_form_shows_the_error_in_place(self, page: Page, live_server: LiveServer) -> None:
        before = sku_count(live_server)
        log_in(page, CATALOG)
        page.goto("/catalog")
        page.locator('#sku-import input[name="csrf_token"]').evaluate("input => { input.value = 'stale'; }")
        page.get_by_label("SKU file").set_input_files(
            files=[{"name": "good.csv", "mimeType": "text/csv", "buffer": GOOD_SKU_CSV.encode()}]
        )
        page.get_by_role("button", name="Upload").click()
        expect(page.locator("main h1")).to_have_text("401 · unauthenticated")
        expect(page.get_by_role("alert")).to_have_text("the form expired; reload the page")
        assert sku_count(live_server) == before

    def test_a_good_sku_file_adds_its_skus_to_the_table(self, page: Page, live_server: LiveServer) -> None:
        before = sku_count(live_server)
        log_in(page, CATALOG)
        page.goto("/catalog")
        page.get_by_label("SKU file").set_input_files(
            files=[{"name": "good.csv", "mimeType": "text/csv", "buffer": GOOD_SKU_CSV.encode()}]
        )
        page.get_by_role("button", name="Upload").click()
        expect(page.get_by_role("status")).to_have_text("Imported: 1 new, 0 updated SKU(s).")
        row = page.locator("tr").filter(has_text="NEW-GOOD-1")
        expect(row).to_contain_text("19.00 USD")
        expect(row).to_contain_text("5.00 USD")
        assert sku_count(live_server) == before + 1

    def test_only_brand_ops_get_the_upload_form(self, page: Page) -> None:
        log_in(page, LEGAL)
        page.goto("/catalog")
        expect(page.get_by_role("heading", name=re.compile("Acme Beauty catalog"))).to_be_visible()
        expect(page.get_by_label("SKU file")).to_have_count(0)
        expect(page.locator("td").filter(has_text="approved")).to_contain_text("Leo Legal")

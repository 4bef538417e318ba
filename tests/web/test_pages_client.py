"""Fast page tests through the app's TestClient, inside the per-test rolled-back transaction."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from clearline.auth import service as auth_service
from clearline.catalog import repository as catalog_repository
from clearline.contract import repository as contract_repository
from clearline.contract import service as contract_service
from clearline.creator import repository as creator_repository
from clearline.creator import service as creator_service
from clearline.models import Brand, Contract, ContractAcceptance, User
from tests import factories
from tests.web.conftest import log_in

PASSWORD = "correct horse battery"
BAD_SKUS = (
    "sku,name,category,tier,price,currency,unit_cost,margin_pct,return_rate_pct\n"
    "GOOD-1,Serum,skincare,a,49.00,USD,12.25,,4\n"
    "BAD-2,Cleanser,skincare,b,24.001,USD,,55,12\n"
)


def upload(name: str, text: str) -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, text.encode(), "text/csv")}


class TestLogin:
    def test_the_login_form_renders(self, html_client: TestClient) -> None:
        answer = html_client.get("/login")
        assert answer.status_code == 200
        assert 'name="password"' in answer.text

    def test_a_wrong_password_answers_401_with_the_error(self, html_client: TestClient, db: Session) -> None:
        user = factories.user(db, ("legal", None))
        answer = html_client.post("/login", data={"email": user.email, "password": "wrong password"})
        assert answer.status_code == 401
        assert "wrong e-mail or password" in answer.text
        assert "clearline_session" not in answer.cookies

    def test_a_page_without_a_session_sends_to_login_and_back(self, html_client: TestClient, db: Session) -> None:
        answer = html_client.get("/contracts?brand_id=7", follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?next=%2Fcontracts%3Fbrand_id%3D7"
        user = factories.user(db, ("legal", None))
        back = html_client.post(
            "/login",
            data={"email": user.email, "password": PASSWORD, "next": "/contracts?brand_id=7"},
            follow_redirects=False,
        )
        assert back.headers["location"] == "/contracts?brand_id=7"

    def test_login_never_redirects_off_site(self, html_client: TestClient, db: Session) -> None:
        user = factories.user(db, ("legal", None))
        for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
            answer = html_client.post(
                "/login", data={"email": user.email, "password": PASSWORD, "next": target}, follow_redirects=False
            )
            assert answer.headers["location"] == "/"

    def test_logout_needs_the_csrf_token(self, html_client: TestClient, db: Session) -> None:
        user = factories.user(db, ("legal", None))
        token = log_in(html_client, user.email, PASSWORD)
        assert html_client.post("/logout", data={"csrf_token": "forged"}).status_code == 401
        answer = html_client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
        assert answer.headers["location"] == "/login"
        assert html_client.get("/brands", follow_redirects=False).status_code == 303


class TestBrands:
    def test_staff_see_their_brands_with_domains_and_gl_coding(self, html_client: TestClient, db: Session) -> None:
        mine = factories.brand(db, domains=("shop.mine.example",))
        other = factories.brand(db)
        user = factories.user(db, ("marketing", mine.id))
        log_in(html_client, user.email, PASSWORD)
        answer = html_client.get("/brands")
        assert answer.status_code == 200
        for text in (mine.name, mine.slug, "shop.mine.example", mine.gl_account, mine.cost_center):
            assert text in answer.text
        assert other.name not in answer.text

    def test_a_creator_cannot_open_the_brands_page(self, html_client: TestClient, db: Session) -> None:
        brand = factories.brand(db)
        creator = factories.creator(db, brand.id)
        user = factories.user(db, ("creator", brand.id), creator_id=creator.id)
        log_in(html_client, user.email, PASSWORD)
        assert html_client.get("/brands").status_code == 403


class TestCatalog:
    def test_the_table_formats_prices_costs_margins_and_return_rates(
        self, html_client: TestClient, db: Session
    ) -> None:
        brand = factories.brand(db)
        factories.skus(db, brand.id)
        user = factories.user(db, ("finance", brand.id))
        log_in(html_client, user.email, PASSWORD)
        answer = html_client.get(f"/catalog?brand_id={brand.id}")
        assert answer.status_code == 200
        for text in ("SKU-A1", "49.00 USD", "12.25 USD", "55 % margin", "12 %", "9.50 USD"):
            assert text in answer.text
        assert 'name="file"' not in answer.text  # only brand ops upload

    def test_a_brand_the_user_cannot_see_answers_404(self, html_client: TestClient, db: Session) -> None:
        mine, other = factories.brand(db), factories.brand(db)
        user = factories.user(db, ("brand_ops", mine.id))
        log_in(html_client, user.email, PASSWORD)
        assert html_client.get(f"/catalog?brand_id={other.id}").status_code == 404

    def test_a_bad_file_lists_each_bad_line_and_imports_nothing(self, html_client: TestClient, db: Session) -> None:
        brand = factories.brand(db)
        user = factories.user(db, ("brand_ops", brand.id))
        token = log_in(html_client, user.email, PASSWORD)
        answer = html_client.post(
            "/catalog/skus", data={"brand_id": brand.id, "csrf_token": token}, files=upload("skus.csv", BAD_SKUS)
        )
        assert answer.status_code == 422
        assert "nothing imported" in answer.text
        assert "line 3 · price: more digits than USD allows" in answer.text
        assert catalog_repository.list_skus(db, factories.SYSTEM, brand_id=brand.id) == []

    def test_a_good_file_imports_and_reports_the_counts(self, html_client: TestClient, db: Session) -> None:
        brand = factories.brand(db)
        user = factories.user(db, ("brand_ops", brand.id))
        token = log_in(html_client, user.email, PASSWORD)
        answer = html_client.post(
            "/catalog/skus",
            data={"brand_id": brand.id, "csrf_token": token},
            files=upload("skus.csv", factories.SKU_CSV),
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/catalog?brand_id={brand.id}&created=3&updated=0"
        page = html_client.get(answer.headers["location"])
        assert "Imported: 3 new, 0 updated SKU(s)." in page.text
        assert len(catalog_repository.list_skus(db, factories.SYSTEM, brand_id=brand.id)) == 3

    def test_an_upload_without_the_csrf_token_is_refused(self, html_client: TestClient, db: Session) -> None:
        brand = factories.brand(db)
        user = factories.user(db, ("brand_ops", brand.id))
        log_in(html_client, user.email, PASSWORD)
        answer = html_client.post(
            "/catalog/skus", data={"brand_id": brand.id}, files=upload("skus.csv", factories.SKU_CSV)
        )
        assert answer.status_code == 401
        assert catalog_repository.list_skus(db, factories.SYSTEM, brand_id=brand.id) == []

    def test_a_user_without_the_writer_role_cannot_upload(self, html_client: TestClient, db: Session) -> None:
        brand = factories.brand(db)
        user = factories.user(db, ("marketing", brand.id))
        token = log_in(html_client, user.email, PASSWORD)
        answer = html_client.post(
            "/catalog/skus",
            data={"brand_id": brand.id, "csrf_token": token},
            files=upload("skus.csv", factories.SKU_CSV),
        )
        assert answer.status_code == 403
        assert catalog_repository.list_skus(db, factories.SYSTEM, brand_id=brand.id) == []


class TestCreators:
    def test_creators_and_agency_rosters_are_listed(self, html_client: TestClient, db: Session) -> None:
        brand = factories.brand(db)
        creator = factories.creator(db, brand.id)
        agency = factories.agency(db, brand.id)
        creator_service.import_roster(db, factories.SYSTEM, agency_id=agency.id, data=f"handle\n{creator.handle}\n")
        user = factories.user(db, ("social_ops", brand.id))
        log_in(html_client, user.email, PASSWORD)
        answer = html_client.get("/creators")
        assert answer.status_code == 200
        assert f"@{creator.handle}" in answer.text
        assert "instagram" in answer.text
        assert agency.name in answer.text
        assert answer.text.count(f"@{creator.handle}<") == 2  # in the creators table and on the roster

    def test_social_ops_import_a_creator_file(self, html_client: TestClient, db: Session) -> None:
        brand = factories.brand(db)
        user = factories.user(db, ("social_ops", brand.id))
        token = log_in(html_client, user.email, PASSWORD)
        handle = f"{factories.creator(db, brand.id).handle}.new"
        csv_text = f"handle,name,channels,country\n{handle},New One,instagram;tiktok,US\n"
        answer = html_client.post(
            "/creators/import",
            data={"brand_id": brand.id, "csrf_token": token},
            files=upload("creators.csv", csv_text),
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/creators?created=1"
        assert handle in creator_repository.creators_by_handle(db, [handle])

    def test_a_bad_creator_file_names_its_lines(self, html_client: TestClient, db: Session) -> None:
        brand = factories.brand(db)
        taken = factories.creator(db, brand.id).handle
        fresh = f"{taken}.fresh"
        user = factories.user(db, ("marketing", brand.id))
        token = log_in(html_client, user.email, PASSWORD)
        csv_text = f"handle,name\n{fresh},Fresh\n{taken},Taken\n"
        answer = html_client.post(
            "/creators/import", data={"brand_id": brand.id, "csrf_token": token}, files=upload("c.csv", csv_text)
        )
        assert answer.status_code == 422
        assert f"line 3 · handle: {taken} already exists" in answer.text
        assert creator_repository.creators_by_handle(db, [fresh]) == {}

    def test_finance_sees_creators_but_no_import_form(self, html_client: TestClient, db: Session) -> None:
        brand = factories.brand(db)
        factories.creator(db, brand.id)
        user = factories.user(db, ("finance", brand.id))
        log_in(html_client, user.email, PASSWORD)
        answer = html_client.get("/creators")
        assert answer.status_code == 200
        assert "Import creators" not in answer.text


@dataclass
class Program:
    brand: Brand
    signer: User
    signed: Contract
    offered: Contract
    other: Contract
    acceptance: ContractAcceptance


def _program(db: Session) -> Program:
    """A brand with an accepted creator contract, an offered agency contract and another creator's."""
    brand = factories.brand(db)
    factories.skus(db, brand.id)
    creator = factories.creator(db, brand.id)
    agency = factories.agency(db, brand.id)
    signed = factories.contract(db, brand.id, creator_id=creator.id)
    offered = factories.contract(db, brand.id, agency_id=agency.id)
    other = factories.contract(db, brand.id, creator_id=factories.creator(db, brand.id).id)
    signer = factories.user(db, ("creator", brand.id), creator_id=creator.id)
    acceptance = contract_service.accept_contract(db, auth_service.actor_for(db, signer), contract_id=signed.id)
    return Program(brand, signer, signed, offered, other, acceptance)


class TestContracts:
    def test_legal_sees_versions_and_acceptance_dates(self, html_client: TestClient, db: Session) -> None:
        program = _program(db)
        legal = factories.user(db, ("legal", program.brand.id))
        log_in(html_client, legal.email, PASSWORD)
        answer = html_client.get("/contracts")
        assert answer.status_code == 200
        signed_row = _row(answer.text, program.signed.id)
        handle = creator_repository.get_creator(db, factories.SYSTEM, program.signed.creator_id or 0).handle
        assert f"<td>@{handle} <" in signed_row
        assert ">v1<" in signed_row
        assert program.acceptance.accepted_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") in signed_row
        offered_row = _row(answer.text, program.offered.id)
        assert "Agency" in offered_row
        assert "not accepted" in offered_row
        assert "Publish v2" in answer.text

    def test_legal_publishes_a_template_version(self, html_client: TestClient, db: Session) -> None:
        program = _program(db)
        legal = factories.user(db, ("legal", program.brand.id))
        token = log_in(html_client, legal.email, PASSWORD)
        version = contract_repository.get_version(db, program.signed.template_version_id)
        assert version is not None
        answer = html_client.post(
            f"/contracts/templates/{version.template_id}/versions",
            data={"body": "v2 text", "reason": "clause", "csrf_token": token},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        versions = contract_repository.versions(db, version.template_id)
        assert [v.version for v in versions] == [1, 2]
        assert versions[-1].body == "v2 text"

    def test_an_empty_version_is_refused_inline(self, html_client: TestClient, db: Session) -> None:
        program = _program(db)
        legal = factories.user(db, ("legal", program.brand.id))
        token = log_in(html_client, legal.email, PASSWORD)
        version = contract_repository.get_version(db, program.signed.template_version_id)
        assert version is not None
        answer = html_client.post(
            f"/contracts/templates/{version.template_id}/versions", data={"body": "  ", "csrf_token": token}
        )
        assert answer.status_code == 422
        assert "the new version needs a body" in answer.text
        assert len(contract_repository.versions(db, version.template_id)) == 1

    def test_only_legal_publishes(self, html_client: TestClient, db: Session) -> None:
        program = _program(db)
        finance = factories.user(db, ("finance", program.brand.id))
        token = log_in(html_client, finance.email, PASSWORD)
        version = contract_repository.get_version(db, program.signed.template_version_id)
        assert version is not None
        assert "Publish v2" not in html_client.get("/contracts").text
        answer = html_client.post(
            f"/contracts/templates/{version.template_id}/versions", data={"body": "x", "csrf_token": token}
        )
        assert answer.status_code == 403

    def test_a_creator_gets_403_on_the_list_and_404_on_another_contract(
        self, html_client: TestClient, db: Session
    ) -> None:
        program = _program(db)
        log_in(html_client, program.signer.email, PASSWORD)
        assert html_client.get("/contracts").status_code == 403
        assert html_client.get(f"/contracts/{program.other.id}").status_code == 404
        assert html_client.get(f"/contracts/{program.offered.id}").status_code == 404
        own = html_client.get(f"/contracts/{program.signed.id}")
        assert own.status_code == 200
        assert "Accept contract" not in own.text


def _row(html: str, contract_id: int) -> str:
    start = html.index(f'data-contract-id="{contract_id}"')
    return html[start : html.index("</tr>", start)]


class TestPortal:
    def test_a_creator_sees_only_her_contract(self, html_client: TestClient, db: Session) -> None:
        program = _program(db)
        log_in(html_client, program.signer.email, PASSWORD)
        answer = html_client.get("/portal")
        assert answer.status_code == 200
        assert f'data-contract-id="{program.signed.id}"' in answer.text
        assert f'data-contract-id="{program.other.id}"' not in answer.text
        assert f'data-contract-id="{program.offered.id}"' not in answer.text

    def test_the_party_accepts_an_offered_contract(self, html_client: TestClient, db: Session) -> None:
        brand = factories.brand(db)
        factories.skus(db, brand.id)
        creator = factories.creator(db, brand.id)
        contract = factories.contract(db, brand.id, creator_id=creator.id)
        user = factories.user(db, ("creator", brand.id), creator_id=creator.id)
        token = log_in(html_client, user.email, PASSWORD)
        page = html_client.get(f"/contracts/{contract.id}")
        assert "Accept contract" in page.text
        answer = html_client.post(
            f"/contracts/{contract.id}/accept", data={"csrf_token": token}, follow_redirects=False
        )
        assert answer.status_code == 303
        acceptance = contract_repository.acceptance(db, contract.id)
        assert acceptance is not None and acceptance.accepted_by_id == user.id
        assert "not accepted" not in html_client.get("/portal").text

    def test_an_agency_sees_its_roster(self, html_client: TestClient, db: Session) -> None:
        brand = factories.brand(db)
        member = factories.creator(db, brand.id)
        outsider = factories.creator(db, brand.id)
        agency = factories.agency(db, brand.id)
        creator_service.import_roster(db, factories.SYSTEM, agency_id=agency.id, data=f"handle\n{member.handle}\n")
        user = factories.user(db, ("agency", brand.id), agency_id=agency.id)
        log_in(html_client, user.email, PASSWORD)
        answer = html_client.get("/portal")
        assert answer.status_code == 200
        assert f"@{member.handle}<" in answer.text
        assert f"@{outsider.handle}<" not in answer.text

    def test_staff_have_no_portal(self, html_client: TestClient, db: Session) -> None:
        user = factories.user(db, ("legal", None))
        log_in(html_client, user.email, PASSWORD)
        assert html_client.get("/portal").status_code == 403


class TestOpsQueueOnApprovals:
    """Social ops' queue on the approvals page: pending sign-offs with due times and breaches, for ops only."""

    def _pending_links(self, db: Session):  # type: ignore[no-untyped-def]
        from clearline.link import service as link_service
        from tests.commission.program import build

        program = build(db)
        links = {}
        for handle in ("queue.fresh", "queue.late"):
            program.creator(handle)
            links[handle] = link_service.issue_link(
                db,
                program.ops,
                campaign_id=program.campaign.id,
                creator_id=program.creators[handle].id,
                channel="instagram",
                destination_url="https://shop.example.com/p",
            )
        late = links["queue.late"]
        late.signoff_requested_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
        late.signoff_due_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        db.flush()
        return program, links

    @staticmethod
    def _row(html: str, link_id: int) -> str:
        found = re.search(rf'<tr data-link-id="{link_id}".*?</tr>', html, re.S)
        assert found, f"no row for link {link_id}"
        return found.group(0)

    def test_ops_sees_its_pending_sign_offs_with_due_times_and_a_breach_badge(
        self, html_client: TestClient, db: Session
    ) -> None:
        program, links = self._pending_links(db)
        user = factories.user(db, ("social_ops", program.brand.id))
        log_in(html_client, user.email, PASSWORD)
        answer = html_client.get("/approvals")
        assert answer.status_code == 200
        assert f'id="ops-queue-{program.brand.id}"' in answer.text
        fresh, late = self._row(answer.text, links["queue.fresh"].id), self._row(answer.text, links["queue.late"].id)
        assert links["queue.fresh"].code in fresh and "@queue.fresh" in fresh
        assert links["queue.fresh"].signoff_due_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") in fresh
        assert "SLA breached" not in fresh
        assert links["queue.late"].signoff_due_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") in late
        assert 'class="overdue"' in late and "SLA breached" in late
        assert "1 overdue" in answer.text
        assert late.index("SLA breached") < late.index("Sign off")

    def test_marketing_and_legal_do_not_see_ops_section(self, html_client: TestClient, db: Session) -> None:
        program, links = self._pending_links(db)
        for role in ("marketing", "legal"):
            user = factories.user(db, (role, program.brand.id))
            log_in(html_client, user.email, PASSWORD)
            answer = html_client.get("/approvals")
            assert answer.status_code == 200
            assert "ops-queue" not in answer.text
            assert links["queue.late"].code not in answer.text
            html_client.cookies.clear()

    def test_ops_of_another_brand_sees_only_its_own_queue(self, html_client: TestClient, db: Session) -> None:
        program, links = self._pending_links(db)
        other = factories.brand(db)
        user = factories.user(db, ("social_ops", other.id), ("marketing", program.brand.id))
        log_in(html_client, user.email, PASSWORD)
        answer = html_client.get("/approvals")
        assert f'id="ops-queue-{other.id}"' in answer.text
        assert f'id="ops-queue-{program.brand.id}"' not in answer.text
        assert links["queue.fresh"].code not in answer.text

    def test_a_sign_off_from_the_queue_returns_to_it_and_a_refusal_shows_on_the_row(
        self, html_client: TestClient, db: Session
    ) -> None:
        from clearline.link import repository as link_repository
        from clearline.link import service as link_service

        program, links = self._pending_links(db)
        program.creator("queue.unsigned", contracted=False)
        unsigned = link_service.issue_link(
            db,
            program.ops,
            campaign_id=program.campaign.id,
            creator_id=program.creators["queue.unsigned"].id,
            channel="instagram",
            destination_url="https://shop.example.com/p",
        )
        user = factories.user(db, ("social_ops", program.brand.id))
        token = log_in(html_client, user.email, PASSWORD)
        form = {"brand_id": program.brand.id, "back": "approvals", "csrf_token": token}
        answer = html_client.post(f"/links/{links['queue.late'].id}/signoff", data=form, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/approvals?signed={links['queue.late'].id}"
        assert link_repository.get_link(db, factories.SYSTEM, links["queue.late"].id).status == "live"
        refused = html_client.post(f"/links/{unsigned.id}/signoff", data=form)
        assert refused.status_code == 409
        assert "no accepted contract" in self._row(refused.text, unsigned.id)
        assert links["queue.late"].code not in refused.text

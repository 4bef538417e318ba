"""`clearline links issue|signoff|rotate|list` against a committed database, as an operator runs them."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from click.testing import Result
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from clearline.auth import service as auth_service
from clearline.campaign import service as campaign_service
from clearline.campaign.schemas import CampaignCreate
from clearline.cli.main import app as cli
from clearline.contract import service as contract_service
from clearline.kit.db import engine_for
from clearline.models import AuditEvent, Link
from tests import factories
from tests.conftest import _fresh_database, drop_database, migrate, use_database

SHOP = "https://shop.example.com"


@dataclass
class Setup:
    url: str
    brand: str
    ops: str
    marketing: str
    stranger: str


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """A committed, migrated database the CLI's own sessions reach through the settings; restored after."""
    url = _fresh_database(tmp_path_factory.mktemp("links_cli"), f"links_cli_{os.getpid()}")
    previous = os.environ.get("CLEARLINE_DATABASE_URL")
    try:
        migrate(url)
        with Session(engine_for(url)) as session:
            brand = factories.brand(session, slug="cli-brand", domains=("shop.example.com",))
            factories.skus(session, brand.id)
            other = factories.brand(session, slug="cli-other")
            ops = factories.user(session, ("social_ops", brand.id), password=None)
            marketing = factories.user(session, ("marketing", brand.id), password=None)
            stranger = factories.user(session, ("social_ops", other.id), password=None)
            now = dt.datetime.now(dt.UTC)
            campaign_service.create_campaign(
                session,
                factories.SYSTEM,
                brand_id=brand.id,
                data=CampaignCreate(
                    slug="spring-drop",
                    name="Spring drop",
                    payment_model="cpa",
                    starts_at=now - dt.timedelta(days=1),
                    ends_at=now + dt.timedelta(days=30),
                    fallback_url=f"{SHOP}/fallback",
                ),
            )
            for handle in ("cli.anna", "cli.bea", "cli.cleo"):
                creator = factories.creator(session, brand.id, handle=handle)
                contract = factories.contract(session, brand.id, creator_id=creator.id)
                party = factories.user(session, ("creator", brand.id), creator_id=creator.id, password=None)
                contract_service.accept_contract(
                    session, auth_service.actor_for(session, party), contract_id=contract.id
                )
            factories.creator(session, brand.id, handle="cli.nocontract")
            session.commit()
            found = Setup(url, brand.slug, ops.email, marketing.email, stranger.email)
        use_database(url)
        yield found
    finally:
        if previous is None:
            from clearline.config import get_settings

            os.environ.pop("CLEARLINE_DATABASE_URL", None)
            get_settings.cache_clear()
        else:
            use_database(previous)
        engine_for(url).dispose()
        drop_database(url)


@pytest.fixture(autouse=True)
def no_default_actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLEARLINE_ACTOR", raising=False)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["links", *args])


def issue(setup: Setup, creator: str, *extra: str, url: str = f"{SHOP}/p/1", who: str | None = None) -> Result:
    return run(
        "issue",
        "--brand",
        setup.brand,
        "--campaign",
        "spring-drop",
        "--creator",
        creator,
        "--channel",
        "instagram",
        "--url",
        url,
        "--as",
        who or setup.ops,
        *extra,
    )


def stored(setup: Setup, code: str) -> Link:
    with Session(engine_for(setup.url)) as session:
        link = session.scalar(select(Link).where(Link.code == code))
        assert link is not None
        return link


def code_of(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout.split("/r/", 1)[1].split()[0]


def refused(result: Result, reason: str) -> None:
    """Exit 1, and the first line of stderr is the reason."""
    assert result.exit_code == 1, result.output
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith("error: ") and reason in first, result.stderr


class TestIssue:
    def test_a_link_is_issued_pending_signoff(self, setup: Setup) -> None:
        result = issue(setup, "cli.anna")
        code = code_of(result)
        assert "pending sign-off, due " in result.stdout
        link = stored(setup, code)
        assert (link.status, link.channel, link.destination_url) == ("pending_signoff", "instagram", f"{SHOP}/p/1")
        assert link.utm["utm_content"] == "cli.anna"

    def test_a_per_sku_single_use_link_is_issued(self, setup: Setup) -> None:
        link = stored(setup, code_of(issue(setup, "cli.anna", "--sku", "SKU-A1", "--single-use")))
        assert (link.sku, link.is_single_use) == ("SKU-A1", True)

    def test_the_handle_is_case_insensitive(self, setup: Setup) -> None:
        link = stored(setup, code_of(issue(setup, "CLI.Bea", "--sku", "SKU-B1")))
        assert link.utm["utm_content"] == "cli.bea"

    def test_a_second_link_for_the_same_creator_and_campaign_fails(self, setup: Setup) -> None:
        issue(setup, "cli.bea", "--sku", "SKU-C1")
        refused(issue(setup, "cli.bea", "--sku", "SKU-C1"), "cli.bea already has link")

    def test_a_destination_off_the_allow_list_fails_naming_it(self, setup: Setup) -> None:
        refused(issue(setup, "cli.cleo", url="https://evil.example.net/"), "destination_url")

    def test_a_channel_too_long_fails_with_a_reason_not_a_traceback(self, setup: Setup) -> None:
        result = run(
            "issue",
            "--brand",
            setup.brand,
            "--campaign",
            "spring-drop",
            "--creator",
            "cli.cleo",
            "--channel",
            "c" * 40,
            "--url",
            f"{SHOP}/",
            "--as",
            setup.ops,
        )
        refused(result, "channel: longer than 32 characters")

    def test_an_unknown_sku_fails(self, setup: Setup) -> None:
        refused(issue(setup, "cli.cleo", "--sku", "SKU-NOPE"), "unknown SKU 'SKU-NOPE'")

    def test_an_unknown_creator_fails(self, setup: Setup) -> None:
        refused(issue(setup, "nobody.here"), "no creator 'nobody.here'")

    def test_an_unknown_campaign_fails(self, setup: Setup) -> None:
        result = run(
            "issue",
            "--brand",
            setup.brand,
            "--campaign",
            "winter",
            "--creator",
            "cli.cleo",
            "--channel",
            "ig",
            "--url",
            f"{SHOP}/",
            "--as",
            setup.ops,
        )
        refused(result, "no campaign 'winter'")

    def test_an_unknown_brand_fails(self, setup: Setup) -> None:
        result = run(
            "issue",
            "--brand",
            "nope",
            "--campaign",
            "spring-drop",
            "--creator",
            "cli.cleo",
            "--channel",
            "ig",
            "--url",
            f"{SHOP}/",
        )
        refused(result, "no brand 'nope'")

    def test_a_user_without_social_ops_fails(self, setup: Setup) -> None:
        refused(issue(setup, "cli.cleo", who=setup.marketing), "requires role social_ops")

    def test_social_ops_of_another_brand_does_not_see_the_creator(self, setup: Setup) -> None:
        refused(issue(setup, "cli.cleo", who=setup.stranger), "no creator 'cli.cleo'")

    def test_an_unknown_acting_user_fails(self, setup: Setup) -> None:
        refused(issue(setup, "cli.cleo", who="ghost@example.com"), "no user ghost@example.com")

    def test_a_missing_option_is_a_usage_error(self, setup: Setup) -> None:
        result = run("issue", "--brand", setup.brand)
        assert result.exit_code == 2
        assert "Missing option" in result.output

    def test_nothing_is_written_when_issuing_fails(self, setup: Setup) -> None:
        with Session(engine_for(setup.url)) as session:
            before = len(session.scalars(select(Link)).all())
        issue(setup, "cli.cleo", url="https://evil.example.net/")
        with Session(engine_for(setup.url)) as session:
            assert len(session.scalars(select(Link)).all()) == before


class TestSignoff:
    def test_a_pending_link_goes_live(self, setup: Setup) -> None:
        code = code_of(issue(setup, "cli.cleo", "--sku", "SKU-A1"))
        result = run("signoff", code, "--comment", "checked", "--as", setup.ops)
        assert result.exit_code == 0, result.output
        assert f"/r/{code} is live" in result.stdout
        link = stored(setup, code)
        assert link.status == "live" and link.signed_off_at is not None
        with Session(engine_for(setup.url)) as session:
            event = session.scalar(
                select(AuditEvent).where(AuditEvent.action == "link.signed_off", AuditEvent.entity_id == str(link.id))
            )
            assert event is not None and event.reason == "checked"

    def test_a_creator_without_an_accepted_contract_cannot_go_live(self, setup: Setup) -> None:
        code = code_of(issue(setup, "cli.nocontract"))
        refused(run("signoff", code, "--as", setup.ops), "no accepted contract")
        assert stored(setup, code).status == "pending_signoff"

    def test_a_link_already_live_cannot_be_signed_off_again(self, setup: Setup) -> None:
        code = code_of(issue(setup, "cli.cleo", "--sku", "SKU-B1"))
        run("signoff", code, "--as", setup.ops)
        refused(run("signoff", code, "--as", setup.ops), "only a link pending sign-off can go live")

    def test_an_unknown_code_fails(self, setup: Setup) -> None:
        refused(run("signoff", "zzzzzzzz", "--as", setup.ops), "no link with code 'zzzzzzzz'")

    def test_social_ops_of_another_brand_does_not_see_the_link(self, setup: Setup) -> None:
        code = code_of(issue(setup, "cli.cleo", "--sku", "SKU-C1"))
        refused(run("signoff", code, "--as", setup.stranger), f"no link with code {code!r}")


class TestRotate:
    def test_the_same_code_points_at_the_new_destination(self, setup: Setup) -> None:
        code = code_of(issue(setup, "cli.anna", "--sku", "SKU-B1"))
        result = run("rotate", code, "--url", f"{SHOP}/p/2", "--reason", "p/1 sold out", "--as", setup.ops)
        assert result.exit_code == 0, result.output
        assert f"/r/{code} now points at {SHOP}/p/2" in result.stdout
        link = stored(setup, code)
        assert link.destination_url == f"{SHOP}/p/2"
        with Session(engine_for(setup.url)) as session:
            event = session.scalar(
                select(AuditEvent).where(AuditEvent.action == "link.rotated", AuditEvent.entity_id == str(link.id))
            )
            assert event is not None and event.reason == "p/1 sold out"

    def test_a_destination_off_the_allow_list_fails_and_nothing_changes(self, setup: Setup) -> None:
        code = code_of(issue(setup, "cli.anna", "--sku", "SKU-C1"))
        refused(
            run("rotate", code, "--url", "https://evil.example.net/", "--reason", "x", "--as", setup.ops),
            "destination_url",
        )
        assert stored(setup, code).destination_url == f"{SHOP}/p/1"

    def test_a_blank_reason_fails(self, setup: Setup) -> None:
        code = code_of(issue(setup, "cli.bea"))
        refused(run("rotate", code, "--url", f"{SHOP}/p/2", "--reason", " ", "--as", setup.ops), "reason")

    def test_the_reason_is_required(self, setup: Setup) -> None:
        result = run("rotate", "whatever", "--url", f"{SHOP}/p/2")
        assert result.exit_code == 2 and "--reason" in result.output


class TestList:
    def test_the_brands_links_are_listed_with_status_and_readiness(self, setup: Setup) -> None:
        live = code_of(issue(setup, "cli.bea", "--sku", "SKU-A1"))
        run("signoff", live, "--as", setup.ops)
        pending = code_of(issue(setup, "cli.nocontract", "--sku", "SKU-A1"))
        result = run("list", "--brand", setup.brand, "--as", setup.ops)
        assert result.exit_code == 0, result.output
        rows = {code: line for line in result.stdout.splitlines() for code in (live, pending) if code in line}
        assert "cli.bea" in rows[live] and "live" in rows[live] and "✗" not in rows[live]
        assert "cli.nocontract" in rows[pending] and "pending_signoff" in rows[pending]
        assert rows[pending].count("✗") == 2

    def test_social_ops_of_another_brand_lists_nothing(self, setup: Setup) -> None:
        result = run("list", "--brand", setup.brand, "--as", setup.stranger)
        assert result.exit_code == 0
        with Session(engine_for(setup.url)) as session:
            codes = session.scalars(select(Link.code)).all()
        assert codes and not any(c in result.stdout for c in codes)

    def test_an_unknown_brand_fails(self, setup: Setup) -> None:
        refused(run("list", "--brand", "nope", "--as", setup.ops), "no brand 'nope'")

"""link.health: landing pages probed over HTTP (faked only at the transport), alerts, escalation, recovery."""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from clearline.cli.main import app as cli
from clearline.link import health, service
from clearline.models import AuditEvent, Link, Notification
from tests import factories
from tests.conftest import use_database
from tests.link.conftest import Program, World, contracted_creator

T0 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
Handler = Callable[[httpx.Request], httpx.Response]


def answering(status: int) -> Handler:
    return lambda request: httpx.Response(status, text="landing page")


def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def by_path(request: httpx.Request) -> httpx.Response:
    """The shop: every page answers 200 except /gone (404) and /boom (500); /old redirects to /p/1."""
    if request.url.path == "/old":
        return httpx.Response(301, headers={"location": "https://shop.example.com/p/1"})
    return httpx.Response({"/gone": 404, "/boom": 500}.get(request.url.path, 200))


def check(db: Session, world: World, handler: Handler, at: dt.datetime = T0) -> health.HealthReport:
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        return health.check_links(db, factories.SYSTEM, client=client, now=at, brand_id=world.brand.id)


def live_link(db: Session, world: World, url: str = "https://shop.example.com/p/1", **kwargs: object) -> Link:
    link = service.issue_link(
        db,
        world.ops,
        campaign_id=world.campaign.id,
        creator_id=world.creator.id,
        channel="instagram",
        destination_url=url,
        **kwargs,  # type: ignore[arg-type]
    )
    return service.sign_off(db, world.ops, link_id=link.id)


def notices(db: Session, link: Link, kind: str) -> list[Notification]:
    stmt = select(Notification).where(
        Notification.subject_type == "link", Notification.subject_id == link.id, Notification.kind == kind
    )
    return list(db.scalars(stmt.order_by(Notification.id)))


def audited(db: Session, link: Link, action: str) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action, AuditEvent.entity_id == str(link.id))
    return list(db.scalars(stmt.order_by(AuditEvent.id)))


class TestProbe:
    def test_the_landing_page_is_fetched_with_the_links_utm_parameters(self, db: Session, world: World) -> None:
        seen: list[httpx.URL] = []

        def record(request: httpx.Request) -> httpx.Response:
            seen.append(request.url)
            return httpx.Response(200)

        link = live_link(db, world, url="https://shop.example.com/p/1?color=red")
        check(db, world, record)
        (url,) = seen
        query = parse_qs(urlsplit(str(url)).query)
        assert query["color"] == ["red"]
        assert query["utm_source"] == ["instagram"] and query["utm_medium"] == ["affiliate"]
        assert link.health_checked_at == T0

    def test_a_redirect_to_a_working_page_is_healthy(self, db: Session, world: World) -> None:
        link = live_link(db, world, url="https://shop.example.com/old")
        assert check(db, world, by_path).ok == 1
        assert link.health == "ok"


class TestCheckLinks:
    def test_a_healthy_link_stays_ok_without_alerts(self, db: Session, world: World) -> None:
        link = live_link(db, world)
        first = check(db, world, answering(200))
        second = check(db, world, answering(200), T0 + dt.timedelta(hours=3))
        assert (first.checked, first.ok, first.broken, second.ok) == (1, 1, [], 1)
        assert (link.health, link.broken_since) == ("ok", None)
        assert db.scalars(select(Notification).where(Notification.subject_id == link.id)).all() == []
        assert audited(db, link, "link.broken") == []

    @pytest.mark.parametrize(
        ("handler", "detail"),
        [(answering(404), "HTTP 404"), (answering(500), "HTTP 500"), (unreachable, "ConnectError")],
        ids=["not-found", "server-error", "connection-refused"],
    )
    def test_a_failing_landing_page_marks_the_link_broken(
        self, db: Session, world: World, handler: Handler, detail: str
    ) -> None:
        link = live_link(db, world)
        report = check(db, world, handler)
        assert report.broken == [link.code] and report.ok == 0
        assert (link.health, link.broken_since, link.escalated_at) == ("broken", T0, None)
        assert service.readiness(db, link)["health"] is False

        (ops, to_creator) = notices(db, link, "link.broken")
        assert (ops.role, ops.creator_id, ops.level, ops.brand_id) == ("social_ops", None, 1, world.brand.id)
        assert (to_creator.creator_id, to_creator.role) == (world.creator.id, "")
        assert link.code in ops.message and detail in ops.message
        assert link.code in to_creator.message

        (event,) = audited(db, link, "link.broken")
        assert event.before == {"health": "unknown"} and event.after == {"health": "broken"}
        assert detail in event.reason

    def test_a_link_still_broken_is_not_alerted_twice(self, db: Session, world: World) -> None:
        link = live_link(db, world)
        check(db, world, answering(404))
        again = check(db, world, answering(404), T0 + dt.timedelta(minutes=30))
        assert again.broken == [link.code]
        assert len(notices(db, link, "link.broken")) == 2  # one to ops, one to the creator
        assert len(audited(db, link, "link.broken")) == 1
        assert link.broken_since == T0

    def test_broken_for_exactly_two_hours_does_not_escalate_yet(self, db: Session, world: World) -> None:
        link = live_link(db, world)
        check(db, world, answering(500))
        report = check(db, world, answering(500), T0 + health.ESCALATE_AFTER)
        assert report.escalated == [] and link.escalated_at is None

    def test_broken_for_more_than_two_hours_escalates_exactly_once(self, db: Session, world: World) -> None:
        link = live_link(db, world)
        check(db, world, answering(500))
        check(db, world, answering(500), T0 + dt.timedelta(hours=1))
        late = T0 + dt.timedelta(hours=2, minutes=5)
        escalated = check(db, world, answering(500), late)
        later = check(db, world, answering(500), T0 + dt.timedelta(hours=4))

        assert escalated.escalated == [link.code] and escalated.broken == [link.code]
        assert later.escalated == [] and later.broken == [link.code]
        assert link.escalated_at == late
        (notice,) = notices(db, link, "link.escalated")
        assert (notice.role, notice.level) == ("social_ops", 2)
        assert len(audited(db, link, "link.escalated")) == 1

    def test_recovery_clears_the_flag_and_tells_ops_and_the_creator(self, db: Session, world: World) -> None:
        link = live_link(db, world)
        check(db, world, unreachable)
        check(db, world, unreachable, T0 + dt.timedelta(hours=3))
        report = check(db, world, answering(200), T0 + dt.timedelta(hours=4))

        assert report.recovered == [link.code] and report.broken == []
        assert (link.health, link.broken_since, link.escalated_at) == ("ok", None, None)
        recovered = notices(db, link, "link.recovered")
        assert {(n.role, n.creator_id) for n in recovered} == {("social_ops", None), ("", world.creator.id)}
        (event,) = audited(db, link, "link.recovered")
        assert (event.before, event.after) == ({"health": "broken"}, {"health": "ok"})

    def test_a_link_that_breaks_again_after_recovering_is_alerted_again(self, db: Session, world: World) -> None:
        link = live_link(db, world)
        check(db, world, answering(404))
        check(db, world, answering(200), T0 + dt.timedelta(hours=1))
        report = check(db, world, answering(404), T0 + dt.timedelta(hours=2))
        assert report.broken == [link.code]
        assert link.broken_since == T0 + dt.timedelta(hours=2)
        assert len(audited(db, link, "link.broken")) == 2

    def test_only_live_links_are_probed(self, db: Session, world: World) -> None:
        live = live_link(db, world, url="https://shop.example.com/gone")
        pending = service.issue_link(
            db,
            world.ops,
            campaign_id=world.campaign.id,
            creator_id=world.spare.id,
            channel="tiktok",
            destination_url="https://shop.example.com/boom",
        )
        report = check(db, world, by_path)
        assert (report.checked, report.broken) == (1, [live.code])
        assert pending.health == "unknown"

    def test_each_link_is_judged_on_its_own_page(self, db: Session, world: World) -> None:
        good = live_link(db, world, url="https://shop.example.com/p/1")
        gone = live_link(db, world, url="https://shop.example.com/gone", sku="SKU-A1")
        boom = live_link(db, world, url="https://shop.example.com/boom", sku="SKU-B1")
        report = check(db, world, by_path)
        assert report.ok == 1 and sorted(report.broken) == sorted([gone.code, boom.code])
        assert (good.health, gone.health, boom.health) == ("ok", "broken", "broken")


# --- `clearline links check` against a committed database --------------------------------------------


@pytest.fixture
def cli_database(program: Program) -> Iterator[str]:
    """Point settings (the CLI opens its own sessions) at the committed database, then restore them."""
    from clearline.kit.db import engine_for

    url = program.engine.url.render_as_string(hide_password=False)
    previous = os.environ.get("CLEARLINE_DATABASE_URL")
    use_database(url)
    try:
        yield url
    finally:
        engine_for(url).dispose()
        if previous is None:
            from clearline.config import get_settings

            os.environ.pop("CLEARLINE_DATABASE_URL", None)
            get_settings.cache_clear()
        else:
            use_database(previous)


def fake_shop(monkeypatch: pytest.MonkeyPatch, handler: Handler) -> None:
    """Every httpx.Client the command opens talks to ``handler`` instead of the network."""
    monkeypatch.setattr(httpx, "Client", functools.partial(httpx.Client, transport=httpx.MockTransport(handler)))


def committed_live_link(program: Program, ops_session: tuple[Session, object], url: str) -> Link:
    session, actor = ops_session
    link = service.issue_link(
        session,
        actor,  # type: ignore[arg-type]
        campaign_id=program.campaign_id,
        creator_id=contracted_creator(session, program.brand_id),
        channel="instagram",
        destination_url=url,
    )
    service.sign_off(session, actor, link_id=link.id)  # type: ignore[arg-type]
    session.commit()
    return link


def brand_slug(program: Program) -> str:
    from clearline.models import Brand

    with Session(program.engine) as session:
        brand = session.get(Brand, program.brand_id)
        assert brand is not None
        return brand.slug


class TestLinksCheckCommand:
    def test_a_broken_landing_page_makes_the_command_exit_2(
        self, program: Program, ops_session, cli_database: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        link = committed_live_link(program, ops_session, "https://shop.example.com/gone")
        fake_shop(monkeypatch, by_path)
        result = CliRunner().invoke(cli, ["links", "check", "--brand", brand_slug(program)])
        assert result.exit_code == 2, result.output
        assert "1 broken" in result.output and link.code in result.output
        with Session(program.engine) as session:
            stored = session.get(Link, link.id)
            assert stored is not None and stored.health == "broken"
            kinds = session.scalars(select(Notification.kind).where(Notification.subject_id == link.id)).all()
            assert kinds == ["link.broken", "link.broken"]

    def test_all_pages_answering_makes_the_command_exit_0(
        self, program: Program, ops_session, cli_database: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        committed_live_link(program, ops_session, "https://shop.example.com/p/ok")
        fake_shop(monkeypatch, answering(200))
        result = CliRunner().invoke(cli, ["links", "check", "--brand", brand_slug(program)])
        assert result.exit_code == 0, result.output
        assert " 0 broken" in result.output

    def test_an_unreachable_shop_makes_the_command_exit_2(
        self, program: Program, ops_session, cli_database: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        committed_live_link(program, ops_session, "https://shop.example.com/p/down")
        fake_shop(monkeypatch, unreachable)
        result = CliRunner().invoke(cli, ["links", "check", "--brand", brand_slug(program)])
        assert result.exit_code == 2, result.output

    def test_an_unknown_brand_exits_1_with_a_one_line_reason(self, cli_database: str) -> None:
        result = CliRunner().invoke(cli, ["links", "check", "--brand", "no-such-brand"])
        assert result.exit_code == 1
        assert result.stderr.strip().splitlines() == ["error: no brand 'no-such-brand'"]

"""GET /r/{code} exactly as INTERFACES §1, served by the hot path in front of FastAPI."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import signal
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from clearline.kit.signing import Signer
from clearline.link import repository, service
from clearline.link.redirect import PEER_IS_PROXY, ClickWriter, RedirectMiddleware, Redirector, Repeats
from clearline.models import Click, Link, LinkChange
from tests.link.conftest import contracted_creator

SECRET = "test-secret-key"
FALLBACK = "https://shop.example.com/fallback"


async def _framework(scope, receive, send):  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 418, "headers": []})
    await send({"type": "http.response.body", "body": b"framework"})


@pytest.fixture
def redirector(program) -> Iterator[Redirector]:  # type: ignore[no-untyped-def]
    hot = Redirector(program.engine, secret_key=SECRET, poll_interval=3600)
    hot.start()
    yield hot
    hot.stop()


@pytest.fixture
def web(redirector: Redirector) -> TestClient:
    return TestClient(RedirectMiddleware(_framework, redirector), follow_redirects=False)


def issue(
    ops_session, program, *, url="https://shop.example.com/p/1?color=red#reviews", sku="", live=True, **kwargs
) -> Link:  # type: ignore[no-untyped-def]
    """A committed link for a fresh contracted creator."""
    session, actor = ops_session
    creator_id = contracted_creator(session, program.brand_id)
    link = service.issue_link(
        session,
        actor,
        campaign_id=program.campaign_id,
        creator_id=creator_id,
        channel="Instagram",
        destination_url=url,
        sku=sku,
        **kwargs,
    )
    if live:
        service.sign_off(session, actor, link_id=link.id)
    session.commit()
    return link


def clicks(program, link_id: int) -> list[Click]:  # type: ignore[no-untyped-def]
    with Session(program.engine) as session:
        return list(session.scalars(select(Click).where(Click.link_id == link_id).order_by(Click.id)))


def clid(answer) -> str:  # type: ignore[no-untyped-def]
    return parse_qs(urlsplit(answer.headers["location"]).query)["clid"][0]


class TestLiveLink:
    def test_live_link_redirects_with_utm_and_signed_click_id(self, web, redirector, ops_session, program):
        link = issue(ops_session, program, sku="SKU-A1")
        redirector.links.refresh()
        answer = web.get(
            f"/r/{link.code}", headers={"user-agent": "Mozilla/5.0", "referer": "https://ig.me/x", "cf-ipcountry": "de"}
        )
        assert answer.status_code == 302
        location = urlsplit(answer.headers["location"])
        assert (location.scheme, location.netloc, location.path, location.fragment) == (
            "https",
            "shop.example.com",
            "/p/1",
            "reviews",
        )
        query = parse_qs(location.query)
        assert query["color"] == ["red"]
        assert query["utm_medium"] == ["affiliate"]
        assert query["utm_source"] == ["instagram"]
        assert query["utm_campaign"] == ["spring-drop"]
        assert query["utm_id"] == [str(program.campaign_id)]
        assert query["utm_term"] == ["sku-a1"]
        click_id = Signer(SECRET, "click-id").unsign(query["clid"][0])
        assert click_id is not None
        redirector.writer.flush()
        [click] = clicks(program, link.id)
        assert click.click_id == click_id
        assert click.outcome == "live" and not click.is_bot and not click.is_repeat
        assert click.country == "" and click.referrer == "https://ig.me/x"  # a direct client's country header
        assert len(click.ip_hash) == 64 and "testclient" not in click.ip_hash

    def test_header_values_are_stored_as_sent(self, web, redirector, ops_session, program):
        link = issue(ops_session, program)
        redirector.links.refresh()
        agent, referrer = "Agent\\1.0\twith tab", "https://ex.ample/a\\b?q=1\t2"
        web.get(f"/r/{link.code}", headers={"user-agent": agent, "referer": referrer})
        redirector.writer.flush()
        [click] = clicks(program, link.id)
        assert (click.user_agent, click.referrer) == (agent, referrer)

    def test_request_parameters_never_change_the_destination(self, web, redirector, ops_session, program):
        link = issue(ops_session, program)
        redirector.links.refresh()
        answer = web.get(
            f"/r/{link.code}?url=https://evil.example.net&next=//evil.example.net", headers={"host": "evil.example.net"}
        )
        assert answer.status_code == 302
        assert urlsplit(answer.headers["location"]).netloc == "shop.example.com"
        assert "evil" not in answer.headers["location"]

    def test_repeat_visitor_keeps_first_click_id_and_is_flagged(self, web, redirector, ops_session, program):
        link = issue(ops_session, program)
        redirector.links.refresh()
        first = web.get(f"/r/{link.code}", headers={"user-agent": "Phone A"})
        second = web.get(f"/r/{link.code}", headers={"user-agent": "Phone A"})
        other = web.get(f"/r/{link.code}", headers={"user-agent": "Laptop B"})
        assert clid(first) == clid(second) != clid(other)
        redirector.writer.flush()
        assert [c.is_repeat for c in clicks(program, link.id)] == [False, True, False]

    def test_bots_and_head_requests_are_logged_as_bots(self, web, redirector, ops_session, program):
        link = issue(ops_session, program)
        redirector.links.refresh()
        web.get(f"/r/{link.code}", headers={"user-agent": "facebookexternalhit/1.1"})
        web.head(f"/r/{link.code}", headers={"user-agent": "Mozilla/5.0"})
        web.get(f"/r/{link.code}", headers={"user-agent": "Mozilla/5.0 (iPhone)"})
        redirector.writer.flush()
        assert [c.is_bot for c in clicks(program, link.id)] == [True, True, False]

    def test_a_country_header_counts_only_when_the_protocol_says_the_peer_is_a_trusted_proxy(
        self, redirector, ops_session, program
    ):
        async def handed_over_by_protocol(scope, receive, send):  # type: ignore[no-untyped-def]
            scope[PEER_IS_PROXY] = True  # as `RedirectProtocol` marks a trusted proxy's connection
            await RedirectMiddleware(_framework, redirector)(scope, receive, send)

        link = issue(ops_session, program)
        redirector.links.refresh()
        proxied = TestClient(handed_over_by_protocol, follow_redirects=False)
        direct = TestClient(RedirectMiddleware(_framework, redirector), follow_redirects=False)
        for client in (proxied, direct):
            for name in ("cf-ipcountry", "x-country-code", "x-appengine-country", "cloudfront-viewer-country"):
                assert client.get(f"/r/{link.code}", headers={name: "fr"}).status_code == 302
        redirector.writer.flush()
        assert [c.country for c in clicks(program, link.id)] == ["FR"] * 4 + [""] * 4

    def test_other_paths_reach_the_framework(self, web):
        assert web.get("/api/v1/brands").status_code == 418
        assert web.get("/r/").status_code == 418
        assert web.get("/r/a/b").status_code == 418
        assert web.post("/r/abc").status_code == 418


class TestRepeats:
    def test_a_visitor_back_after_the_window_does_not_hold_up_the_eviction_of_older_ones(self):
        repeats = Repeats(window=10)
        repeats.put(1, "a", 0.0)
        repeats.put(2, "b", 5.0)
        assert repeats.get(1, 11.0) is None  # visitor 1's hour is over: a new first click
        repeats.put(1, "c", 11.0)
        repeats.put(3, "d", 16.0)  # visitor 2's entry is 11 s old by now

        assert list(repeats._seen) == [1, 3]


class TestClickIds:
    def test_altered_or_forged_click_ids_are_refused(self):
        signer = Signer(SECRET, "click-id")
        signed = signer.sign("01JDX4Q8ZB7AB")
        assert signer.unsign(signed) == "01JDX4Q8ZB7AB"
        value, sig = signed.split(".")
        assert signer.unsign(f"01JDX4Q8ZB7AC.{sig}") is None
        assert signer.unsign(f"{value}.{'A' * len(sig)}") is None
        assert signer.unsign(value) is None
        assert signer.unsign("") is None
        assert Signer("another-secret", "click-id").unsign(signed) is None
        assert Signer(SECRET, "other-purpose").unsign(signed) is None

    def test_signature_is_hmac_sha256_of_the_id_under_the_purpose_key(self):
        key = hmac.new(SECRET.encode(), b"click-id", hashlib.sha256).digest()
        mac = hmac.new(key, b"01JDX4Q8ZB7AB", hashlib.sha256).digest()
        expected = "01JDX4Q8ZB7AB." + base64.urlsafe_b64encode(mac).decode()[:16]
        assert Signer(SECRET, "click-id").sign("01JDX4Q8ZB7AB") == expected


class TestNotLive:
    def test_unknown_code_is_404(self, web):
        assert web.get("/r/doesnotexist").status_code == 404

    def test_expired_link_goes_to_fallback_without_attribution(self, web, redirector, ops_session, program):
        link = issue(ops_session, program)
        session, _ = ops_session
        session.execute(
            update(Link).where(Link.id == link.id).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        )
        repository.touch(session, link.id)
        session.commit()
        redirector.links.refresh()
        answer = web.get(f"/r/{link.code}")
        assert (answer.status_code, answer.headers["location"]) == (302, FALLBACK)
        redirector.writer.flush()
        assert [c.outcome for c in clicks(program, link.id)] == ["expired"]

    def test_single_use_link_works_once(self, web, redirector, ops_session, program):
        link = issue(ops_session, program, is_single_use=True)
        redirector.links.refresh()
        first = web.get(f"/r/{link.code}")
        second = web.get(f"/r/{link.code}")
        assert "clid=" in first.headers["location"]
        assert second.headers["location"] == FALLBACK
        redirector.writer.flush()
        assert [c.outcome for c in clicks(program, link.id)] == ["live", "used"]
        with Session(program.engine) as session:
            assert session.get(Link, link.id).used_at is not None

    def test_single_use_is_claimed_once_across_workers(self, ops_session, program):
        link = issue(ops_session, program, is_single_use=True)
        workers = [Redirector(program.engine, secret_key=SECRET, poll_interval=3600) for _ in range(2)]
        for worker in workers:
            worker.start()
        try:
            answers = [
                TestClient(RedirectMiddleware(_framework, w), follow_redirects=False).get(f"/r/{link.code}")
                for w in workers
            ]
        finally:
            for worker in workers:
                worker.stop()
        assert sorted(a.headers["location"] == FALLBACK for a in answers) == [False, True]

    def test_retired_link_goes_to_fallback(self, web, redirector, ops_session, program):
        link = issue(ops_session, program)
        session, actor = ops_session
        service.retire(session, actor, link_id=link.id, reason="creator left")
        session.commit()
        redirector.links.refresh()
        assert web.get(f"/r/{link.code}").headers["location"] == FALLBACK

    def test_link_pending_signoff_carries_no_attribution(self, web, redirector, ops_session, program):
        link = issue(ops_session, program, live=False)
        redirector.links.refresh()
        assert web.get(f"/r/{link.code}").headers["location"] == FALLBACK
        redirector.writer.flush()
        assert [c.outcome for c in clicks(program, link.id)] == ["not_live"]


class TestMapStaysCurrent:
    def test_rotation_reaches_a_running_worker(self, web, redirector, ops_session, program):
        link = issue(ops_session, program, url="https://shop.example.com/old")
        redirector.links.refresh()
        assert urlsplit(web.get(f"/r/{link.code}").headers["location"]).path == "/old"
        session, actor = ops_session
        service.rotate(
            session, actor, link_id=link.id, destination_url="https://shop.example.com/new", reason="old page sold out"
        )
        session.commit()
        assert redirector.links.refresh() == 1
        assert urlsplit(web.get(f"/r/{link.code}").headers["location"]).path == "/new"

    def test_a_change_committed_after_a_later_numbered_one_is_still_seen(self, web, redirector, ops_session, program):
        # Two writers: the retirement's change gets the lower id but commits after the other one, which the
        # poller has already read (its cursor is past the retirement's id when that commits).
        link, other = issue(ops_session, program), issue(ops_session, program)
        redirector.links.refresh()
        engine = program.engine
        with engine.connect() as late:
            if engine.dialect.name == "postgresql":
                late.execute(update(Link).where(Link.id == link.id).values(status="retired"))
                late.execute(insert(LinkChange).values(link_id=link.id))  # takes the next id, not yet committed
                with engine.begin() as early:
                    early.execute(insert(LinkChange).values(link_id=other.id))
            else:  # one writer at a time: the ids are given, in the order two concurrent writers could commit them
                last = late.scalar(select(func.max(LinkChange.id)))
                with engine.begin() as early:
                    early.execute(insert(LinkChange).values(id=last + 2, link_id=other.id))
                late.execute(update(Link).where(Link.id == link.id).values(status="retired"))
                late.execute(insert(LinkChange).values(id=last + 1, link_id=link.id))
            redirector.links.refresh()
            late.commit()
        redirector.links.refresh()
        assert web.get(f"/r/{link.code}").headers["location"] == FALLBACK

    def test_poller_picks_up_changes_without_being_asked(self, ops_session, program):
        hot = Redirector(program.engine, secret_key=SECRET, poll_interval=0.05)
        hot.start()
        try:
            link = issue(ops_session, program)
            deadline = time.time() + 5
            while link.code not in hot.links.entries and time.time() < deadline:
                time.sleep(0.02)
            assert hot.links.entries[link.code].status == "live"
        finally:
            hot.stop()


class TestNoClickLost:
    def test_graceful_restart_keeps_every_click(self, ops_session, program):
        link = issue(ops_session, program)
        before = len(clicks(program, link.id))
        sent = 0
        for _ in range(2):  # two server lifetimes, stopped gracefully in between
            hot = Redirector(program.engine, secret_key=SECRET, poll_interval=3600)
            hot.writer.interval = 3600  # nothing flushes on its own: only the shutdown can save them
            hot.start()
            client = TestClient(RedirectMiddleware(_framework, hot), follow_redirects=False)
            for i in range(250):
                assert client.get(f"/r/{link.code}", headers={"user-agent": f"agent {i}"}).status_code == 302
                sent += 1
            assert hot.writer.pending > 0
            hot.stop()
        with Session(program.engine) as session:
            stored = session.scalar(select(func.count()).select_from(Click).where(Click.link_id == link.id))
        assert stored - before == sent == 500

    def test_a_failed_flush_keeps_the_clicks_for_the_next_one(self, ops_session, program):
        link = issue(ops_session, program)
        hot = Redirector(program.engine, secret_key=SECRET, poll_interval=3600)
        hot.start()
        hot.writer.stop()
        client = TestClient(RedirectMiddleware(_framework, hot), follow_redirects=False)
        client.get(f"/r/{link.code}")
        real_engine = hot.writer.engine

        class Broken:
            def begin(self):  # type: ignore[no-untyped-def]
                raise RuntimeError("database down")

        hot.writer.engine = Broken()  # type: ignore[assignment]
        assert hot.writer.flush() == 0 and hot.writer.pending == 1
        hot.writer.engine = real_engine
        assert hot.writer.flush() == 1
        hot.stop()

    def test_the_in_process_job_consumer_leaves_stop_signals_to_the_server(self, monkeypatch):
        """`clearline serve` runs Huey's consumer in-process; Huey's start() takes SIGINT and SIGTERM, and the
        server then ignored its stop signal: no graceful shutdown, so no final flush of the clicks."""
        from huey import MemoryHuey

        from clearline.kit import jobs

        monkeypatch.setattr(jobs, "huey", MemoryHuey("signals-test"))

        def server_handler(signum, frame):  # type: ignore[no-untyped-def]
            return None

        before = {signum: signal.signal(signum, server_handler) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            consumer = jobs.start_consumer()
            try:
                assert signal.getsignal(signal.SIGINT) is server_handler
                assert signal.getsignal(signal.SIGTERM) is server_handler
            finally:
                consumer.stop(graceful=True)
        finally:
            for signum, handler in before.items():
                signal.signal(signum, handler)

    def test_a_large_batch_is_stored_whole(self, ops_session, program):
        link = issue(ops_session, program)
        ip_key = hmac.new(SECRET.encode(), b"ip-hash", hashlib.sha256).digest()
        writer = ClickWriter(program.engine, ip_key=ip_key)
        now = time.time()
        for i in range(1000):  # several chunks, and more bound values than old SQLite allows in one statement
            at, click_id = now + i / 1000, f"0000000000{i:03d}"
            writer.add((click_id, link.id, at, f"198.51.100.{i % 2}", b"UA", b"", b"de", i == 7, False, "live"))
        assert writer.flush() == 1000
        stored = clicks(program, link.id)
        assert len(stored) == 1000 and {c.country for c in stored} == {"DE"}
        # The writer hashes each address (salted, as the hot path did before it left that to the writer) and
        # flags a HEAD request as a bot.
        hashes = {hmac.new(ip_key, f"198.51.100.{i}".encode(), hashlib.sha256).hexdigest() for i in (0, 1)}
        assert {c.ip_hash for c in stored} == hashes
        assert [c.click_id for c in stored if c.is_bot] == ["0000000000007"]

    def test_a_database_that_keeps_failing_is_logged_once_a_minute_and_no_click_is_dropped(self, caplog):
        class Down:
            def begin(self):  # type: ignore[no-untyped-def]
                raise ConnectionError("database down")

        writer = ClickWriter(Down(), ip_key=b"k" * 32)  # type: ignore[arg-type]
        writer.add(("0000000000001", 1, time.time(), "198.51.100.1", b"UA", b"", b"", False, False, "live"))
        with caplog.at_level("ERROR", logger="clearline.redirect"):
            assert [writer.flush() for _ in range(50)] == [0] * 50  # a second of 20 ms ticks

        assert writer.pending == 1
        assert sum("click flush failed" in r.getMessage() for r in caplog.records) == 1

    def test_a_flush_waits_for_the_one_in_progress(self, ops_session, program):
        """Shutdown's flush must not find the buffer empty while the writer thread's flush can still fail
        and put its clicks back: they would stay in memory after the last flush."""
        link = issue(ops_session, program)
        hot = Redirector(program.engine, secret_key=SECRET, poll_interval=3600)
        hot.start()
        hot.writer.stop()
        TestClient(RedirectMiddleware(_framework, hot), follow_redirects=False).get(f"/r/{link.code}")
        real_engine, entered, release = hot.writer.engine, threading.Event(), threading.Event()

        class Failing:
            def begin(self):  # type: ignore[no-untyped-def]
                entered.set()
                release.wait(5)
                raise RuntimeError("database down")

        hot.writer.engine = Failing()  # type: ignore[assignment]
        first = threading.Thread(target=hot.writer.flush)
        first.start()
        assert entered.wait(5)
        hot.writer.engine = real_engine
        second: list[int] = []
        waiting = threading.Thread(target=lambda: second.append(hot.writer.flush()))
        waiting.start()
        time.sleep(0.1)
        release.set()
        first.join(5)
        waiting.join(5)
        assert second == [1] and hot.writer.pending == 0
        hot.stop()

"""`clearline serve`'s HTTP protocol over real sockets: redirects answered ahead of ASGI, the rest by uvicorn."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import uvicorn
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from uvicorn.server import ServerState

from clearline.kit.signing import Signer
from clearline.link.protocol import RedirectProtocol
from clearline.link.redirect import RedirectMiddleware, Redirector
from clearline.models import Click
from tests.link.test_redirect import FALLBACK, SECRET, _framework, clicks, issue


class Served:
    """A uvicorn server with the redirect protocol on a free loopback port, in a thread of its own."""

    def __init__(
        self, redirector: Redirector, app: Any = None, lifespan: str = "off", trusted: str = "127.0.0.1,::1"
    ) -> None:
        self.redirector = redirector
        config = uvicorn.Config(
            app or RedirectMiddleware(_framework, redirector),
            http=RedirectProtocol,
            lifespan=lifespan,
            forwarded_allow_ips=trusted,  # uvicorn's default: this test client (loopback) is a trusted proxy
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.time() + 20  # (a lifespan start-up loads the link map and the brand keys)
        while not self.server.started and time.time() < deadline:
            time.sleep(0.01)
        assert self.server.started

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def read_answers(conn: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """`count` HTTP responses from the connection: status, headers (lowercased names) and body."""
    data, answers = b"", []
    while len(answers) < count:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return answers
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
        if headers.get("transfer-encoding") == "chunked":
            while b"0\r\n\r\n" not in data:
                data += conn.recv(65536)
            chunked, data = data.split(b"0\r\n\r\n", 1)
            body = b"".join(chunked.split(b"\r\n")[1::2])
        else:
            length = int(headers.get("content-length", "0"))
            while len(data) < length:
                data += conn.recv(65536)
            body, data = data[:length], data[length:]
        answers.append((int(status_line.split()[1]), headers, body))
    return answers


def get(code: str, *headers: str, method: str = "GET") -> bytes:
    return "\r\n".join([f"{method} /r/{code} HTTP/1.1", "Host: go.example.com", *headers, "", ""]).encode()


@pytest.fixture
def redirector(program) -> Iterator[Redirector]:  # type: ignore[no-untyped-def]
    hot = Redirector(program.engine, secret_key=SECRET, poll_interval=3600)
    hot.start()
    yield hot
    hot.stop()


@pytest.fixture
def served(redirector: Redirector) -> Iterator[Served]:
    server = Served(redirector)
    yield server
    server.stop()


class TestFastPath:
    def test_live_link_answers_as_the_interface_says(self, served, redirector, ops_session, program):
        link = issue(ops_session, program, sku="SKU-A1")
        redirector.links.refresh()
        with served.connect() as conn:
            conn.sendall(get(link.code, "User-Agent: Mozilla/5.0", "Referer: https://ig.me/x", "CF-IPCountry: de"))
            [(status, headers, body)] = read_answers(conn, 1)
        assert (status, body, headers["cache-control"], headers["content-length"]) == (302, b"", "no-store", "0")
        assert "date" in headers
        location = urlsplit(headers["location"])
        assert (location.netloc, location.path, location.fragment) == ("shop.example.com", "/p/1", "reviews")
        query = parse_qs(location.query)
        assert query["color"] == ["red"] and query["utm_term"] == ["sku-a1"]
        click_id = Signer(SECRET, "click-id").unsign(query["clid"][0])
        assert click_id is not None
        redirector.writer.flush()
        [click] = clicks(program, link.id)
        assert (click.click_id, click.outcome, click.is_bot, click.is_repeat) == (click_id, "live", False, False)
        assert (click.country, click.referrer, click.user_agent) == ("DE", "https://ig.me/x", "Mozilla/5.0")

    def test_keep_alive_repeats_and_head_requests(self, served, redirector, ops_session, program):
        link = issue(ops_session, program)
        redirector.links.refresh()
        with served.connect() as conn:
            conn.sendall(get(link.code, "User-Agent: Phone A") + get(link.code, "User-Agent: Phone A"))
            first, second = read_answers(conn, 2)
            conn.sendall(get(link.code, "User-Agent: Phone A", method="HEAD"))
            [third] = read_answers(conn, 1)
        assert first[1]["location"] == second[1]["location"] == third[1]["location"]
        redirector.writer.flush()
        flags = [(c.is_repeat, c.is_bot) for c in clicks(program, link.id)]
        assert flags == [(False, False), (True, False), (True, True)]

    def test_not_live_link_goes_to_the_fallback(self, served, redirector, ops_session, program):
        link = issue(ops_session, program, live=False)
        redirector.links.refresh()
        with served.connect() as conn:
            conn.sendall(get(link.code))
            [(status, headers, _)] = read_answers(conn, 1)
        assert (status, headers["location"]) == (302, FALLBACK)

    def test_a_trusted_proxy_names_the_client(self, served, redirector, ops_session, program):
        link = issue(ops_session, program)
        redirector.links.refresh()
        with served.connect() as conn:
            conn.sendall(get(link.code, "X-Forwarded-For: 203.0.113.7"))
            read_answers(conn, 1)
        redirector.writer.flush()
        ip_key = hmac.new(SECRET.encode(), b"ip-hash", hashlib.sha256).digest()
        [click] = clicks(program, link.id)
        assert click.ip_hash == hmac.new(ip_key, b"203.0.113.7", hashlib.sha256).hexdigest()

    def test_request_parameters_never_change_the_destination(self, served, redirector, ops_session, program):
        link = issue(ops_session, program)
        redirector.links.refresh()
        with served.connect() as conn:
            conn.sendall(get(f"{link.code}?url=https://evil.example.net&next=//evil.example.net"))
            [(status, headers, _)] = read_answers(conn, 1)
        assert status == 302 and urlsplit(headers["location"]).netloc == "shop.example.com"


class TestHandOver:
    def test_other_requests_on_the_connection_reach_the_framework(self, served, redirector, ops_session, program):
        link = issue(ops_session, program)
        redirector.links.refresh()
        with served.connect() as conn:
            request = get(link.code) + b"GET /api/v1/brands HTTP/1.1\r\nHost: x\r\n\r\n" + get(link.code)
            conn.sendall(request)
            answers = read_answers(conn, 3)
        assert [status for status, _, _ in answers] == [302, 418, 302]
        assert answers[0][1]["location"] == answers[2][1]["location"]  # the second redirect by the ASGI path

    def test_unknown_code_is_404(self, served):
        with served.connect() as conn:
            conn.sendall(get("doesnotexist"))
            [(status, _, _)] = read_answers(conn, 1)
        assert status == 404

    def test_a_body_is_never_read_as_the_next_request(self, served, redirector, ops_session, program):
        link = issue(ops_session, program)
        redirector.links.refresh()
        with served.connect() as conn:
            conn.sendall(get(link.code, "Content-Length: 27") + get("smuggled")[:27])
            conn.sendall(get(link.code))
            answers = read_answers(conn, 2)
        assert [status for status, _, _ in answers] == [302, 302]

    def test_posts_and_other_methods_reach_the_framework(self, served, ops_session, program):
        link = issue(ops_session, program)
        with served.connect() as conn:
            conn.sendall(f"POST /r/{link.code} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi".encode())
            [(status, _, body)] = read_answers(conn, 1)
        assert (status, body) == (418, b"framework")

    def test_single_use_link_is_claimed_through_the_database(self, served, redirector, ops_session, program):
        link = issue(ops_session, program, is_single_use=True)
        redirector.links.refresh()
        with served.connect() as conn:
            conn.sendall(get(link.code))
            [(_, first, _)] = read_answers(conn, 1)
        with served.connect() as conn:
            conn.sendall(get(link.code))
            [(_, second, _)] = read_answers(conn, 1)
        assert "clid=" in first["location"] and second["location"] == FALLBACK


class TestCountryHeaders:
    """A country header is any client's to send: both front doors store it only from a trusted proxy."""

    @pytest.mark.parametrize(("trusted", "stored"), [("127.0.0.1,::1", "DE"), ("192.0.2.1", "")])
    @pytest.mark.parametrize(
        "header", ["CF-IPCountry", "X-Country-Code", "X-AppEngine-Country", "CloudFront-Viewer-Country"]
    )
    def test_both_front_doors_store_it_from_a_trusted_proxy_only(
        self, redirector, ops_session, program, trusted, stored, header
    ):
        link = issue(ops_session, program)
        redirector.links.refresh()
        server = Served(redirector, trusted=trusted)
        try:
            with server.connect() as conn:
                conn.sendall(get(link.code, "User-Agent: fast", f"{header}: de"))
                [(fast, _, _)] = read_answers(conn, 1)
            with server.connect() as conn:  # HTTP/1.0 is uvicorn's: the ASGI path answers it
                conn.sendall(f"GET /r/{link.code} HTTP/1.0\r\nUser-Agent: asgi\r\n{header}: de\r\n\r\n".encode())
                [(handed_over, _, _)] = read_answers(conn, 1)
        finally:
            server.stop()
        assert fast == handed_over == 302
        redirector.writer.flush()
        assert [(c.user_agent, c.country) for c in clicks(program, link.id)] == [("fast", stored), ("asgi", stored)]

    def test_the_asgi_path_keeps_it_behind_a_trusted_proxy_that_names_the_client(
        self, served, redirector, ops_session, program
    ):
        link = issue(ops_session, program)
        redirector.links.refresh()
        with served.connect() as conn:  # uvicorn's ProxyHeadersMiddleware puts 203.0.113.7 in the scope
            request = f"GET /r/{link.code} HTTP/1.0\r\nX-Forwarded-For: 203.0.113.7\r\nCF-IPCountry: nl\r\n\r\n"
            conn.sendall(request.encode())
            [(status, _, _)] = read_answers(conn, 1)
        assert status == 302
        redirector.writer.flush()
        ip_key = hmac.new(SECRET.encode(), b"ip-hash", hashlib.sha256).digest()
        [click] = clicks(program, link.id)
        assert click.country == "NL"
        assert click.ip_hash == hmac.new(ip_key, b"203.0.113.7", hashlib.sha256).hexdigest()

    def test_a_forged_header_with_a_forged_forwarded_for_is_not_stored(self, redirector, ops_session, program):
        link = issue(ops_session, program)
        redirector.links.refresh()
        server = Served(redirector, trusted="192.0.2.1")
        try:
            for version in ("1.1", "1.0"):
                with server.connect() as conn:
                    request = get(link.code, "X-Forwarded-For: 192.0.2.1", "CF-IPCountry: us")
                    conn.sendall(request.replace(b"HTTP/1.1", f"HTTP/{version}".encode(), 1))
                    read_answers(conn, 1)
        finally:
            server.stop()
        redirector.writer.flush()
        assert [c.country for c in clicks(program, link.id)] == ["", ""]


class TestMalformedRequests:
    """Requests uvicorn's parser refuses or reads differently are never answered by the fast path."""

    def test_a_request_target_with_a_space_or_control_byte_is_uvicorns(self, served, redirector, ops_session, program):
        link = issue(ops_session, program)
        redirector.links.refresh()
        for target in (f"/r/{link.code}?a HTTP/1.0 x", *(f"/r/{link.code}?a{c}b" for c in "\x01\x7f\xff")):
            with served.connect() as conn:
                conn.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode("latin-1"))
                answers = read_answers(conn, 1)
            assert [status for status, _, _ in answers] in ([], [400]), target
        redirector.writer.flush()
        assert clicks(program, link.id) == []

    def test_a_control_byte_in_a_header_value_is_uvicorns(self, served, redirector, ops_session, program):
        link = issue(ops_session, program)
        redirector.links.refresh()
        for value in ("a\x01b", "a\x7fb", "a\x0bb"):
            with served.connect() as conn:
                conn.sendall(get(link.code, f"User-Agent: {value}"))
                answers = read_answers(conn, 1)
            assert [status for status, _, _ in answers] in ([], [400]), value
        redirector.writer.flush()
        assert clicks(program, link.id) == []

    def test_a_head_ended_by_bare_line_feeds_is_answered(self, served, redirector, ops_session, program):
        link = issue(ops_session, program)
        redirector.links.refresh()
        with served.connect() as conn:
            conn.settimeout(3)  # under uvicorn's 5 s keep-alive timeout, which would close it unanswered
            conn.sendall(f"GET /r/{link.code} HTTP/1.1\nHost: x\n\n".encode())
            answers = read_answers(conn, 1)
        assert len(answers) == 1

    def test_any_connection_close_header_closes(self, served, redirector, ops_session, program):
        link = issue(ops_session, program)
        redirector.links.refresh()
        with served.connect() as conn:
            conn.settimeout(3)
            conn.sendall(get(link.code, "Connection: keep-alive", "Connection: close"))
            [(status, headers, _)] = read_answers(conn, 1)
            assert (status, headers.get("connection")) == (302, "close")
            assert conn.recv(1) == b""


class _Transport:
    """Just what the protocols use of a transport; writes are collected."""

    def __init__(self) -> None:
        self.protocol: Any = None
        self.written: list[bytes] = []
        self.reading, self.closed = True, False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class TestFlowControl:
    def test_uvicorn_takes_over_a_connection_whose_client_reads_nothing_still_paused(self):
        config = uvicorn.Config(_framework, lifespan="off", log_level="warning", access_log=False)
        config.load()
        config._clearline_hot_path = (object(), None, None)  # a redirector (no postback intake): the fast path is on
        loop = asyncio.new_event_loop()
        try:
            fast = RedirectProtocol(config, ServerState(), {}, _loop=loop)
            transport = _Transport()
            fast.connection_made(transport)
            fast.pause_writing()  # the transport's buffer is over its limit: the client reads none of its answers
            fast.data_received(b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
            assert transport.protocol is not fast and transport.reading
            loop.run_until_complete(asyncio.sleep(0.05))
            assert transport.written == []  # the transport calls no pause_writing again: uvicorn must know
            transport.protocol.resume_writing()
            loop.run_until_complete(asyncio.sleep(0.05))
            assert b"".join(transport.written).startswith(b"HTTP/1.1 418 ")
        finally:
            loop.close()


class TestShutdown:
    def test_graceful_stop_closes_idle_connections_and_keeps_every_click(self, redirector, ops_session, program):
        link = issue(ops_session, program)
        redirector.links.refresh()
        redirector.writer.stop()  # nothing flushes on its own: only the shutdown can save them
        before = len(clicks(program, link.id))
        server = Served(redirector)
        conn = server.connect()
        for i in range(300):
            conn.sendall(get(link.code, f"User-Agent: agent {i % 7}"))
            assert read_answers(conn, 1)[0][0] == 302
        assert redirector.writer.pending == 300
        started = time.time()
        server.stop()  # the keep-alive connection is still open: the protocol closes it
        assert time.time() - started < 5
        assert conn.recv(1) == b""
        conn.close()
        redirector.stop()
        with Session(program.engine) as session:
            stored = session.scalar(select(func.count()).select_from(Click).where(Click.link_id == link.id))
        assert stored - before == 300

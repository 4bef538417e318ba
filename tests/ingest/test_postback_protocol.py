"""Signed postbacks answered by `clearline serve`'s HTTP protocol over real sockets, and the same request
answered through uvicorn and FastAPI giving the same answer."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from clearline.ingest import protocol as postbacks
from clearline.link.redirect import RedirectMiddleware
from clearline.models import InboxEvent
from tests.committed import session_on
from tests.ingest.conftest import order_body, signed_headers
from tests.ingest.test_fastpath import brand, committed_url  # noqa: F401 - fixtures
from tests.link.test_protocol import Served, read_answers


def serve() -> Served:
    """The application as `clearline serve` runs it (lifespan on), on a free loopback port."""
    from clearline.app import create_app

    app = create_app()
    served = Served(app.state.redirector, RedirectMiddleware(app, app.state.redirector), lifespan="on")
    served.intake = app.state.postbacks  # type: ignore[attr-defined]
    return served


@pytest.fixture
def served(brand) -> Iterator[Served]:  # noqa: F811
    server = serve()
    yield server
    server.stop()


def request(slug: str, body: bytes, *, query: str = "", extra: tuple[str, ...] = (), **signing: Any) -> bytes:
    headers = signed_headers(body, **signing)
    lines = [
        f"POST /api/v1/postbacks/{slug}/orders{query} HTTP/1.1",
        "Host: shop.example.com",
        *(f"{name}: {value}" for name, value in headers.items()),
        f"Content-Length: {len(body)}",
        *extra,
        "",
        "",
    ]
    return "\r\n".join(lines).encode() + body


def ask(served: Served, data: bytes, count: int = 1) -> list[tuple[int, dict[str, str], Any]]:
    with served.connect() as conn:
        conn.sendall(data)
        return [(status, headers, json.loads(body)) for status, headers, body in read_answers(conn, count)]


def inbox(url: str) -> list[str]:
    with session_on(url) as session:
        return list(session.scalars(select(InboxEvent.external_id).order_by(InboxEvent.id)))


class TestAnswered:
    def test_a_signed_order_is_stored_before_its_200(self, served, brand, monkeypatch):  # noqa: F811
        begun, begin = [], served.intake.begin
        monkeypatch.setattr(served.intake, "begin", lambda slug, *rest: begun.append(slug) or begin(slug, *rest))
        [(status, headers, answer)] = ask(served, request(brand.slug, order_body("P-1")))
        assert (status, answer) == (200, {"status": "accepted", "order_id": "P-1", "duplicate": False})
        assert headers["content-type"] == "application/json"
        assert inbox(brand.url) == ["P-1"]
        assert begun == [brand.slug]  # answered by the protocol, not by uvicorn and the framework
        with session_on(brand.url) as session:  # the driver-level insert stores what the ORM reads back
            received = session.scalar(select(InboxEvent.received_at))
        assert received is not None and abs(received.timestamp() - time.time()) < 30
        ask(served, request(brand.slug, order_body("P-1b"), query="?x=1"))
        assert begun == [brand.slug] and inbox(brand.url) == ["P-1", "P-1b"]

    @pytest.mark.parametrize(
        "change",
        [
            pytest.param({"secret": "whsec_" + "A" * 32}, id="wrong secret"),
            pytest.param({"at": time.time() - 3600}, id="stale timestamp"),
        ],
    )
    def test_refusals_are_the_frameworks_answers_byte_for_byte(self, served, brand, change):  # noqa: F811
        body = order_body("P-2")
        fast = ask(served, request(brand.slug, body, **change))
        # A query string is not the protocol's: uvicorn and PostbackMiddleware answer the same request.
        slow = ask(served, request(brand.slug, body, query="?via=uvicorn", **change))
        assert fast[0][0] == 401
        assert (fast[0][0], fast[0][2]) == (slow[0][0], slow[0][2])
        assert inbox(brand.url) == []

    def test_a_bad_field_is_a_422_naming_it_as_the_framework_does(self, served, brand):  # noqa: F811
        body = order_body("P-3", currency="usd!")
        fast, slow = ask(served, request(brand.slug, body)), ask(served, request(brand.slug, body, query="?x=1"))
        assert fast[0][0] == 422 and any("currency" in e["loc"] for e in fast[0][2]["errors"])
        assert fast[0][2] == slow[0][2]
        assert inbox(brand.url) == []

    def test_an_unknown_brand_is_refused_like_a_bad_signature(self, served, brand):  # noqa: F811
        [(status, _, answer)] = ask(served, request("no-such-brand", order_body("P-4")))
        assert status == 401 and answer["error"] == "unauthenticated"

    def test_a_resend_is_a_duplicate_and_a_changed_body_a_409(self, served, brand):  # noqa: F811
        body = order_body("P-5")
        changed = body.replace(b'"quantity": 2', b'"quantity": 3')
        assert changed != body
        answers = ask(
            served, request(brand.slug, body) + request(brand.slug, body) + request(brand.slug, changed), count=3
        )
        assert [(s, a.get("duplicate")) for s, _, a in answers] == [(200, False), (200, True), (409, None)]
        assert inbox(brand.url) == ["P-5"]


class TestConnection:
    def test_pipelined_requests_are_answered_in_order(self, served, brand):  # noqa: F811
        data = (
            request(brand.slug, order_body("Q-1"))
            + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"  # uvicorn's, after the postback's answer
        )
        with served.connect() as conn:
            conn.sendall(data)
            conn.sendall(request(brand.slug, order_body("Q-2")))  # now uvicorn's connection: still stored
            answers = read_answers(conn, 3)
        assert [status for status, _, _ in answers] == [200, 200, 200]
        assert json.loads(answers[0][2])["order_id"] == "Q-1"
        assert json.loads(answers[1][2])["status"] == "ok"
        assert json.loads(answers[2][2])["order_id"] == "Q-2"
        assert inbox(brand.url) == ["Q-1", "Q-2"]

    def test_a_body_arriving_in_pieces_is_read_whole(self, served, brand):  # noqa: F811
        data = request(brand.slug, order_body("Q-3"))
        with served.connect() as conn:
            for at in range(0, len(data), 97):
                conn.sendall(data[at : at + 97])
                time.sleep(0.002)
            [(status, _, body)] = read_answers(conn, 1)
        assert status == 200 and json.loads(body)["order_id"] == "Q-3"
        assert inbox(brand.url) == ["Q-3"]

    def test_connection_close_is_honoured_after_the_answer(self, served, brand):  # noqa: F811
        with served.connect() as conn:
            conn.sendall(request(brand.slug, order_body("Q-4"), extra=("Connection: close",)))
            [(status, headers, _)] = read_answers(conn, 1)
            assert conn.recv(1) == b""
        assert status == 200 and headers["connection"] == "close"

    def test_a_chunked_body_goes_to_uvicorn_and_is_stored_all_the_same(self, served, brand):  # noqa: F811
        body = order_body("Q-5")
        head = (
            request(brand.slug, body)
            .split(b"\r\n\r\n")[0]
            .replace(f"Content-Length: {len(body)}".encode(), b"Transfer-Encoding: chunked")
        )
        data = head + b"\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
        [(status, _, answer)] = ask(served, data)
        assert (status, answer["order_id"]) == (200, "Q-5")
        assert inbox(brand.url) == ["Q-5"]

    def test_a_graceful_stop_answers_a_postback_waiting_for_its_commit(self, brand):  # noqa: F811
        server = serve()
        writer = server.intake.writer
        release = threading.Event()
        original = writer._write

        def slow_write(batch: Any) -> None:
            release.wait(10)
            original(batch)

        writer._write = slow_write  # type: ignore[method-assign]
        conn = server.connect()
        conn.sendall(request(brand.slug, order_body("Q-6")))
        time.sleep(0.2)
        stopping = threading.Thread(target=server.stop)
        stopping.start()
        time.sleep(0.3)
        release.set()
        [(status, _, body)] = read_answers(conn, 1)
        stopping.join(20)
        conn.close()
        assert (status, json.loads(body)["order_id"]) == (200, "Q-6")
        assert inbox(brand.url) == ["Q-6"]


class TestRead:
    HEAD = b"POST /api/v1/postbacks/shop/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"

    def parse(self, data: bytes) -> Any:
        return postbacks.read(data, 0, data.index(b"\r\n\r\n"))

    def test_a_plain_postback_is_read_with_its_signature_headers(self):
        data = self.HEAD + b"webhook-id: m1\r\nWebhook-Signature:  v1,abc \r\n\r\n{}GET"
        found = self.parse(data)
        assert isinstance(found, postbacks.Postback)
        assert (found.slug, found.kind, found.body, found.close) == ("shop", "order", b"{}", False)
        assert found.headers == {"webhook-id": "m1", "webhook-signature": "v1,abc"}
        assert found.end == data.index(b"GET")  # where the next request starts

    def test_a_body_not_all_in_yet_asks_for_the_rest(self):
        data = self.HEAD + b"\r\n{"
        assert self.parse(data) == len(data) + 1

    @pytest.mark.parametrize(
        "head",
        [
            b"POST /api/v1/postbacks/shop/orders?x=1 HTTP/1.1\r\nContent-Length: 2\r\n",
            b"POST /api/v1/postbacks/sh%6Fp/orders HTTP/1.1\r\nContent-Length: 2\r\n",
            b"POST /api/v1/postbacks/shop/payouts HTTP/1.1\r\nContent-Length: 2\r\n",
            b"POST /api/v1/postbacks/shop/orders HTTP/1.0\r\nContent-Length: 2\r\n",
            b"POST /api/v1/postbacks/shop/orders HTTP/1.1\r\nTransfer-Encoding: chunked\r\n",
            b"POST /api/v1/postbacks/shop/orders HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n",
            b"POST /api/v1/postbacks/shop/orders HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n",
            b"POST /api/v1/postbacks/shop/orders HTTP/1.1\r\nContent-Length: +2\r\n",
            b"POST /api/v1/postbacks/shop/orders HTTP/1.1\r\nContent-Length: 9999999\r\n",
            b"POST /api/v1/postbacks/shop/orders HTTP/1.1\r\nContent-Length: 2\r\nwebhook-id: a\r\nwebhook-id: b\r\n",
            b"POST /api/v1/postbacks/shop/orders HTTP/1.1\r\nContent-Length: 2\r\nX-Odd: a\x01b\r\n",
            b"POST /api/v1/postbacks/shop/orders HTTP/1.1\r\nContent-Length: 2\r\nBad Name: x\r\n",
            b"POST /api/v1/postbacks/shop/orders HTTP/1.1\r\n",  # no length: uvicorn decides
        ],
        ids=[
            "query",
            "escape",
            "other path",
            "http/1.0",
            "chunked",
            "expect",
            "two lengths",
            "signed length",
            "over the limit",
            "two ids",
            "control byte",
            "space in name",
            "no length",
        ],
    )
    def test_anything_not_plainly_a_postback_is_uvicorns(self, head):
        assert self.parse(head + b"\r\n{}") is None

    def test_the_answer_carries_the_servers_headers_and_its_length(self):
        answer = postbacks.response(409, {"error": "conflict"}, b"server: uvicorn\r\n", close=True)
        assert answer == (
            b"HTTP/1.1 409 Conflict\r\nserver: uvicorn\r\ncontent-type: application/json\r\n"
            b'content-length: 20\r\nconnection: close\r\n\r\n{"error":"conflict"}'
        )

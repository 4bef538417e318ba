"""The postback fast path as served: the group-commit writer and the background drainer on a database they
commit to (the rolled-back `db` session of the other tests cannot see their own connections' writes)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from clearline.ingest import fastpath, inbox_writer, signatures
from clearline.ingest.fastpath import PostbackIntake, route
from clearline.kit.db import engine_for
from clearline.models import CommissionLine, InboxEvent, Order
from tests import factories
from tests.committed import committed_database, pointed_at, session_on
from tests.ingest.conftest import POSTBACK_SECRET, order_body, signed_headers


@pytest.fixture(scope="module")
def committed_url(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[str]:
    with committed_database(tmp_path_factory.mktemp("fastpath"), "fastpath") as url:
        yield url


@dataclass
class Brand:
    url: str
    brand_id: int
    slug: str


@pytest.fixture
def brand(committed_url: str, database_url: str) -> Iterator[Brand]:
    """A committed brand with a catalog and a postback secret; settings point at its database."""
    with pointed_at(committed_url, database_url):
        with session_on(committed_url) as session:  # noqa: SIM117 - closed before the test runs
            made = factories.brand(session)
            factories.skus(session, made.id)
            signatures.rotate(session, factories.SYSTEM, brand_id=made.id, kind="postback", secret=POSTBACK_SECRET)
            session.commit()
            made_brand = Brand(committed_url, made.id, made.slug)
        yield made_brand


@pytest.fixture
def intake(brand: Brand) -> Iterator[PostbackIntake]:
    """The intake as the served app runs it, except that its drainer is driven by the test."""
    served = PostbackIntake(engine_for(brand.url), drain=False)
    served.start()
    try:
        yield served
    finally:
        served.stop()


def _post(intake: PostbackIntake, brand: Brand, body: bytes, kind: str = "orders", **signing: Any) -> Any:
    headers = signed_headers(body, **signing)
    return intake.handle(brand.slug, fastpath.KINDS[kind], headers, body)


def _inbox(url: str) -> list[InboxEvent]:
    with session_on(url) as session:
        return list(session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def _refund(refund_id: str = "r-1", order_id: str = "nope") -> bytes:
    return json.dumps(
        {
            "refund_id": refund_id,
            "order_id": order_id,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "lines": [{"sku": "SKU-A1", "quantity": 1, "amount": "10.00"}],
        }
    ).encode()


class TestServedApp:
    def test_a_posted_event_is_in_the_inbox_when_its_200_arrives(self, brand):
        from clearline.app import create_app

        body = order_body("A-1")
        with TestClient(create_app()) as client:
            answer = client.post(f"/api/v1/postbacks/{brand.slug}/orders", content=body, headers=signed_headers(body))
            stored = _inbox(brand.url)

        assert answer.status_code == 200, answer.text
        assert answer.json() == {"status": "accepted", "order_id": "A-1", "duplicate": False}
        assert [(e.external_id, e.source, e.kind, e.delivery_id) for e in stored] == [
            ("A-1", "postback", "order", "msg_1")
        ]

    def test_the_background_drainer_processes_what_was_stored(self, brand):
        from clearline.app import create_app

        body = order_body("A-2")
        with TestClient(create_app()) as client:
            assert client.post(
                f"/api/v1/postbacks/{brand.slug}/orders", content=body, headers=signed_headers(body)
            ).is_success
            deadline = time.monotonic() + 20
            while _inbox(brand.url)[0].handled_at is None and time.monotonic() < deadline:
                time.sleep(0.05)

        with session_on(brand.url) as session:
            assert session.scalar(select(Order.external_id)) == "A-2"
        assert _inbox(brand.url)[0].handled_at is not None


class TestGroupCommit:
    def test_the_answer_does_not_wait_for_processing(self, intake, brand):
        answer = asyncio.run(_post(intake, brand, order_body("B-1")))

        assert answer == (200, {"status": "accepted", "order_id": "B-1", "duplicate": False})
        [event] = _inbox(brand.url)
        assert (event.handled_at, event.error) == (None, "")

    def test_many_concurrent_posts_of_one_order_store_it_once(self, intake, brand):
        body = order_body("C-1")

        async def burst() -> list[Any]:
            return await asyncio.gather(*(_post(intake, brand, body, msg_id=f"msg_{n}") for n in range(40)))

        answers = asyncio.run(burst())

        assert {status for status, _ in answers} == {200}
        assert sorted(payload["duplicate"] for _, payload in answers) == [False] + [True] * 39
        assert [e.external_id for e in _inbox(brand.url)] == ["C-1"]

    def test_concurrent_posts_of_one_id_with_other_bodies_store_one_and_refuse_the_rest(self, intake, brand):
        bodies = [order_body("C-2", shipping=f"{n}.00") for n in range(10)]

        async def burst() -> list[Any]:
            return await asyncio.gather(*(_post(intake, brand, b, msg_id=f"msg_{n}") for n, b in enumerate(bodies)))

        answers = asyncio.run(burst())

        assert sorted(status for status, _ in answers) == [200] + [409] * 9
        [event] = _inbox(brand.url)
        winner = next(n for n, (status, _) in enumerate(answers) if status == 200)
        assert json.loads(event.body)["shipping"] == f"{winner}.00"

    def test_a_duplicate_in_a_later_batch_is_answered_as_one_and_a_changed_body_is_409(self, intake, brand):
        body = order_body("C-3", shipping="1.00")
        first = asyncio.run(_post(intake, brand, body))
        again = asyncio.run(_post(intake, brand, body, msg_id="msg_2"))
        changed = asyncio.run(_post(intake, brand, body.replace(b'"1.00"', b'"2.00"'), msg_id="msg_3"))

        assert (first[1]["duplicate"], again[1]["duplicate"]) == (False, True)
        assert changed[0] == 409 and changed[1]["error"] == "conflict"
        assert len(_inbox(brand.url)) == 1

    def test_many_distinct_concurrent_posts_are_each_stored(self, intake, brand):
        async def burst() -> list[Any]:
            return await asyncio.gather(*(_post(intake, brand, order_body(f"D-{n}")) for n in range(200)))

        answers = asyncio.run(burst())

        assert [status for status, _ in answers] == [200] * 200
        assert len(_inbox(brand.url)) == 200
        assert intake.writer.batches < 200  # they shared commits

    def test_a_failed_write_answers_500_and_stores_nothing(self, intake, brand, monkeypatch):
        def disk_full(conn, rows):  # type: ignore[no-untyped-def]
            conn.execute(inbox_writer.INBOX.insert().values(rows))  # half-written: must be rolled back
            raise RuntimeError("disk full")

        monkeypatch.setattr(inbox_writer, "write_batch", disk_full)

        status, payload = asyncio.run(_post(intake, brand, order_body("E-1")))

        assert status == 500 and payload["error"] == "internal"
        assert _inbox(brand.url) == []


class TestRefusals:
    def test_a_bad_signature_is_401_and_nothing_is_stored(self, intake, brand):
        status, payload = asyncio.run(_post(intake, brand, order_body(), secret="whsec_" + "QUJD" * 8))

        assert (status, payload["error"]) == (401, "unauthenticated")
        assert _inbox(brand.url) == []

    def test_a_stale_timestamp_is_401(self, intake, brand):
        status, _ = asyncio.run(_post(intake, brand, order_body(), at=time.time() - 301))

        assert status == 401
        assert _inbox(brand.url) == []

    def test_an_unknown_brand_answers_like_a_bad_signature(self, intake, brand):
        body = order_body()
        unknown = asyncio.run(intake.handle("no-such-brand", "order", signed_headers(body), body))
        forged = asyncio.run(_post(intake, brand, body, secret="whsec_" + "QUJD" * 8))

        assert unknown == forged

    def test_each_bad_field_is_named_in_a_422(self, intake, brand):
        body = order_body(currency="XXX", lines=[{"sku": "SKU-A1", "quantity": 0, "unit_price": 1}])

        status, payload = asyncio.run(_post(intake, brand, body))

        assert (status, payload["error"]) == (422, "validation_failed")
        assert {".".join(map(str, e["loc"])) for e in payload["errors"]} == {
            "currency",
            "lines.0.quantity",
            "lines.0.unit_price",
        }
        assert _inbox(brand.url) == []

    def test_an_id_with_a_nul_character_is_a_422_naming_it_not_a_failed_store(self, intake, brand):
        # PostgreSQL text cannot hold NUL: stored as the inbox's key it failed the insert (a 500).
        body = order_body(order_id="A\u0000B")

        status, payload = asyncio.run(_post(intake, brand, body))

        assert status == 422
        assert [(e["loc"], e["msg"]) for e in payload["errors"]] == [
            (["order_id"], "Value error, must not contain a NUL character")
        ]
        assert _inbox(brand.url) == []

    def test_a_secret_rotated_after_the_keys_were_loaded_works_at_once(self, intake, brand, monkeypatch):
        intake.keys.stop()  # no poll in between: the postback itself must find the new secret
        intake.keys.load()  # loaded just before the rotation: the postback waits for the next load allowed
        with session_on(brand.url) as session:
            new, _ = signatures.rotate(session, factories.SYSTEM, brand_id=brand.brand_id, kind="postback")
            session.commit()
        loads = []
        real = fastpath.read_keys
        monkeypatch.setattr(fastpath, "read_keys", lambda conn: loads.append(time.monotonic()) or real(conn))
        started = time.monotonic()

        old = asyncio.run(_post(intake, brand, order_body("F-1"), secret=POSTBACK_SECRET))
        rotated = asyncio.run(_post(intake, brand, order_body("F-2"), secret=new, msg_id="msg_2"))

        assert (old[0], rotated[0]) == (200, 200)
        assert len(loads) == 1 and loads[0] - started < intake.keys.min_refresh + 0.5

    def test_a_burst_of_unknown_keys_reloads_the_keys_once_not_once_per_request(self, intake, brand, monkeypatch):
        loads = []
        real = fastpath.read_keys

        def slow_read_keys(conn):  # type: ignore[no-untyped-def]
            loads.append(1)
            time.sleep(0.1)
            return real(conn)

        monkeypatch.setattr(fastpath, "read_keys", slow_read_keys)
        intake.keys.loaded_at = float("-inf")

        async def burst() -> list[Any]:
            forged = [_post(intake, brand, order_body(f"F-{n}"), secret="whsec_" + "QUJD" * 8) for n in range(20)]
            return await asyncio.gather(*forged)

        answers = asyncio.run(burst())

        assert [status for status, _ in answers] == [401] * 20
        assert len(loads) <= 3  # the burst's one or two, and perhaps the poller's

    def test_an_old_secret_is_refused_once_its_grace_period_is_over(self, intake, brand, monkeypatch):
        with session_on(brand.url) as session:
            signatures.rotate(session, factories.SYSTEM, brand_id=brand.brand_id, kind="postback", grace_hours=1)
            session.commit()
        intake.keys.load()
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1, minutes=1)
        monkeypatch.setattr(signatures, "utcnow", lambda: later)

        status, _ = asyncio.run(_post(intake, brand, order_body("F-3"), at=later.timestamp()))

        assert status == 401


class TestDrainer:
    def test_stored_events_are_processed_and_a_failing_one_stays_with_its_error(self, intake, brand):
        body = order_body("G-1", lines=[{"sku": "SKU-A1", "quantity": 1, "unit_price": "49.00"}])
        asyncio.run(_post(intake, brand, _refund("r-9", order_id="G-404"), kind="refunds", msg_id="msg_r"))
        asyncio.run(_post(intake, brand, body, msg_id="msg_o"))

        tried = intake.drainer.run_batch()
        again = intake.drainer.run_batch()

        refund, order = _inbox(brand.url)
        assert (tried, again) == (2, 0)  # the failed one is not retried in a loop
        assert order.handled_at is not None and order.error == ""
        assert refund.handled_at is None and "not known yet" in refund.error
        with session_on(brand.url) as session:
            assert session.scalar(select(func.count()).select_from(Order)) == 1
            assert session.scalar(select(func.count()).select_from(CommissionLine)) == 0  # no creator: none

    def test_resending_a_failed_event_queues_it_for_another_try(self, intake, brand):
        refund = _refund("r-8", order_id="H-1")
        asyncio.run(_post(intake, brand, refund, kind="refunds", msg_id="msg_1"))
        intake.drainer.run_batch()
        asyncio.run(_post(intake, brand, order_body("H-1"), msg_id="msg_2"))

        resent = asyncio.run(_post(intake, brand, refund, kind="refunds", msg_id="msg_3"))
        intake.drainer.run_batch()

        assert resent[1]["duplicate"] is True
        assert all(e.handled_at is not None and e.error == "" for e in _inbox(brand.url))

    def test_shutdown_writes_what_was_queued_and_finishes_the_drain(self, brand):
        served = PostbackIntake(engine_for(brand.url))
        served.start()

        async def post_then_stop() -> Any:
            answers = await asyncio.gather(*(_post(served, brand, order_body(f"K-{n}")) for n in range(20)))
            served.stop()
            return answers

        answers = asyncio.run(post_then_stop())

        assert [status for status, _ in answers] == [200] * 20
        assert len(_inbox(brand.url)) == 20

    def test_a_post_racing_the_shutdown_is_stored_or_refused_never_left_waiting(self, brand):
        served = PostbackIntake(engine_for(brand.url), drain=False)
        stopping: list[threading.Thread] = []

        class ShutdownFirst(queue.SimpleQueue):  # type: ignore[type-arg]
            def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
                if item is not inbox_writer._STOP and not stopping:
                    # The shutdown runs between the request's "not stopped" check and its put.
                    stopping.append(threading.Thread(target=served.stop))
                    stopping[0].start()
                    stopping[0].join(timeout=1)
                super().put(item)

        served.writer._queue = ShutdownFirst()
        served.start()

        async def post() -> Any:
            return await asyncio.wait_for(_post(served, brand, order_body("S-1")), timeout=5)

        status, _ = asyncio.run(post())
        stopping[0].join(timeout=10)

        assert status in (200, 500)
        assert len(_inbox(brand.url)) == (1 if status == 200 else 0)


class TestRoute:
    @pytest.mark.parametrize(
        ("path", "found"),
        [
            ("/api/v1/postbacks/acme/orders", ("acme", "order")),
            ("/api/v1/postbacks/acme/refunds", ("acme", "refund")),
            ("/api/v1/postbacks/acme/orders/1", None),
            ("/api/v1/postbacks//orders", None),
            ("/api/v1/postbacks/acme/returns", None),
            ("/api/v1/brands", None),
        ],
    )
    def test_only_the_two_postback_paths_are_taken(self, path, found):
        assert route(path) == found

    def test_a_body_over_the_limit_is_413_before_anything_else(self, client, shop, db):
        body = b" " * (fastpath.MAX_BODY + 1)

        answer = client.post(f"/api/v1/postbacks/{shop.slug}/orders", content=body, headers=signed_headers(body))

        assert answer.status_code == 413
        assert db.scalar(select(func.count()).select_from(InboxEvent)) == 0


class TestSameContent:
    """The hot path keeps the raw text's digest; a repeated id is compared by its JSON content."""

    def test_a_re_serialised_resend_is_a_duplicate_alone_and_two_at_once(self, intake, brand):
        body = order_body("S-1")
        resent = json.dumps(json.loads(body), indent=2, sort_keys=True).encode()  # other spacing, other key order
        assert resent != body

        first = asyncio.run(_post(intake, brand, body))
        later = asyncio.run(_post(intake, brand, resent, msg_id="msg_2"))

        async def together() -> list[Any]:
            return list(await asyncio.gather(*(_post(intake, brand, b, msg_id="m") for b in (body, resent))))

        same_batch = asyncio.run(together())

        assert first[1]["duplicate"] is False
        assert [later[0], later[1]["duplicate"]] == [200, True]
        assert [(status, answer["duplicate"]) for status, answer in same_batch] == [(200, True), (200, True)]
        assert len(_inbox(brand.url)) == 1

    def test_a_body_stored_with_the_canonical_digest_matches_its_resend(self, brand):
        from clearline.ingest import service

        text = '{"order_id": "ü-1",  "lines": [{"unit_price": "1.00", "sku": "Ω"}], "tax": 1e2, "a": null}'
        row = {"body": json.dumps(json.loads(text)), "body_sha256": "raw digest of another spelling"}

        assert inbox_writer.same_content(row, service.body_digest(text), text)
        assert not inbox_writer.same_content(row, service.body_digest(text), text.replace("1.00", "1.01"))

"""Storing a checked order file in the inbox in bulk: new orders stored once, known ones answered as
duplicates (processed or still waiting) or conflicts, whichever way the store goes (COPY on PostgreSQL)."""

from __future__ import annotations

import hashlib
import json

import polars as pl
from sqlalchemy import func, select, update

from clearline.ingest import csv_store
from clearline.models import InboxEvent


def _orders(ids: list[str], *, price: str = "9.50") -> tuple[pl.DataFrame, list[str]]:
    bodies = [
        json.dumps({"order_id": i, "lines": [{"sku": "S", "unit_price": price}]}, sort_keys=True, separators=(",", ":"))
        for i in ids
    ]
    return pl.DataFrame({"order_id": ids, "body": bodies}), [hashlib.sha256(b.encode()).hexdigest() for b in bodies]


def _store(db, shop, ids: list[str], **kw):  # type: ignore[no-untyped-def]
    orders, digests = _orders(ids, **kw)
    return csv_store.store_orders(db, brand_id=shop.brand_id, orders=orders, digests=digests, delivery_id="f.csv")


def _events(db, shop) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    rows = db.execute(
        select(InboxEvent.external_id, InboxEvent.body, InboxEvent.body_sha256).where(
            InboxEvent.brand_id == shop.brand_id, InboxEvent.source == "csv"
        )
    )
    return {external_id: (body, digest) for external_id, body, digest in rows}


class TestStoreOrders:
    def test_new_orders_are_stored_raw_with_their_digest(self, db, shop):
        answers = _store(db, shop, ["A", "B"])

        assert answers == [csv_store.Stored(), csv_store.Stored()]
        stored = _events(db, shop)
        assert set(stored) == {"A", "B"}
        body, digest = stored["A"]
        assert json.loads(body)["order_id"] == "A" and digest == hashlib.sha256(body.encode()).hexdigest()
        kinds = db.execute(select(InboxEvent.kind, InboxEvent.delivery_id, InboxEvent.error, InboxEvent.handled_at))
        assert set(kinds) == {("order", "f.csv", "", None)}

    def test_known_orders_are_duplicates_waiting_or_processed_and_other_content_is_a_conflict(self, db, shop):
        _store(db, shop, ["A", "B", "C"])
        db.execute(update(InboxEvent).where(InboxEvent.external_id == "A").values(handled_at=func.now()))
        db.execute(update(InboxEvent).where(InboxEvent.external_id == "C").values(body_sha256="0" * 64))

        answers = _store(db, shop, ["A", "B", "C", "D"])

        assert answers == [
            csv_store.Stored(duplicate=True, handled=True),
            csv_store.Stored(duplicate=True),
            csv_store.Stored(duplicate=True, conflict=True),
            csv_store.Stored(),
        ]
        assert sorted(_events(db, shop)) == ["A", "B", "C", "D"]

    def test_a_known_order_outside_the_sample_looked_up_first_is_still_found(self, db, shop):
        ids = [f"O-{n:04d}" for n in range(300)]
        _store(db, shop, [ids[1]])  # the sample is every 4th id from the first: this one is not in it

        answers = _store(db, shop, ids)

        assert answers[1] == csv_store.Stored(duplicate=True)
        assert [a for n, a in enumerate(answers) if n != 1] == [csv_store.Stored()] * 299
        assert len(_events(db, shop)) == 300

    def test_values_that_copy_would_read_as_escapes_are_stored_as_they_are(self, db, shop):
        ids = ["tab\there", "back\\slash", "line\nbreak"]

        _store(db, shop, ids, price="\\N")

        stored = _events(db, shop)
        assert sorted(stored) == sorted(ids)
        assert json.loads(stored["back\\slash"][0])["lines"][0]["unit_price"] == "\\N"
        assert _store(db, shop, [*ids, "new"], price="\\N") == [csv_store.Stored(duplicate=True)] * 3 + [
            csv_store.Stored()
        ]

    def test_a_file_larger_than_a_slice_is_stored_whole(self, db, shop, monkeypatch):
        monkeypatch.setattr(csv_store, "_SLICE", 3)
        ids = [f"S-{n:02d}" for n in range(10)]
        orders, digests = _orders(ids)

        answers = csv_store.store_orders(db, brand_id=shop.brand_id, orders=orders, delivery_id="f.csv")

        assert answers == [csv_store.Stored()] * 10
        stored = db.execute(
            select(InboxEvent.external_id, InboxEvent.body_sha256)
            .where(InboxEvent.brand_id == shop.brand_id, InboxEvent.source == "csv")
            .order_by(InboxEvent.id)
        )
        expected = list(zip(ids, digests, strict=True))
        rows = list(stored)
        assert sorted(rows) == expected
        if db.get_bind().dialect.name == "postgresql":  # one COPY, slice after slice: ids in the file's order
            assert rows == expected
        assert _store(db, shop, ids) == [csv_store.Stored(duplicate=True)] * 10

"""The inbox without a foreign key to brands: what ingest.integrity reports instead."""

from __future__ import annotations

from sqlalchemy import insert

from clearline.ingest import csv_store, integrity
from clearline.kit.clock import utcnow
from clearline.models import InboxEvent
from tests.ingest.test_csv_store import _orders


class TestInboxIntegrity:
    def test_events_of_existing_brands_are_sound(self, db, shop):
        orders, digests = _orders(["A", "B"])
        csv_store.store_orders(db, brand_id=shop.brand_id, orders=orders, digests=digests)

        assert integrity.orphans(db) == []

    def test_an_event_whose_brand_does_not_exist_is_named(self, db, shop):
        values = {"source": "postback", "kind": "order", "external_id": "X", "delivery_id": "", "body": "{}"}
        values |= {"body_sha256": "0" * 64, "received_at": utcnow(), "error": ""}
        event_id = db.execute(
            insert(InboxEvent).values(brand_id=987654321, **values).returning(InboxEvent.id)
        ).scalar_one()

        assert integrity.orphans(db) == [f"inbox event {event_id}: brand 987654321 does not exist"]

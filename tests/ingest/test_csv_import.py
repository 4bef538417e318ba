"""Bulk order CSV (INTERFACES §5): all or nothing with every bad row named by line and column, or
quarantine: the good orders in, the bad rows out to a rejects file with their reasons."""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging

import pytest
from sqlalchemy import select

from clearline.commission import fx
from clearline.ingest import csv_import
from clearline.kit.errors import ForbiddenError, ValidationFailedError
from clearline.models import Brand, CommissionLine, Order, OrderFile, OrderLine
from tests import factories
from tests.ingest.conftest import counts

HEADER = "order_id,created_at,currency,sku,quantity,unit_price,discount,coupon_code,click_id,customer_id,new_customer\n"


def good_file(coupon: str, *, when: str | None = None) -> str:
    when = when or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return HEADER + (
        f"C-1,{when},USD,SKU-A1,2,49.00,4.00,{coupon},,cust-1,true\n"
        f"C-1,{when},USD,SKU-B1,1,24.00,,{coupon},,cust-1,true\n"
        f"C-2,{when},USD,SKU-C1,3,9.50,,,,cust-2,false\n"
    )


def bad_file(coupon: str) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return HEADER + (
        f"C-1,{now},USD,SKU-A1,1,49.00,,{coupon},,cust-1,true\n"  # line 2: good, but its order is not
        f"C-1,{now},USD,SKU-B1,zero,24.00,,{coupon},,cust-1,true\n"  # line 3: quantity
        f"C-2,{now},USD,SKU-C1,1,abc,,,,cust-2,\n"  # line 4: unit_price
        f"C-3,{now},XXX,SKU-C1,1,9.50,,,,cust-3,\n"  # line 5: currency
        f"C-4,{now},USD,SKU-C1,1,9.50,,,,cust-4,false\n"  # line 6: good
        f",{now},USD,SKU-C1,1,9.50,,,,cust-5,\n"  # line 7: order_id
        "C-5,yesterday,USD,SKU-C1,1,9.50,,,,cust-6,maybe\n"  # line 8: created_at and new_customer
    )


BAD_ROWS = {
    (2, "order_id"),
    (3, "quantity"),
    (4, "unit_price"),
    (5, "currency"),
    (7, "order_id"),
    (8, "created_at"),
    (8, "new_customer"),
}


def _import(db, shop, data: str, *, quarantine: bool = False, actor=None):  # type: ignore[no-untyped-def]
    brand = db.get(Brand, shop.brand_id)
    who = actor or factories.actor(db, ("finance", shop.brand_id))
    return csv_import.import_orders(db, who, brand=brand, data=data, quarantine=quarantine, filename="orders.csv")


def _named(details: list[dict]) -> set[tuple[int, str]]:  # type: ignore[type-arg]
    return {(int(d["loc"][0].removeprefix("line ")), d["loc"][1]) for d in details}


class TestImportOrders:
    def test_a_good_file_imports_each_order_with_its_lines_and_earns_commission(self, db, shop):
        report = _import(db, shop, good_file(shop.coupon_code))

        assert (report.orders, report.duplicates, report.rows, report.rejected) == (2, 0, 3, [])
        order = db.scalar(select(Order).where(Order.brand_id == shop.brand_id, Order.external_id == "C-1"))
        assert order is not None and order.source == "csv"
        assert order.coupon_codes == [shop.coupon_code]
        nets = db.scalars(
            select(OrderLine.net_amount).where(OrderLine.order_id == order.id).order_by(OrderLine.line_no)
        )
        assert list(nets) == [9400, 2400]
        amounts = db.scalars(select(CommissionLine.amount).where(CommissionLine.order_id == order.id))
        assert sorted(amounts) == [400, 1600]

    def test_a_bad_file_names_every_bad_row_by_line_and_column_and_imports_nothing(self, db, shop):
        with pytest.raises(ValidationFailedError) as caught:
            _import(db, shop, bad_file(shop.coupon_code))

        assert _named(caught.value.details) == BAD_ROWS
        assert "nothing imported" in caught.value.message
        assert counts(db, shop.brand_id)["events"] == 0
        assert counts(db, shop.brand_id)["orders"] == 0

    def test_quarantine_imports_the_good_orders_and_rejects_every_row_of_a_bad_order(self, db, shop):
        report = _import(db, shop, bad_file(shop.coupon_code), quarantine=True)

        assert report.orders == 1
        assert {(e.line, e.column) for e in report.rejected} == BAD_ROWS
        sibling = next(e for e in report.rejected if e.line == 2)
        assert sibling.message == "order C-1 not imported: its row(s) on line(s) 3 are bad"
        orders = db.scalars(select(Order.external_id).where(Order.brand_id == shop.brand_id))
        assert list(orders) == ["C-4"]

    def test_the_rejects_file_keeps_each_row_as_it_was_with_all_its_reasons(self, db, shop):
        report = _import(db, shop, bad_file(shop.coupon_code), quarantine=True)

        rows = list(csv.DictReader(io.StringIO(report.rejects_csv())))

        assert [int(r["line"]) for r in rows] == [2, 3, 4, 5, 7, 8]
        by_line = {int(r["line"]): r for r in rows}
        assert by_line[3]["quantity"] == "zero" and by_line[3]["sku"] == "SKU-B1"
        assert by_line[3]["reason"].startswith("quantity: ")
        assert by_line[8]["reason"].count(";") == 1  # created_at and new_customer, one line
        assert "created_at: " in by_line[8]["reason"] and "new_customer: 'maybe'" in by_line[8]["reason"]
        assert list(rows[0])[: len(csv_import.COLUMNS) + 1] == ["line", *csv_import.COLUMNS]

    def test_the_same_file_twice_counts_duplicates_and_changes_nothing(self, db, shop):
        data = good_file(shop.coupon_code)
        _import(db, shop, data)
        before = counts(db, shop.brand_id)

        again = _import(db, shop, data)

        assert (again.orders, again.duplicates) == (0, 2)
        assert counts(db, shop.brand_id) == before

    def test_an_order_imported_before_with_other_content_is_a_line_numbered_error(self, db, shop):
        _import(db, shop, good_file(shop.coupon_code, when="2026-11-20T10:00:00Z"))
        changed = good_file(shop.coupon_code, when="2026-11-20T10:00:00Z").replace("49.00", "39.00")

        with pytest.raises(ValidationFailedError) as caught:
            _import(db, shop, changed)

        assert _named(caught.value.details) == {(2, "order_id"), (3, "order_id")}
        assert "imported before with other content" in caught.value.details[0]["msg"]

    def test_quarantine_sets_a_changed_order_aside_and_imports_the_rest(self, db, shop):
        when = "2026-11-20T10:00:00Z"
        _import(db, shop, good_file(shop.coupon_code, when=when))
        changed = good_file(shop.coupon_code, when=when).replace("49.00", "39.00")
        changed += f"C-9,{when},USD,SKU-C1,1,9.50,,,,cust-9,\n"

        report = _import(db, shop, changed, quarantine=True)

        assert (report.orders, report.duplicates) == (1, 1)
        assert {e.line for e in report.rejected} == {2, 3}

    def test_rows_of_one_order_must_agree_on_the_order_fields(self, db, shop):
        lines = good_file(shop.coupon_code).splitlines()
        lines[2] = lines[2].replace(",USD,", ",EUR,")

        with pytest.raises(ValidationFailedError) as caught:
            _import(db, shop, "\n".join(lines) + "\n")

        assert _named(caught.value.details) == {(2, "order_id"), (3, "currency")}
        assert "differs from the order's first row (line 2)" in str(caught.value.details)

    def test_a_row_with_more_fields_than_the_header_is_named(self, db, shop):
        data = good_file(shop.coupon_code) + "C-3,2026-11-20T10:00:00Z,USD,SKU-C1,1,9.50,,,,c,true,extra\n"

        with pytest.raises(ValidationFailedError) as caught:
            _import(db, shop, data)

        assert _named(caught.value.details) == {(5, "row")}

    def test_a_missing_column_fails_the_whole_file(self, db, shop):
        data = good_file(shop.coupon_code).replace("unit_price,", "price,", 1)

        with pytest.raises(ValidationFailedError) as caught:
            _import(db, shop, data, quarantine=True)

        assert caught.value.details == [{"loc": ["line 1", "unit_price"], "msg": "missing column"}]

    def test_a_file_without_rows_is_refused(self, db, shop):
        with pytest.raises(ValidationFailedError, match="no data rows"):
            _import(db, shop, HEADER)

    def test_an_order_that_cannot_be_processed_yet_is_kept_for_a_replay(self, db, shop):
        data = good_file(shop.coupon_code).replace(",USD,", ",EUR,")

        report = _import(db, shop, data)

        assert (report.orders, report.failed_processing) == (2, 1)  # C-1 earns in USD: it needs a rate
        assert counts(db, shop.brand_id)["events"] == 2
        assert counts(db, shop.brand_id)["orders"] == 1

    def test_only_finance_imports_orders(self, db, shop):
        ops = factories.actor(db, ("social_ops", shop.brand_id))

        with pytest.raises(ForbiddenError):
            _import(db, shop, good_file(shop.coupon_code), actor=ops)


class TestImportInParts:
    """A new file goes into the inbox part by part while the rest is checked (on PostgreSQL; SQLite stores it
    after the check): whatever was sent is rolled back when a later part has a bad row or a known order."""

    @pytest.fixture(autouse=True)
    def _small_parts(self, monkeypatch):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(csv_import, "PART_ROWS", 1)

    def test_a_bad_row_in_a_later_part_names_every_bad_row_and_stores_nothing(self, db, shop):
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        data = good_file(shop.coupon_code) + (
            f"C-3,{now},USD,SKU-C1,zero,9.50,,,,cust-3,\n"  # line 5: quantity
            f"C-4,{now},USD,SKU-C1,1,9.50,,,,cust-4,false\n"
            f"C-5,{now},XXX,SKU-C1,1,9.50,,,,cust-5,\n"  # line 7: currency
        )

        with pytest.raises(ValidationFailedError) as caught:
            _import(db, shop, data)

        assert _named(caught.value.details) == {(5, "quantity"), (7, "currency")}
        assert counts(db, shop.brand_id)["events"] == 0
        assert counts(db, shop.brand_id)["orders"] == 0

    def test_quarantine_stores_every_part_s_good_orders(self, db, shop):
        report = _import(db, shop, bad_file(shop.coupon_code), quarantine=True)

        assert report.orders == 1
        assert {(e.line, e.column) for e in report.rejected} == BAD_ROWS
        assert counts(db, shop.brand_id)["events"] == 1

    def test_a_known_order_the_sample_missed_is_a_duplicate_and_the_rest_is_stored(self, db, shop, caplog):
        when = "2026-11-20T10:00:00Z"
        first = good_file(shop.coupon_code, when=when)
        _import(db, shop, first)
        known = first.splitlines()[3]  # C-2, one row
        rows = [f"N-{n:03d},{when},USD,SKU-C1,1,9.50,,,,cust-{n},false" for n in range(199)]
        data = HEADER + "\n".join([rows[0], known, *rows[1:]]) + "\n"  # every 3rd row is sampled: not line 3

        with caplog.at_level(logging.INFO, logger="clearline.ingest.csv_import"):
            report = _import(db, shop, data)

        assert (report.orders, report.duplicates, report.rejected) == (199, 1, [])
        if db.get_bind().dialect.name == "postgresql":  # the unique key refused the streamed COPY
            assert "a known order in orders.csv" in caplog.text
        assert counts(db, shop.brand_id)["events"] == 201
        assert counts(db, shop.brand_id)["orders"] == 201


class TestKnownOrders:
    """Orders already in the inbox with the body their rows make again are duplicates without a check of their
    values; any other order of the file is checked and stored as usual."""

    def test_the_same_orders_written_otherwise_are_duplicates(self, db, shop):
        when = "2026-11-20T10:00:00Z"
        _import(db, shop, good_file(shop.coupon_code, when=when))
        before = counts(db, shop.brand_id)
        rows = list(csv.reader(io.StringIO(good_file(shop.coupon_code, when=when))))
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerows([[f" {value} " for value in row[::-1]] for row in rows])  # other order, padded, quoted

        again = _import(db, shop, out.getvalue())

        assert (again.orders, again.duplicates, again.rejected) == (0, 2, [])
        assert counts(db, shop.brand_id) == before

    def test_a_known_order_still_waiting_is_processed_again_and_new_ones_are_stored(self, db, shop):
        data = good_file(shop.coupon_code).replace(",USD,", ",EUR,")  # C-1 waits for an FX rate
        _import(db, shop, data)
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        again = _import(db, shop, data + f"C-3,{now},USD,SKU-C1,1,9.50,,,,cust-3,\n")

        assert (again.orders, again.duplicates, again.failed_processing, again.rejected) == (1, 2, 1, [])
        assert counts(db, shop.brand_id)["events"] == 3
        assert counts(db, shop.brand_id)["orders"] == 2

    def test_a_known_order_with_a_row_that_disagrees_is_checked_and_refused(self, db, shop):
        when = "2026-11-20T10:00:00Z"
        data = good_file(shop.coupon_code, when=when)
        _import(db, shop, data)
        lines = data.splitlines()
        lines[2] = lines[2].replace("cust-1", "cust-9")  # the body is written from the first row: still the same

        with pytest.raises(ValidationFailedError) as caught:
            _import(db, shop, "\n".join(lines) + "\n")

        assert _named(caught.value.details) == {(2, "order_id"), (3, "customer_id")}

    def test_a_refused_file_leaves_nothing_in_the_session_even_when_the_caller_goes_on(self, db, shop):
        # The new order C-3 is stored before the conflict on C-2 is found; the acceptance's own savepoint takes it
        # back, so a caller that does not roll back (a script, a future endpoint) cannot commit half a file.
        when = "2026-11-20T10:00:00Z"
        _import(db, shop, good_file(shop.coupon_code, when=when))
        before = counts(db, shop.brand_id)
        changed = good_file(shop.coupon_code, when=when).replace(",3,9.50,", ",4,9.50,")  # C-2: 4 units, not 3

        with pytest.raises(ValidationFailedError) as caught:
            _import(db, shop, changed + f"C-3,{when},USD,SKU-C1,1,9.50,,,,cust-3,\n")

        assert "imported before with other content" in str(caught.value.details)
        assert counts(db, shop.brand_id) == before  # no rollback by the caller: still nothing of the file

    def test_known_and_new_orders_in_parts_of_one_row(self, db, shop, monkeypatch):
        monkeypatch.setattr(csv_import, "PART_ROWS", 1)
        when = "2026-11-20T10:00:00Z"
        data = good_file(shop.coupon_code, when=when)
        _import(db, shop, data)

        more = data + f"C-3,{when},USD,SKU-C1,1,9.50,,,,cust-3,\n"

        with pytest.raises(ValidationFailedError) as caught:
            _import(db, shop, more + f"C-4,{when},USD,SKU-C1,x,9.50,,,,,\n")
        again = _import(db, shop, more)

        assert _named(caught.value.details) == {(6, "quantity")}
        assert (again.orders, again.duplicates, again.rejected) == (1, 2, [])
        assert counts(db, shop.brand_id)["events"] == 3


def _files(db, brand_id: int) -> list[tuple[str, int, int]]:  # type: ignore[no-untyped-def]
    columns = (OrderFile.filename, OrderFile.orders, OrderFile.rows)
    found = db.execute(select(*columns).where(OrderFile.brand_id == brand_id))
    return [tuple(row) for row in found]


class TestTheSameBytes:
    """A file whose every order was accepted is remembered by its bytes' SHA-256: the same bytes again for the same
    brand are all duplicates from one look-up, without the per-order check; any other file takes that check."""

    def test_a_file_accepted_whole_is_remembered_with_its_counts(self, db, shop):
        _import(db, shop, good_file(shop.coupon_code))

        assert _files(db, shop.brand_id) == [("orders.csv", 2, 3)]

    def test_the_same_bytes_again_are_all_duplicates_without_a_check_and_say_when_first_accepted(
        self, db, shop, monkeypatch
    ):
        data = good_file(shop.coupon_code)
        first = _import(db, shop, data)
        before = counts(db, shop.brand_id)

        def no_check(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise AssertionError("the file was checked order by order")

        monkeypatch.setattr(csv_import, "FileCheck", no_check)
        again = _import(db, shop, data.encode())

        assert (again.orders, again.duplicates, again.rows, again.rejected, again.failed_processing) == (0, 2, 3, [], 0)
        assert first.first_accepted_at is None
        assert again.first_accepted_at is not None and again.first_accepted_at.tzinfo is not None
        assert counts(db, shop.brand_id) == before
        assert _files(db, shop.brand_id) == [("orders.csv", 2, 3)]

    def test_an_order_of_the_same_bytes_still_waiting_is_processed_again(self, db, shop):
        data = good_file(shop.coupon_code).replace(",USD,", ",EUR,")  # C-1 waits for an EUR->USD rate
        _import(db, shop, data)

        still = _import(db, shop, data)
        fx.import_rates(db, factories.SYSTEM, data="day,base,quote,rate\n2026-01-01,EUR,USD,1.0850\n")
        done = _import(db, shop, data)
        after = _import(db, shop, data)

        assert (still.orders, still.duplicates, still.failed_processing) == (0, 2, 1)
        assert still.first_accepted_at is not None
        assert (done.orders, done.duplicates, done.failed_processing) == (0, 2, 0)
        assert counts(db, shop.brand_id)["orders"] == 2
        assert counts(db, shop.brand_id)["commission_lines"] == 2
        assert (after.duplicates, after.failed_processing) == (2, 0)
        assert counts(db, shop.brand_id)["commission_lines"] == 2

    def test_a_file_with_rejected_rows_is_not_remembered_and_reports_them_again(self, db, shop):
        first = _import(db, shop, bad_file(shop.coupon_code), quarantine=True)

        again = _import(db, shop, bad_file(shop.coupon_code), quarantine=True)

        assert _files(db, shop.brand_id) == []
        assert again.first_accepted_at is None
        assert (again.orders, again.duplicates) == (0, 1)
        assert [(e.line, e.column, e.message) for e in again.rejected] == [
            (e.line, e.column, e.message) for e in first.rejected
        ]

    def test_a_refused_file_is_not_remembered(self, db, shop):
        with pytest.raises(ValidationFailedError):
            _import(db, shop, bad_file(shop.coupon_code))

        assert _files(db, shop.brand_id) == []

    def test_another_file_of_the_same_size_is_checked_order_by_order(self, db, shop):
        data = good_file(shop.coupon_code, when="2026-11-20T10:00:00Z")
        _import(db, shop, data)
        other = data.replace("C-2,", "C-3,")
        assert len(other) == len(data)

        report = _import(db, shop, other)

        assert (report.orders, report.duplicates, report.first_accepted_at) == (1, 1, None)
        assert counts(db, shop.brand_id)["events"] == 3

    def test_the_same_orders_in_other_bytes_take_the_per_order_path_and_are_all_duplicates(self, db, shop):
        when = "2026-11-20T10:00:00Z"
        data = good_file(shop.coupon_code, when=when)
        _import(db, shop, data)
        before = counts(db, shop.brand_id)
        lines = data.splitlines()
        reordered = "\r\n".join([lines[0], lines[3], lines[1], lines[2]]) + "\r\n"

        again = _import(db, shop, reordered)

        assert (again.orders, again.duplicates, again.rejected, again.first_accepted_at) == (0, 2, [], None)
        assert counts(db, shop.brand_id) == before
        assert sorted(_files(db, shop.brand_id)) == [("orders.csv", 2, 3), ("orders.csv", 2, 3)]

    def test_the_same_bytes_for_another_brand_are_that_brand_s_new_orders(self, db, shop):
        data = good_file("", when="2026-11-20T10:00:00Z")
        _import(db, shop, data)
        other = factories.brand(db, domains=("other.example.com",))
        factories.skus(db, other.id)
        finance = factories.actor(db, ("finance", other.id))

        report = csv_import.import_orders(db, finance, brand=other, data=data, filename="orders.csv")

        assert (report.orders, report.duplicates, report.first_accepted_at) == (2, 0, None)
        assert counts(db, other.id)["events"] == 2
        assert _files(db, other.id) == [("orders.csv", 2, 3)]

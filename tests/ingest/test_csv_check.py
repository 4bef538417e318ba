"""The column-wise order CSV check against the row-by-row reference (a Pydantic model per order): on random
files of good, bad and odd rows both must name the same errors (line, column, message), accept the same
orders with the same inbox bodies, and count the same rows."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearline.ingest import csv_check, csv_import
from clearline.kit.errors import ValidationFailedError

PAD = st.sampled_from([""] * 60 + [" ", "  ", "\t", "\x1c", "\x85", "\xa0", "\u3000"])
# The first values of each column are good ones, drawn most of the time, so that many orders are accepted.
GOOD = 3

VALUES: dict[str, list[str]] = {
    "order_id": ["A-1", "B-2", "C-3", "D-4", "", "é-4", "x" * 128, "y" * 129, "D\\5", "E\x01"],
    "created_at": [
        "2026-11-20T10:00:00Z",
        "2026-11-20 10:00:00+05:30",
        "2026-11-20T10:00:00.123456-08:00",
        "2024-02-29T23:59:59Z",
        "2026-02-29T10:00:00Z",
        "2026-11-31T10:00:00Z",
        "2026-11-20T24:00:00Z",
        "2026-11-20T10:00:60Z",
        "2026-11-20T10:00:00",
        "2026-11-20t10:00:00z",
        "2026-11-20T10:00:00+2400",
        "9999-12-31T23:00:00-05:00",
        "0999-01-01T00:00:00Z",
        "1700000000",
        "2026-11-20",
        "yesterday",
        "",
    ],
    "currency": ["USD", "usd", "JPY", "EUR", "KWD", "XXX", "", "US", "uſd"],
    "sku": ["SKU-1", "SKU-2", "Ünï", "s", "", "k" * 64, "k" * 65, "a,b"],
    "quantity": ["1", "2", "3", "0", "100000", "100001", "007", "+5", "5.0", "1_0", "abc", "", "-1"],
    "unit_price": ["9.50", "10", "100", "0.01", "1.5", "1.555", "1.550", ".5", "5.", "-1", "1e2", "NaN", "", "1_000"],
    "discount": ["", "0", "1.00", "0.5", "9.51", "1000000", "-0", "abc", "0.001"],
    "coupon_code": ["", "ANNA10", "B\\X", "anna10", "ZED"],
    "click_id": ["", "clk.123", "clk.456", "c" * 64, "c" * 65, 'q"uote'],
    "customer_id": ["", "cust-1", "cust-2", "u" * 128, "u" * 129],
    "new_customer": ["", "true", "TRUE", "Yes", "n", "0", "1", "unknown", "maybe", "ｙes"],
}


ORDER_FIELDS = {"created_at", "currency", "customer_id", "new_customer", "click_id"}


@st.composite
def rows(draw: st.DrawFn, orders: dict[str, dict[str, str]], odd_one_in: int) -> list[str]:
    """A row; most rows of one order id repeat that order's fields, as the rows of one order must."""
    values = []
    for column in csv_import.COLUMNS:
        odd = draw(st.integers(1, odd_one_in)) == 1
        value = draw(st.sampled_from(VALUES[column][GOOD:] if odd else VALUES[column][:GOOD]))
        if column in ORDER_FIELDS and not odd:
            value = orders.setdefault(values[0].strip(), {}).setdefault(column, value)
        values.append(draw(PAD) + value + draw(PAD))
    shape = draw(st.sampled_from(["plain"] * 8 + ["extra", "short"]))
    if shape == "extra":
        values.append("surplus")
    elif shape == "short":
        values = values[: draw(st.integers(min_value=1, max_value=len(values) - 1))]
    return values


@st.composite
def files(draw: st.DrawFn, odd_one_in: int = 10) -> str:
    """A header and rows; some files quote fields, break lines inside quotes, skip lines or end in CRLF."""
    orders: dict[str, dict[str, str]] = {}
    body = draw(st.lists(rows(orders, odd_one_in), min_size=0, max_size=12))
    header = list(csv_import.COLUMNS)
    if draw(st.booleans()):
        header = [*header[::-1], "note"]  # columns in another order, one unknown
        body = [[*row[: len(csv_import.COLUMNS)][::-1], "n"] + row[len(csv_import.COLUMNS) :] for row in body]
    out = io.StringIO()
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    end = draw(st.sampled_from(["\n", "\n", "\r\n"]))
    writer = csv.writer(out, lineterminator=end, quoting=quoting)
    writer.writerow(header)
    for row in body:
        if draw(st.integers(0, 9)) == 0:
            out.write(end)  # a blank line
        if draw(st.integers(0, 19)) == 0 and row:
            row = [*row[:-1], row[-1] + "\nwrapped"]  # a quoted value across two lines
        writer.writerow(row)
    return out.getvalue()


def _answers(check):  # type: ignore[no-untyped-def]
    try:
        return check()
    except ValidationFailedError as exc:
        return ("refused", exc.message, exc.details)


def _reference(data: str):  # type: ignore[no-untyped-def]
    errors, bodies, count = csv_import.reference_check(data)
    return sorted((e.line, e.column, e.message) for e in errors), bodies, count


def _columnwise(data: str, part_rows: int = csv_import.PART_ROWS):  # type: ignore[no-untyped-def]
    checked = csv_import.check_file(data, part_rows=part_rows)
    bodies = dict(zip(checked.orders["order_id"], checked.orders["body"], strict=True))
    return sorted((e.line, e.column, e.message) for e in checked.errors), bodies, checked.rows


class TestColumnwiseCheckAgreesWithTheReference:
    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=files())
    def test_random_files_get_the_same_errors_orders_and_bodies(self, data: str) -> None:
        assert _answers(lambda: _columnwise(data)) == _answers(lambda: _reference(data))

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=files(odd_one_in=40))
    def test_mostly_good_files_get_the_same_errors_orders_and_bodies(self, data: str) -> None:
        assert _answers(lambda: _columnwise(data)) == _answers(lambda: _reference(data))

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=files(), part_rows=st.integers(1, 4))
    def test_the_same_holds_when_the_file_is_checked_in_parts(self, data: str, part_rows: int) -> None:
        assert _answers(lambda: _columnwise(data, part_rows)) == _answers(lambda: _reference(data))

    @settings(max_examples=100, deadline=None)
    @given(data=files())
    def test_the_same_holds_for_the_file_as_utf8_bytes(self, data: str) -> None:
        raw = data.encode()
        assert _answers(lambda: _columnwise(raw)) == _answers(lambda: _reference(raw))


class TestPlainSubset:
    def test_a_plain_file_is_checked_without_the_reference(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def refuse(rows):  # type: ignore[no-untyped-def]
            raise AssertionError("a plain order went to the row-by-row check")

        monkeypatch.setattr(csv_import, "check_order", refuse)
        data = ",".join(csv_import.COLUMNS) + "\n"
        data += "A-1,2026-11-20T10:00:00Z,USD,SKU-1,2,9.50,1.00,ANNA10,,cust-1,true\n"
        data += "A-1,2026-11-20T10:00:00Z,USD,SKU-2,1,10,,ANNA10,,cust-1,true\n"
        data += "B-2,2026-11-20 11:00:00+01:00,eur,SKU-1,1,0.5,,,clk,,\n"

        checked = csv_import.check_file(data)

        assert checked.errors == []
        bodies = dict(zip(checked.orders["order_id"], checked.orders["body"], strict=True))
        assert json.loads(bodies["A-1"]) == {
            "click_id": None,
            "coupon_codes": ["ANNA10"],
            "created_at": "2026-11-20T10:00:00Z",
            "currency": "USD",
            "customer": {"id": "cust-1", "new_customer": True},
            "lines": [
                {"discount": "1.00", "quantity": "2", "sku": "SKU-1", "unit_price": "9.50"},
                {"discount": "0", "quantity": "1", "sku": "SKU-2", "unit_price": "10"},
            ],
            "order_id": "A-1",
        }
        assert bodies["B-2"] == json.dumps(json.loads(bodies["B-2"]), sort_keys=True, separators=(",", ":"))

    @pytest.mark.parametrize(
        "line",
        [
            "A-1,2026-11-20T10:00:00Z,USD,SKU-1,2,9.50,19.01,,,,",  # discount over quantity × unit_price
            "A-1,2026-02-30T10:00:00Z,USD,SKU-1,2,9.50,,,,,",  # no such day
            "A-1,2026-11-20T10:00:00Z,USD,SKU-1,2,9.505,,,,,",  # more digits than USD has
            "A-1,2026-11-20T10:00:00Z,USD,SKU-1,100001,9.50,,,,,",  # too many
        ],
    )
    def test_a_bad_row_shaped_like_a_plain_one_is_refused(self, line: str) -> None:
        data = ",".join(csv_import.COLUMNS) + "\n" + line + "\n"

        checked = csv_import.check_file(data)

        assert checked.orders.height == 0
        assert [(e.line, e.column) for e in checked.errors] == [
            (e.line, e.column) for e in csv_import.reference_check(data)[0]
        ]
        assert checked.errors

    def test_python_whitespace_is_what_the_columnwise_strip_removes(self) -> None:
        assert set(csv_check.PY_WHITESPACE) == {c for c in map(chr, range(0x110000)) if c.isspace()}


def test_the_written_out_whitespace_is_exactly_what_str_strip_removes() -> None:
    import sys

    from clearline.ingest import csv_check

    assert "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()) == csv_check.PY_WHITESPACE


@pytest.mark.parametrize("part_rows", [1, 2, 3])
def test_a_file_cut_into_parts_between_orders_gets_the_reference_answers(part_rows: int) -> None:
    data = ",".join(csv_import.COLUMNS) + "\n"
    data += "A-1,2026-11-20T10:00:00Z,USD,SKU-1,2,9.50,1.00,ANNA10,,cust-1,true\n"
    data += "A-1,2026-11-20T10:00:00Z,USD,SKU-2,1,10,,ANNA10,,cust-1,true\n"
    data += "B-2,2026-11-20T10:00:00,USD,SKU-1,1,9.50,,,,,\n"  # no offset: outside the plain subset, refused
    data += "C-3, 2026-11-20T10:00:00Z ,usd,SKU-1,1,9.50,,,,,maybe\n"  # refused by the reference
    data += "D-4,2026-11-20T10:00:00Z,USD,SKU-1,1,9.50,,,,,\n"
    data += "D-4,2026-11-20T10:00:00Z,USD,SKU-3,3,1.5,,,,,\n"
    data += "E-5,2026-11-20T10:00:00+01:00,JPY,SKU-1,1,950,,,,,\n"

    parts = csv_import._parts(csv_import.FileCheck(data, part_rows=part_rows).usable, part_rows)
    checked = csv_import.check_file(data, part_rows=part_rows)

    assert len(parts) > 1
    assert _columnwise(data, part_rows) == _reference(data)
    assert checked.orders["order_id"].to_list() == ["A-1", "D-4", "E-5"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=files())
def test_a_body_written_without_checking_values_is_the_reference_s_body(data: str) -> None:
    """`plain_orders` without ``validate`` writes a body only where it is the one the reference writes for the
    same rows (whether or not the reference accepts them)."""
    try:
        checking = csv_import.FileCheck(data)
    except ValidationFailedError:
        return
    written = checking.bodies_as_stored()
    grouped: dict[str, csv_import.Rows] = {}
    for row in checking.usable.select("line", *csv_import.COLUMNS).iter_rows(named=True):
        grouped.setdefault(row["order_id"], []).append((row["line"], row))
    for order_id, body in written.iter_rows():
        _, payload, _ = csv_import.check_order(grouped[order_id])
        assert body == csv_import._body(payload)

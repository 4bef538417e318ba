"""The order CSV's check, column-wise: the whole file at once in Polars instead of a Pydantic model per order.

The row-by-row check (`csv_import.check_order`, the reference) stays the rule. This module only proves, with
column expressions, that an order is inside a plain, certainly valid subset — printable values, ISO 8601
times with an offset, amounts with at most the currency's digits, lengths within the schema's limits, the
order's rows agreeing on the order fields — and writes that order's inbox body (the canonical JSON the
reference writes) column-wise too. Every other order, bad or merely unusual, goes through the reference, so
its errors keep their exact messages, lines and columns, and nothing is accepted that the reference refuses
(`tests/ingest/test_csv_check.py` holds both to the same answers on random rows).

Parsing: a file without quotes, NUL bytes or bare carriage returns is one record per line; such a file is
split into lines and fields by Polars. Any other file is read by the csv module, as `kit.csvio` reads it, so
quoted fields, embedded line breaks and their line numbers are the csv module's.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable

import polars as pl

from clearline.kit import money
from clearline.kit.errors import ValidationFailedError

COLUMNS = [
    "order_id",
    "created_at",
    "currency",
    "sku",
    "quantity",
    "unit_price",
    "discount",
    "coupon_code",
    "click_id",
    "customer_id",
    "new_customer",
]
REQUIRED = ["order_id", "created_at", "currency", "sku", "quantity", "unit_price"]
ORDER_FIELDS = ["created_at", "currency", "customer_id", "new_customer", "click_id"]

# Exactly what Python's str.strip() removes (it strips a few characters Rust's trim keeps, \x1c-\x1f).
# (Written out: finding them by scanning every code point cost a second at each start of the app and the CLI;
# tests/ingest/test_csv_check.py checks the list against str.isspace.)
PY_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# The plain subset, proven valid column-wise. Anything outside it goes to the reference check.
# Years 1000-9998 (a UTC offset cannot carry them out of Python's range), no leap second, offsets under 24 h.
_TIME = (
    r"^(?:[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-[0-9]{2}-[0-9]{2}[T ](?:[01][0-9]|2[0-3])"
    r":[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)
_AMOUNT = r"^[0-9]{1,9}(?:\.[0-9]{1,3})?$"
_QUANTITY = r"^[1-9][0-9]{0,5}$"
_FLAGS = {"": "null", "unknown": "null", "true": "true", "1": "true", "yes": "true", "y": "true"}
_FLAGS |= {"false": "false", "0": "false", "no": "false", "n": "false"}
_CONTROL = r"[\x00-\x1f]"
_CONTROL_RE = re.compile(_CONTROL)


# --- reading --------------------------------------------------------------------------------------------------


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailedError("file is not UTF-8", details=[{"loc": ["file"], "msg": str(exc)}]) from None


def _require(header: list[str]) -> None:
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        raise ValidationFailedError(
            f"header is missing column(s): {', '.join(missing)}",
            details=[{"loc": ["line 1", column], "msg": "missing column"} for column in missing],
        )


def _positions(header: list[str]) -> dict[str, int]:
    # csv.DictReader zips the header with the row: of two columns with one name, the later one wins.
    return {name: index for index, name in enumerate(header)}


def _is_plain(text: str) -> bool:
    """One record per line: no quoting, no NUL, every carriage return part of a CRLF."""
    return '"' not in text and "\x00" not in text and ("\r" not in text or text.count("\r") == text.count("\r\n"))


def read_frame(data: bytes | str) -> pl.DataFrame:
    """The file's data rows: line (as csv.DictReader numbers it), each column stripped ('' when absent),
    ``extra`` (more fields than the header) and ``control`` (a control character somewhere in the row).
    Blank lines are skipped, as csv.DictReader skips them."""
    text = _decode(data)
    if not _is_plain(text):
        return _read_with_csv_module(text)
    lines = pl.Series("raw", [text]).str.split("\n").explode()
    if "\r" in text:
        lines = lines.str.strip_suffix("\r")
    header_line = lines[0] if len(lines) else ""
    header = [h.strip() for h in header_line.split(",")] if header_line else []
    _require(header)
    at = _positions(header)
    strip = _stripper(text)
    # A control character in any row sends that row to the reference; most files have none (\r\n aside).
    control = pl.lit(False)
    if _has_control(data if isinstance(data, bytes) else text.encode()):
        control = pl.col("raw").str.contains(_CONTROL)
    frame = (
        pl.DataFrame({"raw": lines})
        .with_row_index("line", offset=1)
        .slice(1)
        .filter(pl.col("raw") != "")
        .with_columns(pl.col("raw").str.split(",").alias("fields"))
    )
    columns = [
        strip(
            pl.col("fields").list.get(at[name], null_on_oob=True).fill_null("")
            if name in at
            else pl.lit("", dtype=pl.String)
        ).alias(name)
        for name in COLUMNS
    ]
    return frame.select(
        pl.col("line").cast(pl.Int64),
        *columns,
        (pl.col("fields").list.len() > len(header)).alias("extra"),
        control.alias("control"),
    )


_CONTROL_BYTES = bytes([*range(0x0A), 0x0B, 0x0C, *range(0x0E, 0x20)])  # \n and \r aside


def _has_control(data: bytes) -> bool:
    """Whether the file has a control character other than a line break (a byte under 0x20 is one in UTF-8;
    deleting them is a single pass, three times faster than a regular expression over the whole text)."""
    return len(data.translate(None, _CONTROL_BYTES)) != len(data)


def _stripper(text: str) -> Callable[[pl.Expr], pl.Expr]:
    """Python's str.strip(), column-wise. Rust's trim (Polars' default) strips the same characters except
    \\x1c-\\x1f, which Python counts as whitespace too; a file with no whitespace at all has nothing to strip."""
    if text.isascii() and not any(c in text for c in " \t\x0b\x0c\x1c\x1d\x1e\x1f"):
        return lambda value: value
    if any(c in text for c in "\x1c\x1d\x1e\x1f"):
        return lambda value: value.str.strip_chars(PY_WHITESPACE)
    return lambda value: value.str.strip_chars()


def _read_with_csv_module(text: str) -> pl.DataFrame:
    reader = csv.reader(io.StringIO(text))
    first = next(reader, None)
    header = [h.strip() for h in (first or [])]
    _require(header)
    at = _positions(header)
    width = len(header)
    picks = [(name, at.get(name)) for name in COLUMNS]
    line_numbers: list[int] = []
    extra: list[bool] = []
    control: list[bool] = []
    values: dict[str, list[str]] = {name: [] for name in COLUMNS}
    for row in reader:
        if not row:
            continue
        line_numbers.append(reader.line_num)
        extra.append(len(row) > width)
        for name, index in picks:
            values[name].append(row[index].strip() if index is not None and index < len(row) else "")
        control.append(any(_CONTROL_RE.search(value) for value in row))
    return pl.DataFrame(
        {"line": line_numbers, **values, "extra": extra, "control": control},
        schema={"line": pl.Int64, **dict.fromkeys(COLUMNS, pl.String), "extra": pl.Boolean, "control": pl.Boolean},
    )


# --- the plain subset ------------------------------------------------------------------------------------------


def _json_text(value: pl.Expr) -> pl.Expr:
    """A JSON string literal, as json.dumps writes it, of a value without control characters."""
    escaped = value.str.replace_all("\\", "\\\\", literal=True).str.replace_all('"', '\\"', literal=True)
    return pl.concat_str([pl.lit('"'), escaped, pl.lit('"')])


def _json_bare(value: pl.Expr) -> pl.Expr:
    """`_json_text` of a value without backslashes or double quotes: nothing to escape."""
    return pl.concat_str([pl.lit('"'), value, pl.lit('"')])


def _amount(column: str) -> pl.Expr:
    """A plain amount (``_AMOUNT``: at most 9 digits and 3 decimals) as an exact decimal."""
    return pl.col(column).cast(pl.Decimal(18, 3), strict=False)


def _decimals(column: str) -> pl.Expr:
    dot = pl.col(column).str.find(".", literal=True)
    return pl.when(dot.is_null()).then(0).otherwise(pl.col(column).str.len_bytes() - 1 - dot)


def _plain_time() -> pl.Expr:
    """``_TIME`` (fields in range by the pattern) and a real calendar day (by the date parser)."""
    text = pl.col("created_at")
    day = text.str.replace(" ", "T", literal=True).str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False)
    return text.str.contains(_TIME) & day.is_not_null()


def plain_orders(rows: pl.DataFrame, *, escape: bool = True, validate: bool = True) -> pl.DataFrame:
    """Every order, one row each in the order of their first line: order_id, its inbox body, first line, and
    ``plain``: whether the order is entirely in the plain subset (the body is null otherwise). ``rows``:
    `read_frame`'s rows without the extra ones and those without an order id.

    Without ``validate`` the values are not checked, only that the body is the one the reference would write
    for the order: no control character, the rows agreeing on the order fields, one coupon code at most, a
    known new_customer flag. Such a body, when it is the body of an order already in the inbox, proves the order
    is that order again (its values were checked when it was stored)."""
    text = _json_text if escape else _json_bare
    discount = pl.when(pl.col("discount") == "").then(pl.lit("0")).otherwise(pl.col("discount"))
    quantity = pl.col("quantity").cast(pl.Int64, strict=False)
    # Each line on its own: its fields, and its amounts once they are known to be plain numbers.
    line_plain = ~pl.col("control")
    if validate:
        line_plain = (
            line_plain
            & pl.col("sku").str.len_chars().is_between(1, 64)
            & pl.col("quantity").str.contains(_QUANTITY)
            & pl.col("unit_price").str.contains(_AMOUNT)
            & pl.col("discount").str.contains(_AMOUNT)
        )
    lines = rows.with_columns(discount.alias("discount")).with_columns(
        line_plain.alias("plain"),
        pl.concat_str(
            [
                pl.lit('{"discount":'),
                text(pl.col("discount")),
                pl.lit(',"quantity":'),
                text(pl.col("quantity")),
                pl.lit(',"sku":'),
                text(pl.col("sku")),
                pl.lit(',"unit_price":'),
                text(pl.col("unit_price")),
                pl.lit("}"),
            ]
        ).alias("line_json"),
        pl.concat_str([pl.col(name) for name in ORDER_FIELDS], separator="\x00").alias("order_fields"),
    )
    if validate:
        lines = lines.with_columns(
            (pl.col("plain") & (quantity <= 100_000) & (_amount("discount") <= _amount("unit_price") * quantity))
            .fill_null(False)
            .alias("plain"),
            pl.max_horizontal(_decimals("unit_price"), _decimals("discount")).alias("decimals"),
        )
    else:
        lines = lines.with_columns(pl.lit(0).alias("decimals"))
    orders = lines.group_by("order_id", maintain_order=True).agg(
        pl.col("plain").all(),
        pl.col("line").first().alias("first_line"),
        pl.len().alias("n"),
        pl.col("decimals").max(),
        pl.col("order_fields").n_unique().alias("variants"),
        *(pl.col(name).first() for name in ORDER_FIELDS),
        pl.col("line_json"),
        # One code or none per order here; an order with several goes through the reference.
        pl.col("coupon_code").filter(pl.col("coupon_code") != "").min().alias("coupon_min"),
        pl.col("coupon_code").filter(pl.col("coupon_code") != "").max().alias("coupon_max"),
    )
    codes = list(money.MINOR_UNITS)
    digits = (
        pl.col("currency")
        .str.to_uppercase()
        .replace_strict(codes, [money.MINOR_UNITS[c] for c in codes], default=None, return_dtype=pl.Int64)
    )
    same_body = (
        pl.col("plain")
        & (pl.col("variants") == 1)
        & (pl.col("coupon_min").is_null() | (pl.col("coupon_min") == pl.col("coupon_max")))
        & pl.col("new_customer").str.contains(r"^[A-Za-z01]*$")
        & pl.col("new_customer").str.to_lowercase().is_in(list(_FLAGS))
    )
    if validate:
        same_body = (
            same_body
            & (pl.col("n") <= 5000)
            & (pl.col("order_id").str.len_chars() <= 128)
            & _plain_time()
            & pl.col("currency").str.contains(r"^[A-Za-z]{3}$")
            & (pl.col("decimals") <= digits)
            & (pl.col("click_id").str.len_chars() <= 64)
            & (pl.col("customer_id").str.len_chars() <= 128)
        )
    orders = orders.with_columns(same_body.fill_null(False).alias("plain"))
    flag = pl.col("new_customer").str.to_lowercase().replace_strict(list(_FLAGS), list(_FLAGS.values()), default="")
    body = pl.concat_str(
        [
            pl.lit('{"click_id":'),
            _or_null("click_id", text),
            pl.lit(',"coupon_codes":['),
            pl.when(pl.col("coupon_min").is_null()).then(pl.lit("")).otherwise(text(pl.col("coupon_min"))),
            pl.lit('],"created_at":'),
            text(pl.col("created_at")),
            pl.lit(',"currency":'),
            text(pl.col("currency")),
            pl.lit(',"customer":{"id":'),
            _or_null("customer_id", text),
            pl.lit(',"new_customer":'),
            flag,
            pl.lit('},"lines":['),
            pl.col("line_json").list.join(","),
            pl.lit('],"order_id":'),
            text(pl.col("order_id")),
            pl.lit("}"),
        ]
    )
    body = pl.when(pl.col("plain")).then(body)
    return orders.select("order_id", body.alias("body"), "first_line", "plain")


def needs_escaping(data: bytes | str) -> bool:
    """Whether any value might have a backslash or a double quote, which a JSON string escapes."""
    return ("\\" in data or '"' in data) if isinstance(data, str) else (b"\\" in data or b'"' in data)


def _or_null(column: str, text: Callable[[pl.Expr], pl.Expr]) -> pl.Expr:
    return pl.when(pl.col(column) == "").then(pl.lit("null")).otherwise(text(pl.col(column)))

"""Bulk order CSV (INTERFACES §5): one row per order line; all-or-nothing with a line-numbered report,
or quarantine: good orders import, bad rows go to a rejects file with their reasons.

Store first, process after: `accept_orders` checks the whole file and stores every good order raw in the
inbox (its acceptance: once committed, nothing is lost and `clearline events replay` can process it);
`process_accepted` then applies the stored orders. `import_orders` does both, as the CLI and the API run it.
The check is column-wise (`csv_check`); `check_order` — a Pydantic model per order — is the reference it
defers to for every order outside the plain subset it proves valid, and the rule both are tested against.
A file whose every order was accepted is remembered by the SHA-256 of its bytes: the same bytes again are the same
orders again, all duplicates, known from that one look-up (only its orders still waiting are processed again)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from psycopg.errors import UniqueViolation
from pydantic import ValidationError
from sqlalchemy import String, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.ingest import csv_check, csv_store, schemas, service
from clearline.kit import csvio
from clearline.kit.errors import ValidationFailedError
from clearline.models import Brand, InboxEvent

COLUMNS = csv_check.COLUMNS
REQUIRED = csv_check.REQUIRED
IMPORTERS = ("finance",)
PART_ROWS = 25_000  # rows per part of a file: checked, then sent to the inbox while the next one is checked

log = logging.getLogger(__name__)


@dataclass
class CsvReport:
    orders: int = 0
    duplicates: int = 0
    rows: int = 0
    rejected: list[csvio.RowError] = field(default_factory=list)
    failed_processing: int = 0
    source_rows: dict[int, dict[str, str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per step: check, store, process
    first_accepted_at: dt.datetime | None = None  # set when these very bytes were accepted whole before

    def rejects_csv(self) -> str:
        """The rejected rows as they were in the file, each with its line number and every reason, so the
        file can be corrected and imported again."""
        reasons: dict[int, list[str]] = {}
        for error in self.rejected:
            reasons.setdefault(error.line, []).append(f"{error.column}: {error.message}")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["line", *COLUMNS, "reason"])
        for line in sorted(reasons):
            row = self.source_rows.get(line, {})
            writer.writerow([line, *(row.get(column, "") for column in COLUMNS), "; ".join(reasons[line])])
        return out.getvalue()


Rows = list[tuple[int, dict[str, str]]]
_COLUMN_OF = {
    ("customer", "id"): "customer_id",
    ("customer", "new_customer"): "new_customer",
    ("coupon_codes",): "coupon_code",
}


def _flag(value: str) -> bool | None:
    value = value.strip().lower()
    if value in ("", "unknown"):
        return None
    if value in ("true", "1", "yes", "y"):
        return True
    if value in ("false", "0", "no", "n"):
        return False
    raise csvio.RowInvalid("new_customer", f"{value!r} is not true/false")


def _group(data: bytes | str) -> tuple[dict[str, Rows], list[csvio.RowError], dict[int, dict[str, str]]]:
    orders: dict[str, Rows] = {}
    errors: list[csvio.RowError] = []
    raw: dict[int, dict[str, str]] = {}
    for line, row in csvio.read_rows(data, required=REQUIRED, optional=COLUMNS):
        raw[line] = row
        if "__extra__" in row:
            errors.append(csvio.RowError(line, "row", "more fields than the header"))
            continue
        if not row.get("order_id"):
            errors.append(csvio.RowError(line, "order_id", "required"))
            continue
        orders.setdefault(row["order_id"], []).append((line, row))
    return orders, errors, raw


def _validation_errors(exc: ValidationError, rows: Rows) -> list[csvio.RowError]:
    """Pydantic's locations (``lines.1.quantity``) back to the file's line numbers and column names."""
    errors = []
    for error in exc.errors():
        cause = (error.get("ctx") or {}).get("error")
        found = cause.problems if isinstance(cause, schemas.FieldProblems) else [(error["loc"], error["msg"])]
        for loc, message in found:
            parts = [str(p) for p in loc]
            if parts and parts[0] == "lines" and len(parts) > 1 and parts[1].isdigit():
                line = rows[int(parts[1])][0]
                column = parts[2] if len(parts) > 2 else "row"
            else:
                line = rows[0][0]
                named = _COLUMN_OF.get(tuple(parts[:2])) or _COLUMN_OF.get(tuple(parts[:1]))
                column = named or ".".join(parts) or "row"
            errors.append(csvio.RowError(line, column, message))
    return errors


def check_order(rows: Rows) -> tuple[schemas.OrderIn | None, dict[str, Any], list[csvio.RowError]]:
    """The reference check of one order's rows: (the order or None, its payload, its errors)."""
    errors: list[csvio.RowError] = []
    first = rows[0][1]
    for line, row in rows[1:]:
        for column in ("created_at", "currency", "customer_id", "new_customer", "click_id"):
            if row.get(column, "") != first.get(column, ""):
                errors.append(csvio.RowError(line, column, f"differs from the order's first row (line {rows[0][0]})"))
    try:
        new_customer = _flag(first.get("new_customer", ""))
    except csvio.RowInvalid as exc:
        errors.append(csvio.RowError(rows[0][0], exc.column, exc.message))
        new_customer = None
    coupons = sorted({row["coupon_code"] for _, row in rows if row.get("coupon_code")})
    payload = {
        "order_id": first["order_id"],
        "created_at": first["created_at"],
        "currency": first["currency"],
        "customer": {"id": first.get("customer_id") or None, "new_customer": new_customer},
        "click_id": first.get("click_id") or None,
        "coupon_codes": coupons,
        "lines": [
            {
                "sku": row["sku"],
                "quantity": row["quantity"],
                "unit_price": row["unit_price"],
                "discount": row.get("discount") or "0",
            }
            for _, row in rows
        ],
    }
    parsed = None
    try:
        parsed = schemas.OrderIn.model_validate(payload)
    except ValidationError as exc:
        errors.extend(_validation_errors(exc, rows))
    return (None if errors else parsed), payload, errors


def _whole_order(order_id: str, rows: Rows, bad: list[csvio.RowError]) -> list[csvio.RowError]:
    """An order is imported whole or not at all: its good rows are rejected too, saying why."""
    bad_lines = sorted({e.line for e in bad})
    named = ", ".join(str(n) for n in bad_lines)
    return [
        csvio.RowError(line, "order_id", f"order {order_id} not imported: its row(s) on line(s) {named} are bad")
        for line, _ in rows
        if line not in bad_lines
    ]


@dataclass
class Accepted:
    """What acceptance leaves for processing: the ids of the orders stored new or still waiting, and the
    validated orders the reference already parsed (the others are read from their inbox bodies)."""

    brand_id: int = 0
    waiting: list[str] = field(default_factory=list)
    parsed: dict[str, schemas.OrderIn] = field(default_factory=dict)


def reference_check(data: bytes | str) -> tuple[list[csvio.RowError], dict[str, str], int]:
    """The whole file through the row-by-row check: (errors, accepted order id -> inbox body, rows). The
    column-wise check must give the same answers; kept as the rule and for the tests that hold it to it."""
    grouped, errors, raw = _group(data)
    bodies: dict[str, str] = {}
    for order_id, rows in grouped.items():
        parsed, payload, problems = check_order(rows)
        if problems or parsed is None:
            errors.extend(problems + _whole_order(order_id, rows, problems))
        else:
            bodies[order_id] = _body(payload)
    errors.sort(key=lambda e: (e.line, e.column))
    return errors, bodies, len(raw)


def _body(payload: dict[str, Any]) -> str:
    # Canonical JSON (what `service.body_digest` compares), so its digest is the digest of the text.
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class CheckedFile:
    """The file after the check: every error, and the good orders (order_id, body, first_line; in the order
    of their first line) with the orders the reference parsed."""

    rows: int
    errors: list[csvio.RowError]
    orders: pl.DataFrame
    parsed: dict[str, schemas.OrderIn]
    frame: pl.DataFrame

    def lines_of(self, order_ids: set[str]) -> dict[str, list[int]]:
        found = self.frame.filter(pl.col("order_id").is_in(sorted(order_ids)) & ~pl.col("extra"))
        lines: dict[str, list[int]] = {}
        for order_id, line in found.select("order_id", "line").iter_rows():
            lines.setdefault(order_id, []).append(line)
        return lines

    def source_rows(self, lines: set[int]) -> dict[int, dict[str, str]]:
        """Rows as the file had them (values stripped), by line; a row with too many fields is empty."""
        found = self.frame.filter(pl.col("line").is_in(sorted(lines)))
        return {
            row["line"]: {"__extra__": "too many fields"} if row["extra"] else {c: row[c] for c in COLUMNS}
            for row in found.iter_rows(named=True)
        }


def _parts(rows: pl.DataFrame, part_rows: int) -> list[pl.DataFrame]:
    """The rows cut into parts of about ``part_rows`` rows, never inside an order. Only a file whose orders
    each sit on consecutive rows is cut (any other is one part): each part then holds whole orders, and the
    parts in turn list the orders in the order of their first line."""
    if rows.height <= part_rows:
        return [rows]
    starts = rows.select((pl.col("order_id") != pl.col("order_id").shift(1)).fill_null(True)).to_series()
    if starts.sum() != rows["order_id"].n_unique():
        return [rows]
    first_rows = starts.arg_true()  # where each order's rows begin
    cuts = {
        int(first_rows[i])
        for i in first_rows.search_sorted(pl.Series(range(part_rows, rows.height, part_rows)))
        if i < len(first_rows)
    }
    bounds = [0, *sorted(cuts - {0}), rows.height]
    return [rows.slice(a, b - a) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


class FileCheck:
    """A file checked column-wise, part after part (whole orders each, in the file's order): `parts` yields
    each part's good orders (order_id, body, first_line) once it is checked, so they can be stored while the
    next part is checked; `result` finishes the check and answers for the whole file. Orders outside the plain
    subset go through `check_order`. ``seconds``: the time spent checking."""

    def __init__(self, data: bytes | str, *, part_rows: int | None = None) -> None:
        started = time.perf_counter()
        self.frame = csv_check.read_frame(data)
        frame = self.frame
        extra = frame.filter(pl.col("extra"))
        unnamed = frame.filter(~pl.col("extra") & (pl.col("order_id") == ""))
        self.errors = [csvio.RowError(line, "row", "more fields than the header") for line in extra["line"]]
        self.errors += [csvio.RowError(line, "order_id", "required") for line in unnamed["line"]]
        self.usable = frame.filter(~pl.col("extra") & (pl.col("order_id") != ""))
        self.parsed: dict[str, schemas.OrderIn] = {}
        self._escape = csv_check.needs_escaping(data)
        self._orders: list[pl.DataFrame] = []
        self._known: pl.Series | None = None
        self._pending = self._check(_parts(self.usable, part_rows or PART_ROWS))
        self.seconds = time.perf_counter() - started

    def bodies_as_stored(self) -> pl.DataFrame:
        """The orders whose body can be written without checking their values (order_id, body): the body the
        reference would store (`csv_check.plain_orders` without ``validate``). One stored with that very body
        is the same order again: `skip` it."""
        started = time.perf_counter()
        every = csv_check.plain_orders(self.usable, escape=self._escape, validate=False)
        self.seconds += time.perf_counter() - started
        return every.filter(pl.col("plain")).select("order_id", "body")

    def skip(self, order_ids: set[str]) -> None:
        """Leave these orders out of the check: they are in the inbox with the body their rows make (no error,
        no answer in `result`). Only before the check has begun."""
        self._known = pl.Series("known", list(order_ids), dtype=pl.String) if order_ids else None

    def sample_ids(self, size: int = 64) -> list[str]:
        """About ``size`` order ids of the file's rows, spread over it."""
        return self.usable["order_id"].gather_every(max(1, self.usable.height // size)).to_list()

    def parts(self) -> Iterator[pl.DataFrame]:
        return self._pending

    def result(self) -> CheckedFile:
        for _ in self._pending:
            pass
        self.errors.sort(key=lambda e: (e.line, e.column))
        orders = pl.concat(self._orders) if self._orders else pl.DataFrame(schema=_ORDERS)
        return CheckedFile(self.frame.height, self.errors, orders, self.parsed, self.frame)

    def _check(self, parts: list[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        for part in parts:
            started = time.perf_counter()
            rows = part if self._known is None else part.filter(~pl.col("order_id").is_in(self._known.implode()))
            orders = self._check_part(rows) if rows.height else pl.DataFrame(schema=_ORDERS)
            self._orders.append(orders)
            self.seconds += time.perf_counter() - started
            yield orders

    def _check_part(self, usable: pl.DataFrame) -> pl.DataFrame:
        every = csv_check.plain_orders(usable, escape=self._escape)
        plain = every.filter(pl.col("plain")).drop("plain")
        if plain.height == every.height:
            return plain
        rest = usable.filter(pl.col("order_id").is_in(every.filter(~pl.col("plain"))["order_id"].implode()))
        grouped: dict[str, Rows] = {}
        for row in rest.select("line", *COLUMNS).iter_rows(named=True):
            grouped.setdefault(row["order_id"], []).append((row["line"], row))
        accepted = []
        for order_id, rows in grouped.items():
            order, payload, problems = check_order(rows)
            if problems or order is None:
                self.errors.extend(problems + _whole_order(order_id, rows, problems))
            else:
                self.parsed[order_id] = order
                accepted.append((order_id, _body(payload), rows[0][0]))
        if accepted:
            more = pl.DataFrame(accepted, schema=plain.schema, orient="row")
            plain = pl.concat([plain, more]).sort("first_line")
        return plain


_ORDERS = {"order_id": pl.String, "body": pl.String, "first_line": pl.Int64}


def check_file(data: bytes | str, *, part_rows: int | None = None) -> CheckedFile:
    """Check the whole file column-wise; orders outside the plain subset go through `check_order`."""
    return FileCheck(data, part_rows=part_rows).result()


def accept_orders(
    session: Session,
    actor: Actor,
    *,
    brand: Brand,
    data: bytes | str,
    quarantine: bool = False,
    filename: str = "upload.csv",
) -> tuple[CsvReport, Accepted]:
    """Check the whole file and store its good orders raw in the inbox: the import's acceptance (durable
    when the caller commits). Default: any bad row and nothing is stored (the 422 lists every bad row). With
    ``quarantine``: good orders are stored and bad rows are reported for a rejects file. Under a savepoint:
    a refusal leaves nothing of the file in the caller's unit of work, whether or not the caller rolls back."""
    actor.require(*IMPORTERS, brand_id=brand.id)
    savepoint = session.begin_nested()
    try:
        accepted = _accept_orders(session, brand=brand, data=data, quarantine=quarantine, filename=filename)
    except BaseException:
        savepoint.rollback()
        raise
    savepoint.commit()
    return accepted


def _accept_orders(
    session: Session, *, brand: Brand, data: bytes | str, quarantine: bool, filename: str
) -> tuple[CsvReport, Accepted]:
    started = time.perf_counter()
    digest = csv_store.FileDigest(data)
    earlier = csv_store.accepted_file(session, brand_id=brand.id, digest=digest)
    if earlier is not None:
        return _accepted_before(session, earlier, brand_id=brand.id, data=data, started=started)
    checking = FileCheck(data)
    if not checking.frame.height:
        checking.errors.append(csvio.RowError(2, "file", "no data rows"))
    # A new file (none of a sample of its ids known) goes into the inbox part by part as it is checked; a
    # file already refused (a row without an order id, too many fields) is only checked, to name every bad row.
    checkable = not (checking.errors and not quarantine)
    new_file = checkable and csv_store.looks_new(session, brand_id=brand.id, ids=checking.sample_ids())
    streamed = (
        new_file
        and csv_store.streams(session)
        and _stream(session, checking, brand_id=brand.id, quarantine=quarantine, filename=filename)
    )
    known: set[str] = set()
    known_waiting: set[str] = set()
    waiting_first: list[str] = []  # known orders still to be processed, in the order of the file
    if checkable and not new_file:
        # Some orders are known: those stored with the very body their rows make are the same orders again,
        # and need no check (their values were checked when they were stored).
        same = checking.bodies_as_stored()
        same_ids: list[str] = same["order_id"].to_list()
        digests = csv_store.digests_of(same["body"].to_list())
        known, known_waiting = csv_store.stored_same(session, brand_id=brand.id, ids=same_ids, digests=digests)
        checking.skip(known | known_waiting)
        waiting_first = [order_id for order_id in same_ids if order_id in known_waiting] if known_waiting else []
    checked = checking.result()
    errors = checked.errors
    report = CsvReport(rows=checked.rows)
    if errors and not quarantine:
        raise _refused(errors)
    orders = checked.orders
    answers = (
        [csv_store.NEW] * orders.height
        if streamed
        else csv_store.store_orders(
            session, brand_id=brand.id, orders=orders.select("order_id", "body"), delivery_id=filename
        )
    )
    accepted = Accepted(brand_id=brand.id)
    report.duplicates = len(known) + len(known_waiting)
    accepted.waiting = waiting_first
    conflicts: list[str] = []
    order_ids: list[str] = orders["order_id"].to_list()
    if all(stored is csv_store.NEW for stored in answers):  # a new file: every order stored now, none known
        report.orders = len(order_ids)
        accepted.waiting += order_ids
        accepted.parsed = dict(checked.parsed)
    elif all(stored is csv_store.DONE for stored in answers):  # a file stored and processed before
        report.duplicates += len(order_ids)
    else:
        for order_id, stored in zip(order_ids, answers, strict=True):
            if stored.conflict:
                conflicts.append(order_id)
            elif stored.duplicate and stored.handled:
                report.duplicates += 1
            else:
                report.duplicates += stored.duplicate
                report.orders += not stored.duplicate
                accepted.waiting.append(order_id)
                if order_id in checked.parsed:
                    accepted.parsed[order_id] = checked.parsed[order_id]
    if conflicts:
        for order_id, lines in checked.lines_of(set(conflicts)).items():
            errors.extend(
                csvio.RowError(line, "order_id", f"order {order_id} was imported before with other content")
                for line in lines
            )
        errors.sort(key=lambda e: (e.line, e.column))
    if errors and not quarantine:
        raise _refused(errors)
    report.rejected = errors
    report.source_rows = checked.source_rows({e.line for e in errors})
    if not errors:  # every order accepted: these bytes are the same orders whenever they come again
        orders_in_file = report.orders + report.duplicates
        csv_store.record_file(
            session, brand_id=brand.id, digest=digest, filename=filename, orders=orders_in_file, rows=report.rows
        )
    # Checking and storing overlap for a new file: "store" is the rest of the wall time, mostly the server's.
    report.seconds = {"check": checking.seconds, "store": time.perf_counter() - started - checking.seconds}
    return report, accepted


def _accepted_before(
    session: Session, earlier: csv_store.KnownFile, *, brand_id: int, data: bytes | str, started: float
) -> tuple[CsvReport, Accepted]:
    """The bytes of a file accepted whole before: the same inbox bodies, so every order is a duplicate and nothing
    is stored. Its orders still waiting (an FX rate missing, say) are processed again, as a duplicate order still
    waiting always is; the file is read for its order ids only when some order of the brand waits at all."""
    report = CsvReport(rows=earlier.rows, duplicates=earlier.orders, first_accepted_at=earlier.accepted_at)
    accepted = Accepted(brand_id=brand_id)
    if csv_store.any_waiting(session, brand_id=brand_id):
        ids = _order_ids(data)
        waiting = csv_store.waiting_among(session, brand_id=brand_id, ids=ids)
        accepted.waiting = [order_id for order_id in ids if order_id in waiting]
    report.seconds = {"check": time.perf_counter() - started, "store": 0.0}
    return report, accepted


def _order_ids(data: bytes | str) -> list[str]:
    """The file's order ids, each once, in the order of their first row (read as the check reads the file)."""
    frame = csv_check.read_frame(data)
    named = frame.filter(~pl.col("extra") & (pl.col("order_id") != ""))
    ids: list[str] = named["order_id"].unique(maintain_order=True).to_list()
    return ids


class _Abandoned(Exception):
    """A bad row found while the file was being sent: what was sent is rolled back."""


def _stream(session: Session, checking: FileCheck, *, brand_id: int, quarantine: bool, filename: str) -> bool:
    """Send each part's good orders to the inbox while the next part is checked; whether all of the file's
    good orders are stored. A bad row (without ``quarantine``) stops the sending and rolls back what was
    sent, the check going on to name every bad row; a known order among them (the unique key refuses the
    COPY) rolls it back too, and the file is stored the other way."""
    try:
        with csv_store.streaming(session, brand_id=brand_id, delivery_id=filename) as send:
            for orders in checking.parts():
                if checking.errors and not quarantine:
                    continue
                send(orders.select("order_id", "body"), None)
            if checking.errors and not quarantine:
                raise _Abandoned
    except _Abandoned:
        return False
    except UniqueViolation:
        log.info("a known order in %s: its orders are looked up and stored one way or the other", filename)
        return False
    return True


def _refused(errors: list[csvio.RowError]) -> ValidationFailedError:
    return ValidationFailedError(
        f"order import: {len(errors)} problem(s), nothing imported; first: {errors[0]}",
        details=[e.as_dict() for e in errors],
    )


def process_accepted(session: Session, report: CsvReport, accepted: Accepted) -> None:
    """Apply the accepted orders (attribution, commissions, ledger) in batches, as `events replay` would;
    an order that cannot be processed yet stays stored with its error (counted in ``failed_processing``)."""
    started = time.perf_counter()
    for start in range(0, len(accepted.waiting), service.BATCH):
        chunk = accepted.waiting[start : start + service.BATCH]
        events = _waiting_events(session, accepted.brand_id, chunk)
        parsed: dict[int, Any] = {
            e.id: accepted.parsed[e.external_id] for e in events if e.external_id in accepted.parsed
        }
        results = service.process_batch(session, events, parsed=parsed)
        report.failed_processing += sum(1 for error in results.values() if error)
        session.flush()
        for event in events:
            session.expunge(event)
    report.seconds["process"] = time.perf_counter() - started


# Just after the COPY the planner's statistics may still see an empty inbox, and a list of ids compared with every
# row of a sequential scan is quadratic over a file; a join from the id array stays linear whatever plan it gets.
_WAITING_POSTGRESQL = text("""
SELECT e.* FROM unnest(:ids) AS i(external_id)
JOIN inbox_events e
  ON e.brand_id = :brand_id AND e.source = 'csv' AND e.kind = 'order' AND e.external_id = i.external_id
ORDER BY e.id
""").bindparams(bindparam("ids", type_=ARRAY(String)))


def _waiting_events(session: Session, brand_id: int, order_ids: list[str]) -> list[InboxEvent]:
    if session.get_bind().dialect.name == "postgresql":
        statement = select(InboxEvent).from_statement(_WAITING_POSTGRESQL)
        return list(session.scalars(statement, {"ids": order_ids, "brand_id": brand_id}))
    where = (InboxEvent.brand_id == brand_id, InboxEvent.source == "csv", InboxEvent.kind == "order")
    return list(session.scalars(select(InboxEvent).where(*where, InboxEvent.external_id.in_(order_ids))))


def import_orders(
    session: Session,
    actor: Actor,
    *,
    brand: Brand,
    data: bytes | str,
    quarantine: bool = False,
    filename: str = "upload.csv",
) -> CsvReport:
    """Import an order CSV: accept it (check, store raw), then process what was stored. Default: any bad
    row and nothing is imported (the 422 lists every bad row). With ``quarantine``: good orders are imported
    and bad rows are reported for a rejects file."""
    report, accepted = accept_orders(session, actor, brand=brand, data=data, quarantine=quarantine, filename=filename)
    process_accepted(session, report, accepted)
    record_import(session, actor, brand=brand, report=report, filename=filename)
    return report


def record_import(session: Session, actor: Actor, *, brand: Brand, report: CsvReport, filename: str) -> None:
    """The import in the audit trail, once its orders are stored and processed."""
    audit.record(
        session,
        actor,
        "order.imported",
        ("orders", f"csv:{filename}", brand.id),
        after={"orders": report.orders, "duplicates": report.duplicates, "rejected_rows": len(report.rejected)},
    )

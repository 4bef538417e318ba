"""Bulk order CSV (INTERFACES §5): one row per order line; all-or-nothing with a line-numbered report,
or quarantine: good orders import, bad rows go to a rejects file with their reasons."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.ingest import schemas, service
from clearline.kit import csvio
from clearline.kit.errors import ValidationFailedError
from clearline.models import Brand, InboxEvent

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
IMPORTERS = ("finance",)


@dataclass
class CsvReport:
    orders: int = 0
    duplicates: int = 0
    rows: int = 0
    rejected: list[csvio.RowError] = field(default_factory=list)
    failed_processing: int = 0
    source_rows: dict[int, dict[str, str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per step: check, store, process

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


def _order_payload(rows: Rows) -> tuple[schemas.OrderIn | None, dict[str, Any], list[csvio.RowError]]:
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


def import_orders(
    session: Session,
    actor: Actor,
    *,
    brand: Brand,
    data: bytes | str,
    quarantine: bool = False,
    filename: str = "upload.csv",
) -> CsvReport:
    """Import an order CSV. Default: any bad row and nothing is imported (the 422 lists every bad row).
    With ``quarantine``: good orders are imported and bad rows are reported for a rejects file."""
    actor.require(*IMPORTERS, brand_id=brand.id)
    started = time.perf_counter()
    grouped, errors, raw = _group(data)
    report = CsvReport(rows=len(raw), source_rows=raw)
    good: list[tuple[schemas.OrderIn, dict[str, Any], Rows]] = []
    for order_id, rows in grouped.items():
        parsed, payload, problems = _order_payload(rows)
        if problems or parsed is None:
            errors.extend(problems + _whole_order(order_id, rows, problems))
        else:
            good.append((parsed, payload, rows))
    if not raw:
        errors.append(csvio.RowError(2, "file", "no data rows"))
    if errors and not quarantine:
        errors.sort(key=lambda e: (e.line, e.column))
        raise ValidationFailedError(
            f"order import: {len(errors)} problem(s), nothing imported; first: {errors[0]}",
            details=[e.as_dict() for e in errors],
        )
    # Store first, all of it in a few statements; then process what is new (or stored but still waiting).
    checked = time.perf_counter()
    items = []
    for _, payload, _ in good:
        # Canonical JSON (what `service.body_digest` compares), so its digest is the digest of the text.
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        items.append((payload["order_id"], body, hashlib.sha256(body.encode()).hexdigest()))
    answers = service.store_many(
        session, brand_id=brand.id, source="csv", kind="order", items=items, delivery_id=filename
    )
    waiting: list[tuple[int, schemas.OrderIn]] = []
    for (parsed, payload, rows), stored in zip(good, answers, strict=True):
        if stored.conflict:
            errors.extend(
                csvio.RowError(line, "order_id", f"order {payload['order_id']} was imported before with other content")
                for line, _ in rows
            )
        elif stored.duplicate and stored.handled:
            report.duplicates += 1
        else:
            report.duplicates += stored.duplicate
            report.orders += not stored.duplicate
            waiting.append((stored.event_id, parsed))
    errors.sort(key=lambda e: (e.line, e.column))
    if errors and not quarantine:
        raise ValidationFailedError(
            f"order import: {len(errors)} problem(s), nothing imported; first: {errors[0]}",
            details=[e.as_dict() for e in errors],
        )
    report.rejected = errors
    stored_at = time.perf_counter()
    for start in range(0, len(waiting), service.BATCH):
        chunk = dict(waiting[start : start + service.BATCH])
        events = list(session.scalars(select(InboxEvent).where(InboxEvent.id.in_(list(chunk)))))
        results = service.process_batch(session, events, parsed=chunk)
        report.failed_processing += sum(1 for error in results.values() if error)
        session.flush()
        for event in events:
            session.expunge(event)
    done = time.perf_counter()
    report.seconds = {"check": checked - started, "store": stored_at - checked, "process": done - stored_at}
    audit.record(
        session,
        actor,
        "order.imported",
        ("orders", f"csv:{filename}", brand.id),
        after={"orders": report.orders, "duplicates": report.duplicates, "rejected_rows": len(errors)},
    )
    return report

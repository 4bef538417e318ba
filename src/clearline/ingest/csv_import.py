"""Bulk order CSV (INTERFACES §5): one row per order line; all-or-nothing with a line-numbered report,
or quarantine: good orders import, bad rows go to a rejects file with their reasons."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.ingest import schemas, service
from clearline.kit import csvio
from clearline.kit.errors import ValidationFailedError
from clearline.models import Brand

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

    def rejects_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["line", "column", "reason"])
        for error in self.rejected:
            writer.writerow([error.line, error.column, error.message])
        return out.getvalue()


def _flag(value: str) -> bool | None:
    value = value.strip().lower()
    if value in ("", "unknown"):
        return None
    if value in ("true", "1", "yes", "y"):
        return True
    if value in ("false", "0", "no", "n"):
        return False
    raise csvio.RowInvalid("new_customer", f"{value!r} is not true/false")


def _group(data: bytes | str) -> tuple[dict[str, list[tuple[int, dict[str, str]]]], list[csvio.RowError]]:
    orders: dict[str, list[tuple[int, dict[str, str]]]] = {}
    errors: list[csvio.RowError] = []
    for line, row in csvio.read_rows(data, required=REQUIRED, optional=COLUMNS):
        if "__extra__" in row:
            errors.append(csvio.RowError(line, "row", "more fields than the header"))
            continue
        if not row.get("order_id"):
            errors.append(csvio.RowError(line, "order_id", "required"))
            continue
        orders.setdefault(row["order_id"], []).append((line, row))
    return orders, errors


def _order_payload(rows: list[tuple[int, dict[str, str]]]) -> tuple[dict[str, Any] | None, list[csvio.RowError]]:
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
    try:
        schemas.OrderIn.model_validate(payload)
    except ValidationError as exc:
        for error in exc.errors():
            loc = [str(p) for p in error["loc"]]
            if loc and loc[0] == "lines" and len(loc) > 1:
                line = rows[int(loc[1])][0]
                column = loc[2] if len(loc) > 2 else "line"
            else:
                line, column = rows[0][0], ".".join(loc) or "row"
            message = error["msg"]
            if column == "row" and "lines." in message:  # cross-field checks name their line index
                column = "lines"
            errors.append(csvio.RowError(line, column, message))
    return (None if errors else payload), errors


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
    grouped, errors = _group(data)
    report = CsvReport(rows=sum(len(r) for r in grouped.values()) + len(errors))
    good: list[dict[str, Any]] = []
    for rows in grouped.values():
        payload, problems = _order_payload(rows)
        if problems:
            errors.extend(problems)
        else:
            good.append(payload)  # type: ignore[arg-type]
    errors.sort(key=lambda e: (e.line, e.column))
    if not grouped and not errors:
        errors.append(csvio.RowError(2, "file", "no data rows"))
    if errors and not quarantine:
        raise ValidationFailedError(
            f"order import: {len(errors)} problem(s), nothing imported; first: {errors[0]}",
            details=[e.as_dict() for e in errors],
        )
    report.rejected = errors
    for payload in good:
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        event, duplicate = service.store(
            session,
            brand_id=brand.id,
            source="csv",
            kind="order",
            external_id=payload["order_id"],
            body=body,
            delivery_id=filename,
        )
        if duplicate:
            report.duplicates += 1
            continue
        report.orders += 1
        if service.process(session, event, parsed=schemas.OrderIn.model_validate(payload)):
            report.failed_processing += 1
    audit.record(
        session,
        actor,
        "order.imported",
        ("orders", f"csv:{filename}", brand.id),
        after={"orders": report.orders, "duplicates": report.duplicates, "rejected_rows": len(errors)},
    )
    return report

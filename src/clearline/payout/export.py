"""The finance files of INTERFACES §6 (payout CSV) and §7 (payout detail CSV), and reconciliation (§8)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.kit import csvio, money
from clearline.kit.clock import parse_datetime, utcnow
from clearline.kit.errors import ConflictError
from clearline.models import Attribution, Brand, CommissionLine, Order, PayoutItem, Reconciliation
from clearline.payout.service import get_run, run_lines

PAYOUT_COLUMNS = [
    "payout_run_id", "payout_line_id", "payee_type", "payee_id", "payee_name", "payee_vendor_id", "brand",
    "cost_center", "gl_account", "currency", "period_start", "period_end", "commission_amount", "retainer_amount",
    "adjustment_amount", "clawback_amount", "total_amount", "order_count", "commission_line_count", "contract_id",
    "contract_version", "contract_accepted_at", "brief_approved_at", "link_signed_off_at", "run_approved_by",
    "run_approved_at", "invoice_reference",
]
DETAIL_COLUMNS = [
    "payout_line_id", "order_id", "order_created_at", "line_no", "sku", "quantity", "net_revenue", "gross_margin",
    "basis", "rate", "commission_amount", "attributed_via", "click_id", "coupon_code", "contract_version",
    "eligible_at",
]
BASIS = {"cpa_unit": "unit", "cpa_order": "order", "revshare_net_revenue": "net_revenue",
         "revshare_gross_margin": "gross_margin", "volume_bonus": "volume_bonus"}


def _iso(value: dt.datetime | None) -> str:
    return "" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _csv(header: list[str], rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def payout_csv(session: Session, actor: Actor, *, run_id: int) -> str:
    run = get_run(session, actor, run_id)
    brand = session.get(Brand, run.brand_id)
    assert brand is not None
    rows = []
    for line in run_lines(session, run.id):
        amount = lambda minor, c=line.currency: money.format_minor(minor, c)  # noqa: E731
        rows.append([
            run.id, line.id, line.payee_type, line.payee_id, line.payee_name, line.payee_vendor_id, brand.slug,
            brand.cost_center, brand.gl_account, line.currency, _iso(run.period_start), _iso(run.period_end),
            amount(line.commission_amount), amount(line.retainer_amount), amount(line.adjustment_amount),
            amount(line.clawback_amount), amount(line.total_amount), line.order_count, line.commission_line_count,
            line.contract_id or "", line.contract_version or "", _iso(line.contract_accepted_at),
            _iso(line.brief_approved_at), _iso(line.link_signed_off_at), run.approved_by_label,
            _iso(run.approved_at), line.invoice_reference])
    return _csv(PAYOUT_COLUMNS, rows)


def detail_csv(session: Session, actor: Actor, *, run_id: int) -> str:
    """One row per commission paid (commission and reserve items, not retainers, adjustments or clawbacks):
    the rows of a payout line sum to its commission_amount."""
    run = get_run(session, actor, run_id)
    stmt = (select(PayoutItem, CommissionLine, Order, Attribution)
            .join(CommissionLine, CommissionLine.id == PayoutItem.commission_line_id)
            .outerjoin(Order, Order.id == CommissionLine.order_id)
            .outerjoin(Attribution, Attribution.id == CommissionLine.attribution_id)
            .where(PayoutItem.run_id == run.id, PayoutItem.kind.in_(("commission", "reserve")))
            .order_by(PayoutItem.payout_line_id, PayoutItem.id))
    rows = []
    for item, c, order, attribution in session.execute(stmt):
        basis = "reserve_release" if item.kind == "reserve" else BASIS.get(c.rule, c.rule)
        rows.append([
            item.payout_line_id, order.external_id if order else "", _iso(order.ordered_at) if order else "",
            c.line_no or "", c.sku, c.quantity, money.format_minor(c.net_revenue_amount, c.order_currency),
            money.format_minor(c.gross_margin_amount, c.order_currency), basis, c.rate,
            money.format_minor(item.amount, c.currency), attribution.via if attribution else "",
            attribution.click_id if attribution else "", attribution.coupon_code if attribution else "",
            c.contract_version, _iso(c.eligible_at)])
    return _csv(DETAIL_COLUMNS, rows)


def export(session: Session, actor: Actor, *, run_id: int) -> tuple[str, str]:
    """Both files of an approved run; the export is recorded (time, who)."""
    run = get_run(session, actor, run_id)
    if run.status not in ("approved", "paid", "reconciled"):
        # A discarded run has no lines left: exporting it would hand finance an empty but valid-looking file.
        raise ConflictError(f"run {run.id} is {run.status}, not approved: finance imports approved runs only")
    files = payout_csv(session, actor, run_id=run.id), detail_csv(session, actor, run_id=run.id)
    if run.exported_at is None:
        run.exported_at = utcnow()
    audit.record(session, actor, "payout_run.exported", run, after={"exported_at": run.exported_at})
    return files


RECONCILE_COLUMNS = ["payout_line_id", "paid_amount", "currency", "paid_at", "reference"]


def reconcile(session: Session, actor: Actor, *, run_id: int, data: bytes | str) -> Reconciliation:
    """Match finance's paid file to the run: matched, mismatched (both amounts), missing, unknown; accuracy."""
    run = get_run(session, actor, run_id)
    if run.status not in ("approved", "paid", "reconciled"):
        raise ConflictError(f"run {run.id} is {run.status}; only an approved run can be reconciled")

    def convert(row: dict[str, str]) -> dict[str, object]:
        try:
            line_id = int(row["payout_line_id"])
        except ValueError:
            raise csvio.RowInvalid("payout_line_id", f"{row['payout_line_id']!r} is not a number") from None
        try:
            currency = money.check_currency(row["currency"])
            amount = money.parse_to_minor(row["paid_amount"], currency, field="paid_amount")
        except money.MoneyError as exc:
            raise csvio.RowInvalid("paid_amount" if "amount" in str(exc) else "currency", str(exc)) from None
        if row.get("paid_at"):
            try:
                parse_datetime(row["paid_at"])
            except ValueError:
                raise csvio.RowInvalid("paid_at", f"{row['paid_at']!r} is not an ISO 8601 time") from None
        return {"line_id": line_id, "currency": currency, "amount": amount, "reference": row.get("reference", "")}

    parsed = csvio.parse(data, required=RECONCILE_COLUMNS, convert=convert)
    # A line paid twice in the file would otherwise be matched on its last row and the double payment lost.
    first_seen: dict[int, int] = {}
    for line_no, row in parsed.rows:
        line_id = int(row["line_id"])  # type: ignore[call-overload]
        if line_id in first_seen:
            parsed.errors.append(csvio.RowError(line_no, "payout_line_id",
                                                f"payout line {line_id} is already on line {first_seen[line_id]}"))
        else:
            first_seen[line_id] = line_no
    parsed.errors.sort(key=lambda e: e.line)
    csvio.raise_if_errors(parsed, "paid file")
    lines = {line.id: line for line in run_lines(session, run.id)}
    paid = {}
    details: list[dict[str, object]] = []
    for line_no, row in parsed.rows:
        line_id = int(row["line_id"])  # type: ignore[call-overload]
        if line_id not in lines:
            details.append({"payout_line_id": line_id, "status": "unknown", "file_line": line_no})
            continue
        paid[line_id] = row
    matched = mismatched = missing = 0
    for line_id, line in lines.items():
        row = paid.get(line_id)
        expected = money.format_minor(line.total_amount, line.currency)
        if row is None:
            missing += 1
            details.append({"payout_line_id": line_id, "status": "missing", "expected": expected})
        elif row["amount"] == line.total_amount and row["currency"] == line.currency:
            matched += 1
            details.append({"payout_line_id": line_id, "status": "matched", "expected": expected})
        else:
            mismatched += 1
            details.append({"payout_line_id": line_id, "status": "mismatched", "expected": expected,
                            "expected_currency": line.currency, "paid_currency": row["currency"],
                            "paid": money.format_minor(int(row["amount"]), str(row["currency"]))})  # type: ignore[call-overload]
    unknown = sum(1 for d in details if d["status"] == "unknown")
    accuracy = Decimal(matched) / len(lines) if lines else Decimal(0)
    result = Reconciliation(run_id=run.id, imported_by_label=actor.label, matched=matched, mismatched=mismatched,
                            missing=missing, unknown=unknown, accuracy_bp=money.round_units(accuracy * 10000),
                            details=sorted(details, key=lambda d: (str(d["status"]), int(d["payout_line_id"]))))  # type: ignore[call-overload]
    session.add(result)
    if mismatched == missing == unknown == 0:
        run.status = "reconciled"
    session.flush()
    audit.record(session, actor, "payout_run.reconciled", run, after={
        "matched": matched, "mismatched": mismatched, "missing": missing, "unknown": unknown,
        "accuracy": f"{accuracy:.4f}"})
    return result


def latest_reconciliation(session: Session, run_id: int) -> Reconciliation | None:
    return session.scalar(select(Reconciliation).where(Reconciliation.run_id == run_id)
                          .order_by(Reconciliation.id.desc()).limit(1))

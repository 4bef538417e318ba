"""The finance files of INTERFACES §6 (payout CSV) and §7 (payout detail CSV), and reconciliation (§8)."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
from collections.abc import Callable
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
    if value is None:
        return ""
    if value.utcoffset() != dt.timedelta(0):  # stored times come back in UTC already; convert anything else
        value = value.astimezone(dt.UTC)
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}Z"


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


@functools.cache
def _amounts(currency: str) -> Callable[[int], str]:
    """money.format_minor for one currency, as integer arithmetic: the detail file formats three amounts on each
    of a million rows, and the Decimal round trip was most of its time. Same text, digit for digit."""
    digits = money.exponent(currency)
    if digits == 0:
        return str
    scale = 10**digits

    def render(minor: int) -> str:
        whole, part = divmod(abs(minor), scale)
        return f"{'-' if minor < 0 else ''}{whole}.{part:0{digits}d}"

    return render


def detail_csv(session: Session, actor: Actor, *, run_id: int) -> str:
    """One row per commission paid (commission and reserve items, not retainers, adjustments or clawbacks):
    the rows of a payout line sum to its commission_amount. Columns only, streamed through Core: no ORM
    handling per row (a million-line run writes a million rows)."""
    run = get_run(session, actor, run_id)
    stmt = (select(PayoutItem.payout_line_id, PayoutItem.kind, PayoutItem.amount, CommissionLine.rule,
                   CommissionLine.line_no, CommissionLine.sku, CommissionLine.quantity,
                   CommissionLine.net_revenue_amount, CommissionLine.gross_margin_amount, CommissionLine.order_currency,
                   CommissionLine.rate, CommissionLine.currency, CommissionLine.contract_version,
                   CommissionLine.eligible_at, Order.external_id, Order.ordered_at, Attribution.via,
                   Attribution.click_id, Attribution.coupon_code)
            .join(CommissionLine, CommissionLine.id == PayoutItem.commission_line_id)
            .outerjoin(Order, Order.id == CommissionLine.order_id)
            .outerjoin(Attribution, Attribution.id == CommissionLine.attribution_id)
            .where(PayoutItem.run_id == run.id, PayoutItem.kind.in_(("commission", "reserve")))
            .order_by(PayoutItem.payout_line_id, PayoutItem.id))
    session.flush()  # Core execution below does not autoflush
    streamed = session.connection().execute(stmt.execution_options(stream_results=True, yield_per=10_000))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(DETAIL_COLUMNS)
    for (line_id, kind, amount, rule, line_no, sku, quantity, net, margin, order_currency, rate, currency, version,
         eligible_at, order_id, ordered_at, via, click_id, coupon_code) in streamed:
        in_order = _amounts(order_currency)
        writer.writerow([
            line_id, order_id or "", _iso(ordered_at), line_no or "", sku, quantity, in_order(net), in_order(margin),
            "reserve_release" if kind == "reserve" else BASIS.get(rule, rule), rate, _amounts(currency)(amount),
            via or "", click_id or "", coupon_code or "", version, _iso(eligible_at)])
    return out.getvalue()


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
        found = paid.get(line_id)
        expected = money.format_minor(line.total_amount, line.currency)
        if found is None:
            missing += 1
            details.append({"payout_line_id": line_id, "status": "missing", "expected": expected})
        elif found["amount"] == line.total_amount and found["currency"] == line.currency:
            matched += 1
            details.append({"payout_line_id": line_id, "status": "matched", "expected": expected})
        else:
            mismatched += 1
            details.append({"payout_line_id": line_id, "status": "mismatched", "expected": expected,
                            "expected_currency": line.currency, "paid_currency": found["currency"],
                            "paid": money.format_minor(int(found["amount"]), str(found["currency"]))})  # type: ignore[call-overload]
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

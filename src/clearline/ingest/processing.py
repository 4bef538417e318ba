"""Processing many stored inbox events at once, with exactly the outcome of `service.process` per event.

New orders of a batch are applied set-wise inside one savepoint: their orders, lines, attributions and
commission lines are written as plain rows, one statement each per batch (COPY on PostgreSQL, a multi-row
INSERT … RETURNING on SQLite), without an ORM object per row; what attribution and accrual read (coupons,
clicks, UTM creators and campaigns, contracts, SKUs, FX rates, period totals) is read once per batch; every
accrual goes to the ledger in one post. Refunds are applied set-wise too: their orders, lines, current
attributions and commission lines are read for the batch in a few statements, each refund is fitted and
reversed in the order it came (refunds of one order in rounds, so each sees the ones before it), and every
reversal and clawback is posted in one ledger post.

An order that fails rolls the savepoint back and goes through `service.process` alone (kept with its error),
and the rest is tried again. A refund that cannot apply yet (its order unknown, or it does not fit what is
left of the order) is found before anything is written and goes through `service.process` alone as well.
WooCommerce orders (their refunds ride on the order) go through `service.process` one by one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import JSON, String, Table, bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from clearline.attribution import service as attribution_service
from clearline.commission import service as commission_service
from clearline.ingest import schemas, service
from clearline.kit.clock import utcnow
from clearline.kit.errors import ValidationFailedError
from clearline.ledger import service as ledger
from clearline.models import Attribution, CommissionLine, InboxEvent, Order, OrderLine, Refund

log = logging.getLogger(__name__)

MAX_RETRIES = 3  # a batch with more failing events than this goes through one by one
CHUNK = 1000  # ids per IN (...) list


class _EventFailed(Exception):
    def __init__(self, event: InboxEvent, data: Any) -> None:
        self.event, self.data = event, data


def process_batch(
    session: Session, events: Sequence[InboxEvent], *, parsed: dict[int, Any] | None = None
) -> dict[int, str]:
    """See `service.process_batch`: orders first (set-wise), then WooCommerce orders one by one, then
    refunds (set-wise), each in the order given."""
    parsed = parsed or {}
    results: dict[int, str] = {}
    orders: list[InboxEvent] = []
    platform_orders: list[InboxEvent] = []
    refunds: list[InboxEvent] = []
    for event in events:
        if event.handled_at is not None:
            results[event.id] = ""
        elif event.kind == "order" and event.source != "woocommerce":
            orders.append(event)
        elif event.kind == "order":
            platform_orders.append(event)
        else:
            refunds.append(event)
    for start in range(0, len(orders), service.BATCH):
        _in_savepoint(
            session, _parse(session, orders[start : start + service.BATCH], parsed, results), _apply_orders, results
        )
    for event in platform_orders:
        results[event.id] = service.process(session, event, parsed=parsed.get(event.id))
    for start in range(0, len(refunds), service.BATCH):
        _in_savepoint(
            session, _parse(session, refunds[start : start + service.BATCH], parsed, results), _apply_refunds, results
        )
    return results


def _parse(
    session: Session, events: list[InboxEvent], parsed: dict[int, Any], results: dict[int, str]
) -> list[tuple[InboxEvent, Any]]:
    """Each event with its validated payload; one that does not validate goes through `process` (which keeps
    it with its error, exactly as for one event)."""
    items = []
    for event in events:
        data = parsed.get(event.id)
        if not isinstance(data, schemas.OrderIn | schemas.RefundIn):
            try:
                data = service.normalise(event.source, event.kind, json.loads(event.body))
            except Exception:  # noqa: BLE001 - `process` records why, exactly as for one event
                results[event.id] = service.process(session, event)
                continue
        items.append((event, data))
    return items


def _in_savepoint(session: Session, items: list[tuple[InboxEvent, Any]], apply: Any, results: dict[int, str]) -> None:
    for _attempt in range(MAX_RETRIES + 1):
        if not items:
            return
        try:
            with session.begin_nested():
                alone = apply(session, items)
        except _EventFailed as failure:
            # The savepoint is gone; the failing event is processed alone (stored with its error), the rest again.
            results[failure.event.id] = service.process(session, failure.event, parsed=failure.data)
            items = [(e, d) for e, d in items if e is not failure.event]
            continue
        except Exception:  # noqa: BLE001 - a statement failed for the batch as a whole: one by one, each isolated
            log.warning("a batch of %d events failed as a whole; processing them one by one", len(items))
            break
        for event, data in alone:
            # Could not apply yet and wrote nothing: `process` keeps each with its error.
            results[event.id] = service.process(session, event, parsed=data)
        for event, _ in items:
            results.setdefault(event.id, "")
        return
    for event, data in items:
        results[event.id] = service.process(session, event, parsed=data)


# --- writing plain rows ---------------------------------------------------------------------------------


def _insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows (the same keys in each) and return their new ids, in the order given. Columns left out get
    their model default, as a flush would give them."""
    if not rows:
        return []
    missing: dict[str, Any] = {}
    for column in table.columns:
        if column.name == "id" or column.name in rows[0]:
            continue
        default = column.default
        if default is None:
            missing[column.name] = None
        elif default.is_scalar:  # type: ignore[attr-defined]
            missing[column.name] = default.arg  # type: ignore[attr-defined]
        elif default.is_callable:  # type: ignore[attr-defined]
            missing[column.name] = default.arg(None)  # type: ignore[attr-defined]
        else:
            raise NotImplementedError(f"{table.name}.{column.name}: a SQL default cannot be written as a value")
    if missing:
        rows = [{**row, **missing} for row in rows]
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite":
        return _insert_sqlite(session, table, rows)
    if dialect.name != "postgresql":
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(session.scalars(statement, rows))
    from psycopg.types.json import Json

    ids = sorted(
        session.scalars(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
            {"table": table.name, "n": len(rows)},
        )
    )
    names = list(rows[0])
    is_json = [isinstance(table.c[name].type, JSON) for name in names]
    columns = ", ".join(f'"{name}"' for name in ["id", *names])
    driver = session.connection().connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:  # type: ignore[union-attr]
        for ident, row in zip(ids, rows, strict=True):
            values = [ident]
            for name, json_value in zip(names, is_json, strict=True):
                value = row[name]
                values.append(Json(value) if json_value and value is not None else value)
            copy.write_row(values)
    return ids


SQLITE_PARAMETERS = 999  # host parameters a statement may have on the oldest SQLite still in use


def _insert_sqlite(session: Session, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Multi-row INSERT … RETURNING id through the driver's cursor, each value converted by its column type's
    own bind processor (what SQLAlchemy would send, without its per-row statement machinery). SQLite numbers
    the rows of one INSERT in the order of its VALUES, so the returned ids, sorted, follow the rows."""
    dialect = session.get_bind().dialect
    names = list(rows[0])
    processors = [table.c[name].type._cached_bind_processor(dialect) for name in names]
    columns = ", ".join(f'"{name}"' for name in names)
    placeholder = "(" + ", ".join("?" * len(names)) + ")"
    per_statement = max(1, SQLITE_PARAMETERS // len(names))
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    ids: list[int] = []
    try:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params = [
                process(row[name]) if process is not None else row[name]
                for row in chunk
                for name, process in zip(names, processors, strict=True)
            ]
            # Table and column names come from the model, every value is a parameter.
            values = ", ".join([placeholder] * len(chunk))
            sql = f'INSERT INTO "{table.name}" ({columns}) VALUES {values} RETURNING id'  # noqa: S608
            ids += sorted(ident for (ident,) in cursor.execute(sql, params).fetchall())
    finally:
        cursor.close()
    return ids


@dataclass(slots=True)
class _Order:
    """A written order as attribution and accrual read it."""

    id: int
    brand_id: int
    external_id: str
    ordered_at: dt.datetime
    currency: str
    is_new_customer: bool | None
    coupon_codes: list[str]
    click_id: str
    landing_url: str


@dataclass(slots=True)
class _Line:
    id: int
    line_no: int
    sku: str
    quantity: int
    net_amount: int


@dataclass(slots=True)
class _Attribution:
    id: int
    creator_id: int | None
    campaign_id: int | None
    contract_id: int | None


# --- orders ---------------------------------------------------------------------------------------------

# A whole import is one transaction, so the planner's statistics still see an empty orders table while it fills:
# an IN list was then checked against every row of a sequential scan (quadratic over a file). A join from the
# id array stays linear whichever plan it gets.
_KNOWN_POSTGRESQL = text("""
SELECT o.external_id FROM unnest(:ids) AS i(external_id)
JOIN orders o ON o.brand_id = :brand_id AND o.external_id = i.external_id
""").bindparams(bindparam("ids", type_=ARRAY(String)))


def _known(session: Session, brand_id: int, ids: set[str]) -> list[str]:
    """Which of these order ids the brand already has."""
    if session.get_bind().dialect.name == "postgresql":
        return list(session.scalars(_KNOWN_POSTGRESQL, {"ids": sorted(ids), "brand_id": brand_id}))
    return list(
        session.scalars(select(Order.external_id).where(Order.brand_id == brand_id, Order.external_id.in_(ids)))
    )


def _apply_orders(session: Session, items: list[tuple[InboxEvent, schemas.OrderIn]]) -> list[Any]:
    now = utcnow()
    wanted: dict[int, set[str]] = {}
    for event, data in items:
        wanted.setdefault(event.brand_id, set()).add(data.order_id)
    known = {
        (brand_id, external_id) for brand_id, ids in wanted.items() for external_id in _known(session, brand_id, ids)
    }
    new: list[tuple[InboxEvent, schemas.OrderIn]] = []
    for event, data in items:
        key = (event.brand_id, data.order_id)
        if key in known:  # applied before (another source, an earlier event): idempotent per order id
            continue
        known.add(key)
        new.append((event, data))
    order_rows = [
        service.order_values(event.brand_id, data, source=event.source, event_id=event.id, now=now)
        for event, data in new
    ]
    order_ids = _insert(session, Order.__table__, order_rows)  # type: ignore[arg-type]
    orders = [
        _Order(
            ident,
            row["brand_id"],
            row["external_id"],
            row["ordered_at"],
            row["currency"],
            row["is_new_customer"],
            row["coupon_codes"],
            row["click_id"],
            row["landing_url"],
        )
        for ident, row in zip(order_ids, order_rows, strict=True)
    ]
    line_rows = [
        row for order, (_, data) in zip(orders, new, strict=True) for row in service.line_values(order.id, data)
    ]
    line_ids = iter(_insert(session, OrderLine.__table__, line_rows))  # type: ignore[arg-type]
    lines: list[list[_Line]] = []
    rows = iter(line_rows)
    for _, data in new:
        group = []
        for _line in data.lines:
            row = next(rows)
            group.append(_Line(next(line_ids), row["line_no"], row["sku"], row["quantity"], row["net_amount"]))
        lines.append(group)

    attribution_lookups = attribution_service.Lookups(session)
    attribution_lookups.prefetch(orders)
    attribution_rows = []
    for (event, data), order in zip(new, orders, strict=True):
        try:
            attribution_rows.append(
                attribution_service.decide_values(session, order=order, lookups=attribution_lookups)
            )
        except Exception as exc:
            raise _EventFailed(event, data) from exc
    for row in attribution_rows:
        row["created_at"] = now
    attribution_ids = _insert(session, Attribution.__table__, attribution_rows)  # type: ignore[arg-type]

    commission_lookups = commission_service.Lookups(session)
    skus: dict[int, list[str]] = {}
    for order, (_, data) in zip(orders, new, strict=True):
        skus.setdefault(order.brand_id, []).extend(line.sku for line in data.lines)
    for brand_id, names in skus.items():
        commission_lookups.skus(brand_id, names)  # every SKU of the batch in one statement
    commission_rows: list[dict[str, Any]] = []
    owners: list[_Order] = []
    for (event, data), order, group, ident, row in zip(
        new, orders, lines, attribution_ids, attribution_rows, strict=True
    ):
        if row["contract_id"] is None:
            continue
        attribution = _Attribution(ident, row["creator_id"], row["campaign_id"], row["contract_id"])
        try:
            created = commission_service.line_values(
                session, order=order, lines=group, attribution=attribution, lookups=commission_lookups
            )
        except Exception as exc:
            raise _EventFailed(event, data) from exc
        commission_rows += created
        owners += [order] * len(created)
    for row in commission_rows:
        row["created_at"] = now
    commission_ids = _insert(session, CommissionLine.__table__, commission_rows)  # type: ignore[arg-type]
    transfers = []
    for ident, row, order in zip(commission_ids, commission_rows, owners, strict=True):
        row["id"] = ident
        transfers.append(commission_service.accrual_transfer(order, row))
    ledger.post(session, transfers)
    _handled(session, [event for event, _ in items], now)
    return []


def _handled(session: Session, events: list[InboxEvent], now: dt.datetime) -> None:
    """Mark the events handled: one UPDATE, and the loaded objects told so (as if read back, nothing to flush)."""
    if not events:
        return
    table = cast(Table, InboxEvent.__table__)
    for chunk in _chunks([event.id for event in events]):
        session.execute(update(table).where(table.c.id.in_(chunk)).values(handled_at=now, error=""))
    for event in events:
        set_committed_value(event, "handled_at", now)
        set_committed_value(event, "error", "")


# --- refunds --------------------------------------------------------------------------------------------


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[start : start + CHUNK] for start in range(0, len(values), CHUNK)]


def _apply_refunds(session: Session, items: list[tuple[InboxEvent, schemas.RefundIn]]) -> list[Any]:
    """Apply refunds set-wise; the ones that cannot apply yet (and wrote nothing) are returned."""
    now = utcnow()
    refund_ids: dict[int, set[str]] = {}
    order_keys: dict[int, set[str]] = {}
    for event, data in items:
        refund_ids.setdefault(event.brand_id, set()).add(data.refund_id)
        order_keys.setdefault(event.brand_id, set()).add(data.order_id)
    seen: set[tuple[int, str]] = set()
    for brand_id, wanted in refund_ids.items():
        for chunk in _chunks(sorted(wanted)):
            seen.update(
                (brand_id, external_id)
                for external_id in session.scalars(
                    select(Refund.external_id).where(Refund.brand_id == brand_id, Refund.external_id.in_(chunk))
                )
            )
    orders: dict[tuple[int, str], Order] = {}
    for brand_id, wanted in order_keys.items():
        for chunk in _chunks(sorted(wanted)):
            for order in session.scalars(select(Order).where(Order.brand_id == brand_id, Order.external_id.in_(chunk))):
                orders[(brand_id, order.external_id)] = order
    order_ids = sorted(order.id for order in orders.values())
    lines: dict[int, list[OrderLine]] = {ident: [] for ident in order_ids}
    current: dict[int, int] = {}
    attributions: list[Attribution] = []
    commission_lines: dict[int, list[CommissionLine]] = {ident: [] for ident in order_ids}
    for chunk in _chunks(order_ids):
        for line in session.scalars(
            select(OrderLine).where(OrderLine.order_id.in_(chunk)).order_by(OrderLine.order_id, OrderLine.line_no)
        ):
            lines[line.order_id].append(line)
        for attribution in session.scalars(
            select(Attribution).where(Attribution.order_id.in_(chunk), Attribution.is_current.is_(True))
        ):
            current[attribution.order_id] = attribution.id
            attributions.append(attribution)  # held: a per-order CPA's reversal reads it by id, from the session
        for c in session.scalars(
            select(CommissionLine).where(CommissionLine.order_id.in_(chunk)).order_by(CommissionLine.id)
        ):
            if c.order_id is not None:
                commission_lines[c.order_id].append(c)
    for order_id, group in commission_lines.items():
        commission_lines[order_id] = [c for c in group if c.attribution_id == current.get(order_id)]

    # Refunds of one order apply in rounds, in the order given: the k-th refund of every order in round k, so
    # each is fitted and reversed after the ones before it, as one by one. From a refund that cannot apply in
    # the batch on, an order's refunds go through `process` alone, in their order, after the batch.
    alone: dict[int, tuple[InboxEvent, Any]] = {}
    rounds: list[list[tuple[int, InboxEvent, schemas.RefundIn, Order]]] = []
    per_order: dict[int, int] = {}
    scheduled: set[tuple[int, str]] = set()
    blocked: set[int] = set()
    for index, (event, data) in enumerate(items):
        key = (event.brand_id, data.refund_id)
        if key in seen:  # recorded before: idempotent per refund id
            continue
        found = orders.get((event.brand_id, data.order_id))
        if found is None:  # waits for its order (and so does a later refund under the same id)
            scheduled.add(key)
            alone[index] = (event, data)
            continue
        if key in scheduled or found.id in blocked:  # the same id twice: it finds the first or applies after it
            blocked.add(found.id)
            alone[index] = (event, data)
            continue
        scheduled.add(key)
        k = per_order.get(found.id, 0)
        per_order[found.id] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append((index, event, data, found))
    lookups = commission_service.Lookups(session)
    transfers: list[ledger.Transfer] = []
    failed: set[int] = set()
    for refunds in rounds:
        fitted = []
        for index, event, data, order in refunds:
            if order.id in failed:
                alone[index] = (event, data)
                continue
            try:
                applied = service.fit_refund(order, lines[order.id], data)
            except ValidationFailedError:  # changed nothing; `process` keeps it with the same error
                failed.add(order.id)
                alone[index] = (event, data)
                continue
            refund = service.new_refund(event.brand_id, data, order=order, applied=applied, event_id=event.id)
            session.add(refund)
            fitted.append((event, data, order, refund, applied))
        session.flush()
        for event, data, order, refund, applied in fitted:
            preloaded = commission_service.Preloaded(
                current.get(order.id), commission_lines[order.id], lines[order.id], lookups, transfers
            )
            try:
                commission_service.reverse(session, order=order, refund=refund, applied=applied, preloaded=preloaded)
            except Exception as exc:
                raise _EventFailed(event, data) from exc
    ledger.post(session, transfers)
    waiting = {event.id for event, _ in alone.values()}
    _handled(session, [event for event, _ in items if event.id not in waiting], now)
    return [alone[index] for index in sorted(alone)]

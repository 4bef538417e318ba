"""Ingestion, nothing lost: every accepted event is stored raw in the inbox, then processed.

Processing runs in a savepoint, so an event that cannot be processed yet (an unknown order for a
refund, a missing FX rate) stays stored with its error and is picked up by `clearline events replay`.
The same event twice changes nothing; the same id with a different body is refused with 409.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import bindparam, case, select, text
from sqlalchemy.orm import Session

from clearline.config import get_settings
from clearline.ingest import schemas
from clearline.kit import money
from clearline.kit.clock import utcnow
from clearline.kit.db import UTCDateTime, insert_ignore
from clearline.kit.errors import ClearlineError, ConflictError, ValidationFailedError
from clearline.kit.security import salted_hash
from clearline.models import Brand, InboxEvent, Order, OrderLine, Refund

log = logging.getLogger(__name__)


@dataclass
class Intake:
    event_id: int
    external_id: str
    duplicate: bool
    processed: bool
    error: str = ""
    refunds: list[str] = field(default_factory=list)


def validation_error(exc: ValidationError, prefix: str = "") -> ValidationFailedError:
    details = []
    for e in exc.errors():
        cause = (e.get("ctx") or {}).get("error")
        # A cross-field check reports several fields at once: give each its own entry, as pydantic does.
        found = cause.problems if isinstance(cause, schemas.FieldProblems) else [(e["loc"], e["msg"])]
        for loc, msg in found:
            details.append({"loc": [prefix, *map(str, loc)] if prefix else list(map(str, loc)), "msg": msg})
    names = ", ".join(".".join(str(p) for p in d["loc"] if p != "") for d in details)
    return ValidationFailedError(f"invalid field(s): {names}", details=details)


def parse_json(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailedError("body is not JSON", details=[{"loc": ["body"], "msg": str(exc)}]) from None
    except RecursionError:
        raise ValidationFailedError(
            "body is nested too deeply", details=[{"loc": ["body"], "msg": "nested too deeply to read"}]
        ) from None


def normalise(source: str, kind: str, payload: Any) -> schemas.OrderIn | schemas.RefundIn:
    """Validate a payload of any source into the postback shape, naming every bad field."""
    if isinstance(payload, dict) and len(payload) == 1 and isinstance(payload.get(kind), dict):
        payload = payload[kind]  # Shopify's REST shape wraps the resource; webhooks send it bare
    if not isinstance(payload, dict):
        raise ValidationFailedError("body must be a JSON object", details=[{"loc": ["body"], "msg": "object"}])
    try:
        if source == "shopify":
            payload = schemas.shopify_order(payload) if kind == "order" else schemas.shopify_refund(payload)
        elif source == "woocommerce":
            payload = schemas.woocommerce_order(payload) if kind == "order" else schemas.woocommerce_refund(payload)
    except schemas.MappingError as exc:
        name = ".".join(map(str, exc.loc))
        raise ValidationFailedError(
            f"invalid field(s): {name}", details=[{"loc": list(map(str, exc.loc)), "msg": exc.message}]
        ) from None
    model: type[schemas.OrderIn | schemas.RefundIn] = schemas.OrderIn
    if kind != "order":
        model = schemas.RefundIn if source in ("postback", "csv") else schemas.PlatformRefundIn
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise validation_error(exc) from None


def body_digest(text: str) -> str:
    """The body's fingerprint for "same body or not": JSON compares by content, not by its spacing or key
    order, so a sender that re-serialises a retry is still sending the same event."""
    try:
        canonical = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        canonical = text
    return hashlib.sha256(canonical.encode()).hexdigest()


def store(
    session: Session,
    *,
    brand_id: int,
    source: str,
    kind: str,
    external_id: str,
    body: bytes | str,
    delivery_id: str = "",
) -> tuple[InboxEvent, bool]:
    """Insert-or-ignore into the inbox; (event, duplicate). A different body under the same id is a 409."""
    text = body.decode() if isinstance(body, bytes) else body
    digest = body_digest(text)
    statement = insert_ignore(
        InboxEvent.__table__, session.get_bind().dialect.name, conflict=["brand_id", "source", "kind", "external_id"]
    ).returning(InboxEvent.__table__.c.id)
    inserted = session.execute(
        statement,
        {
            "brand_id": brand_id,
            "source": source,
            "kind": kind,
            "external_id": external_id,
            "delivery_id": delivery_id[:128],
            "body": text,
            "body_sha256": digest,
            "received_at": utcnow(),
            "error": "",
        },
    ).scalar()
    if inserted is not None:
        return session.get(InboxEvent, inserted), False  # type: ignore[return-value]
    existing = session.scalar(
        select(InboxEvent).where(
            InboxEvent.brand_id == brand_id,
            InboxEvent.source == source,
            InboxEvent.kind == kind,
            InboxEvent.external_id == external_id,
        )
    )
    assert existing is not None
    # Rows written before bodies were compared by content carry the digest of the raw text.
    if existing.body_sha256 not in (digest, hashlib.sha256(text.encode()).hexdigest()):
        raise ConflictError(f"{kind} {external_id} was already received with a different body")
    return existing, True


@dataclass
class Stored:
    event_id: int
    duplicate: bool = False
    handled: bool = False
    conflict: bool = False


STORE_CHUNK = 1000


def store_many(
    session: Session,
    *,
    brand_id: int,
    source: str,
    kind: str,
    items: Sequence[tuple[str, str, str]],
    delivery_id: str = "",
) -> list[Stored]:
    """`store` for many events at once: (external id, body, body_digest(body)) in, one answer per item in
    the same order. A statement per thousand events instead of two per event; a different body under a known
    id is answered ``conflict`` (the caller decides whether that refuses everything)."""
    if session.get_bind().dialect.name == "postgresql":
        return _store_many_postgresql(
            session, brand_id=brand_id, source=source, kind=kind, items=items, delivery_id=delivery_id
        )
    table = InboxEvent.__table__
    statement = insert_ignore(
        table, session.get_bind().dialect.name, conflict=["brand_id", "source", "kind", "external_id"]
    ).returning(table.c.id, table.c.external_id)
    now = utcnow()
    answers: dict[str, Stored] = {}
    for start in range(0, len(items), STORE_CHUNK):
        chunk = [item for item in items[start : start + STORE_CHUNK] if item[0] not in answers]
        rows = [
            {
                "brand_id": brand_id,
                "source": source,
                "kind": kind,
                "external_id": external_id,
                "delivery_id": delivery_id[:128],
                "body": body,
                "body_sha256": digest,
                "received_at": now,
                "error": "",
            }
            for external_id, body, digest in {item[0]: item for item in reversed(chunk)}.values()
        ]
        if not rows:
            continue
        for event_id, external_id in session.execute(statement, rows):
            answers[external_id] = Stored(event_id)
        known = [external_id for external_id, _, _ in chunk if external_id not in answers]
        if not known:
            continue
        found = {
            external_id: (event_id, digest, handled_at)
            for event_id, external_id, digest, handled_at in session.execute(
                select(InboxEvent.id, InboxEvent.external_id, InboxEvent.body_sha256, InboxEvent.handled_at).where(
                    InboxEvent.brand_id == brand_id,
                    InboxEvent.source == source,
                    InboxEvent.kind == kind,
                    InboxEvent.external_id.in_(known),
                )
            )
        }
        for external_id, body, digest in chunk:
            if external_id in answers:
                continue
            event_id, stored_digest, handled_at = found[external_id]
            # Rows written before bodies were compared by content carry the digest of the raw text.
            same = stored_digest in (digest, hashlib.sha256(body.encode()).hexdigest())
            answers[external_id] = Stored(event_id, duplicate=True, handled=handled_at is not None, conflict=not same)
    return [answers[external_id] for external_id, _, _ in items]


_STAGE = text("CREATE TEMP TABLE IF NOT EXISTS inbox_staging (n int, external_id text, body text, digest text)")
_STAGED_INSERT = text("""
INSERT INTO inbox_events (brand_id, source, kind, external_id, delivery_id, body, body_sha256, received_at, error)
SELECT :brand_id, :source, :kind, external_id, :delivery_id, body, digest, :now, ''
FROM inbox_staging
ORDER BY n
ON CONFLICT (brand_id, source, kind, external_id) DO NOTHING
RETURNING id, external_id
""").bindparams(bindparam("now", type_=UTCDateTime()))
_STAGED_KNOWN = text("""
SELECT e.id, e.external_id, e.body_sha256, e.handled_at IS NOT NULL
FROM inbox_staging s
JOIN inbox_events e
  ON e.brand_id = :brand_id AND e.source = :source AND e.kind = :kind AND e.external_id = s.external_id
""")


def _store_many_postgresql(
    session: Session, *, brand_id: int, source: str, kind: str, items: Sequence[tuple[str, str, str]], delivery_id: str
) -> list[Stored]:
    """The whole lot by COPY into a temporary table, then one insert-or-ignore from it: the file's bodies
    are never spelled out as statement parameters."""
    session.execute(_STAGE)
    session.execute(text("TRUNCATE inbox_staging"))
    driver = session.connection().connection.driver_connection
    with driver.cursor() as cursor, cursor.copy("COPY inbox_staging (n, external_id, body, digest) FROM STDIN") as copy:  # type: ignore[union-attr]
        for n, (external_id, body, digest) in enumerate(items):
            copy.write_row((n, external_id, body, digest))
    where = {"brand_id": brand_id, "source": source, "kind": kind}
    answers = {
        external_id: Stored(event_id)
        for event_id, external_id in session.execute(
            _STAGED_INSERT, {**where, "delivery_id": delivery_id[:128], "now": utcnow()}
        )
    }
    if len(answers) < len({item[0] for item in items}):
        digests = {external_id: (body, digest) for external_id, body, digest in reversed(items)}
        for event_id, external_id, stored_digest, handled in session.execute(_STAGED_KNOWN, where):
            if external_id in answers:
                continue
            body, digest = digests[external_id]
            # Rows written before bodies were compared by content carry the digest of the raw text.
            same = stored_digest in (digest, hashlib.sha256(body.encode()).hexdigest())
            answers[external_id] = Stored(event_id, duplicate=True, handled=handled, conflict=not same)
    session.execute(text("TRUNCATE inbox_staging"))
    return [answers[external_id] for external_id, _, _ in items]


def inbox_key(source: str, parsed: schemas.OrderIn | schemas.RefundIn, body: bytes | str) -> str:
    """The inbox id of an event. WooCommerce sends the whole order again on every change (order.updated,
    a refund), so each distinct revision of a WooCommerce order is its own event, never a 409."""
    if isinstance(parsed, schemas.RefundIn):
        return parsed.refund_id
    if source == "woocommerce":
        text = body.decode() if isinstance(body, bytes) else body
        return f"{parsed.order_id[:110]}@{body_digest(text)[:16]}"  # fits inbox_events.external_id
    return parsed.order_id


def receive(
    session: Session,
    *,
    brand: Brand,
    source: str,
    kind: str,
    body: bytes,
    delivery_id: str = "",
    external_id: str | None = None,
) -> Intake:
    """Validate, store raw, then process. Durable once the caller's unit of work commits."""
    parsed = normalise(source, kind, parse_json(body))
    public_id = parsed.order_id if isinstance(parsed, schemas.OrderIn) else parsed.refund_id
    key = external_id or inbox_key(source, parsed, body)
    event, duplicate = store(
        session, brand_id=brand.id, source=source, kind=kind, external_id=key, body=body, delivery_id=delivery_id
    )
    if duplicate and event.handled_at is not None:
        return Intake(event.id, public_id, True, True)
    refunds: list[str] = []
    error = process(session, event, parsed=parsed, refunds=refunds)
    return Intake(event.id, public_id, duplicate, error == "", error, refunds)


def process(session: Session, event: InboxEvent, *, parsed: Any = None, refunds: list[str] | None = None) -> str:
    """Apply one inbox event in a savepoint; returns '' or the reason it must wait for a replay.

    Any failure, expected or not, leaves the event stored with its error: the sender has its 200 and will
    not send again, so the inbox row is the only copy."""
    if event.handled_at is not None:
        return ""
    try:
        with session.begin_nested():
            raw = None
            if parsed is None:
                raw = json.loads(event.body)
                parsed = normalise(event.source, event.kind, raw)
            brand = session.get(Brand, event.brand_id)
            assert brand is not None
            if isinstance(parsed, schemas.OrderIn):
                order = apply_order(session, brand=brand, data=parsed, source=event.source, event_id=event.id)
                if event.source == "woocommerce":
                    payload = raw if raw is not None else json.loads(event.body)
                    created = woocommerce_refunds(session, brand=brand, payload=payload, order=order)
                    if refunds is not None:
                        refunds.extend(created)
            else:
                apply_refund(session, brand=brand, data=parsed, event_id=event.id)
            event.handled_at = utcnow()
            event.error = ""
    except ClearlineError as exc:
        event.error = exc.message[:2000]
        return exc.message
    except Exception as exc:  # noqa: BLE001 - see the docstring: keep the event, record why, replay later
        log.exception("inbox event %s could not be processed", event.id)
        message = f"{type(exc).__name__}: {exc}"
        event.error = message[:2000]
        return message
    return ""


def replay(
    session: Session, *, brand_id: int | None = None, include_handled: bool = False, event_ids: list[int] | None = None
) -> dict[str, int]:
    """Process stored events again (unhandled ones by default). Safe to run any number of times.

    Orders go before refunds, so a refund that waited for its order is applied in the same replay."""
    stmt = select(InboxEvent).order_by(case((InboxEvent.kind == "order", 0), else_=1), InboxEvent.id)
    if brand_id is not None:
        stmt = stmt.where(InboxEvent.brand_id == brand_id)
    if event_ids:
        stmt = stmt.where(InboxEvent.id.in_(event_ids))
    if not include_handled:
        stmt = stmt.where(InboxEvent.handled_at.is_(None))
    counts = {"seen": 0, "processed": 0, "failed": 0, "unchanged": 0}
    events = list(session.scalars(stmt).all())
    counts["seen"] = len(events)
    counts["unchanged"] = sum(1 for event in events if event.handled_at is not None)
    waiting = [event for event in events if event.handled_at is None]
    for start in range(0, len(waiting), BATCH):
        for error in process_batch(session, waiting[start : start + BATCH]).values():
            counts["failed" if error else "processed"] += 1
    return counts


# --- processing many events at once --------------------------------------------------------------------

BATCH = 500  # events per set-wise step: big enough to amortise each statement, small enough to retry cheaply


def process_batch(
    session: Session, events: Sequence[InboxEvent], *, parsed: dict[int, Any] | None = None
) -> dict[int, str]:
    """Process many stored events; event id -> '' or the reason it waits for a replay, exactly as `process`
    answers for each event on its own (see `ingest.processing`). ``parsed`` may carry already validated
    payloads by event id."""
    from clearline.ingest import processing

    return processing.process_batch(session, events, parsed=parsed)


# --- applying events ---------------------------------------------------------------------------------


def _salted(value: str | None) -> str:
    return salted_hash(value, salt=get_settings().secret_key + ":pii") if value else ""


def apply_order(session: Session, *, brand: Brand, data: schemas.OrderIn, source: str, event_id: int | None) -> Order:
    """Create the order and its lines, then attribute it and accrue commissions. Idempotent per order id."""
    existing = session.scalar(select(Order).where(Order.brand_id == brand.id, Order.external_id == data.order_id))
    if existing is not None:
        return existing
    order = _new_order(brand.id, data, source=source, event_id=event_id)
    session.add(order)
    session.flush()
    lines = _new_lines(order, data)
    session.add_all(lines)
    session.flush()
    from clearline.attribution import service as attribution_service
    from clearline.commission import service as commission_service

    attribution = attribution_service.attribute(session, order=order, lines=lines)
    commission_service.accrue(session, order=order, lines=lines, attribution=attribution)
    return order


def _new_order(brand_id: int, data: schemas.OrderIn, *, source: str, event_id: int | None) -> Order:
    return Order(**order_values(brand_id, data, source=source, event_id=event_id, now=utcnow()))


def order_values(
    brand_id: int, data: schemas.OrderIn, *, source: str, event_id: int | None, now: dt.datetime
) -> dict[str, Any]:
    """The column values of a new order's row (`_new_order` makes an `Order` of them; a batch writes them)."""
    currency = data.currency
    customer = data.customer or schemas.CustomerIn()
    return {
        "brand_id": brand_id,
        "external_id": data.order_id,
        "source": source,
        "ordered_at": data.created_at,
        "currency": currency,
        "customer_ref": _salted(customer.id),
        "customer_email_hash": _salted(customer.email_sha256),
        "is_new_customer": customer.new_customer,
        "click_id": data.click_id or "",
        "coupon_codes": data.coupon_codes,
        "landing_url": data.landing_url or "",
        "shipping_amount": money.to_minor(data.shipping, currency),
        "tax_amount": money.to_minor(data.tax, currency),
        "ip_hash": _salted(data.ip),
        "user_agent": (data.user_agent or "")[:512],
        "inbox_event_id": event_id,
        "received_at": now,
    }


def _new_lines(order: Order, data: schemas.OrderIn) -> list[OrderLine]:
    return [OrderLine(**values) for values in line_values(order.id, data)]


def line_values(order_id: int, data: schemas.OrderIn) -> list[dict[str, Any]]:
    """The column values of a new order's line rows, numbered from 1 in the order given."""
    currency = data.currency
    lines = []
    for number, line in enumerate(data.lines, start=1):
        gross = line.unit_price * line.quantity
        lines.append(
            {
                "order_id": order_id,
                "line_no": number,
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price_amount": money.to_minor(line.unit_price, currency),
                "discount_amount": money.to_minor(line.discount, currency),
                "net_amount": money.to_minor(gross - line.discount, currency),
                "refunded_amount": 0,
                "refunded_quantity": 0,
            }
        )
    return lines


def apply_refund(session: Session, *, brand: Brand, data: schemas.RefundIn, event_id: int | None) -> Refund:
    """Record a return or chargeback line by line and reverse commissions in proportion."""
    existing = session.scalar(select(Refund).where(Refund.brand_id == brand.id, Refund.external_id == data.refund_id))
    if existing is not None:
        return existing
    order = session.scalar(select(Order).where(Order.brand_id == brand.id, Order.external_id == data.order_id))
    if order is None:
        raise unknown_order(data)
    lines = list(session.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.line_no)))
    applied = fit_refund(order, lines, data)
    refund = new_refund(brand.id, data, order=order, applied=applied, event_id=event_id)
    session.add(refund)
    session.flush()
    from clearline.commission import service as commission_service

    commission_service.reverse(session, order=order, refund=refund, applied=applied)
    return refund


def unknown_order(data: schemas.RefundIn) -> ValidationFailedError:
    return ValidationFailedError(
        f"order {data.order_id} is not known yet; the refund waits for it",
        details=[{"loc": ["order_id"], "msg": "unknown order"}],
    )


def new_refund(
    brand_id: int, data: schemas.RefundIn, *, order: Order, applied: list[tuple[OrderLine, int]], event_id: int | None
) -> Refund:
    return Refund(
        brand_id=brand_id,
        external_id=data.refund_id,
        order_id=order.id,
        kind=data.kind,
        refunded_at=data.created_at,
        inbox_event_id=event_id,
        lines=[
            {"order_line_id": line.id, "line_no": line.line_no, "sku": line.sku, "amount": amount}
            for line, amount in applied
        ],
    )


def fit_refund(order: Order, lines: list[OrderLine], data: schemas.RefundIn) -> list[tuple[OrderLine, int]]:
    """Spread a refund over the order's lines (its SKU's lines in order, each up to what is left of it) and
    record it on them; (line, minor units) per share. A refund that does not fit changes nothing and raises
    `ValidationFailedError` naming every line that does not fit."""
    refunded = {line.id: line.refunded_amount for line in lines}
    quantities = {line.id: line.refunded_quantity for line in lines}
    applied: list[tuple[OrderLine, int]] = []
    problems = []
    for index, item in enumerate(data.lines):
        remaining_minor = money.to_minor(item.amount, order.currency)
        if money.round_half_up(item.amount, order.currency) != item.amount:
            problems.append({"loc": ["lines", index, "amount"], "msg": f"more digits than {order.currency}"})
            continue
        candidates = [x for x in lines if x.sku == item.sku and refunded[x.id] < x.net_amount]
        if not candidates:
            problems.append({"loc": ["lines", index, "sku"], "msg": f"no refundable line for SKU {item.sku}"})
            continue
        for line in candidates:
            if remaining_minor <= 0:
                break
            take = min(remaining_minor, line.net_amount - refunded[line.id])
            refunded[line.id] += take
            quantities[line.id] = min(line.quantity, quantities[line.id] + item.quantity)
            applied.append((line, take))
            remaining_minor -= take
        if remaining_minor > 0:
            problems.append(
                {
                    "loc": ["lines", index, "amount"],
                    "msg": f"refunds {money.format_minor(remaining_minor, order.currency)} more than "
                    "is left on the order's lines",
                }
            )
    if problems:
        raise ValidationFailedError("refund does not fit the order", details=problems)
    for line, _ in applied:
        line.refunded_amount = refunded[line.id]
        line.refunded_quantity = quantities[line.id]
    return applied


def woocommerce_refunds(session: Session, *, brand: Brand, payload: Any, order: Order) -> list[str]:
    """WooCommerce lists refunds on the order (`refunds[].id/total`, order-level amounts): each new one
    becomes a refund event, its amount spread over the lines in proportion to their net revenue still
    unrefunded (largest remainder, so the parts add up to the refund exactly)."""
    if isinstance(payload, dict) and isinstance(payload.get("order"), dict) and len(payload) == 1:
        payload = payload["order"]
    items = payload.get("refunds") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        return []
    # The order's last change is when WooCommerce recorded its refunds; the receiving time would make a
    # replay days later look like a refund after the verification window.
    when = payload.get("date_modified_gmt") or payload.get("date_created_gmt")
    created_at = schemas.utc_text(when) if when else utcnow().isoformat()
    created = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or item.get("id") in (None, ""):
            raise ValidationFailedError(
                "refund without an id", details=[{"loc": ["refunds", str(index), "id"], "msg": "required"}]
            )
        refund_id = str(item["id"])
        known = session.scalar(
            select(InboxEvent.id).where(
                InboxEvent.brand_id == brand.id,
                InboxEvent.source == "woocommerce",
                InboxEvent.kind == "refund",
                InboxEvent.external_id == refund_id,
            )
        )
        if known is not None:  # every order.updated repeats the list; the first sighting is the event
            continue
        try:
            total = money.parse_to_minor(str(item.get("total", "0")).lstrip("-"), order.currency, field="total")
        except money.MoneyError as exc:
            raise ValidationFailedError(
                f"refund {refund_id}: {exc}", details=[{"loc": ["refunds", str(index), "total"], "msg": str(exc)}]
            ) from None
        lines = list(
            session.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.line_no))
        )
        shares = allocate(total, [x.net_amount - x.refunded_amount for x in lines])
        resource = schemas.woocommerce_refund_resource(
            refund_id=refund_id,
            order_id=order.external_id,
            created_at=created_at,
            currency=order.currency,
            shares=[(x.sku, share) for x, share in zip(lines, shares, strict=True)],
        )
        event, _ = store(
            session,
            brand_id=brand.id,
            source="woocommerce",
            kind="refund",
            external_id=refund_id,
            body=json.dumps(resource, sort_keys=True),
        )
        process(session, event)
        created.append(refund_id)
    return created


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` minor units in proportion to ``weights`` (largest remainder): parts sum to ``total``."""
    whole = sum(weights)
    if whole <= 0 or total <= 0:
        return [0] * len(weights)
    total = min(total, whole)
    raw = [total * w for w in weights]
    parts = [r // whole for r in raw]
    order = sorted(range(len(weights)), key=lambda i: (-(raw[i] % whole), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts

"""The tamper-evident audit trail: every mutation is one link of a SHA-256 hash chain."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.kit.clock import utcnow
from clearline.models import AuditEvent, AuditHead, Brand

GENESIS = "0" * 64


def _jsonable(value: Any) -> Any:
    def default(obj: Any) -> Any:
        if isinstance(obj, dt.datetime | dt.date | dt.time):
            return obj.isoformat()
        if isinstance(obj, decimal.Decimal):
            return str(obj)
        raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")

    return None if value is None else json.loads(json.dumps(value, default=default, sort_keys=True))


def _digest(event: AuditEvent) -> str:
    at = event.at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    payload = json.dumps(
        [
            event.prev_hash,
            at,
            event.actor_id,
            event.actor_label,
            event.reviewed_by_id,
            event.action,
            event.entity_type,
            event.entity_id,
            event.brand_id,
            event.before,
            event.after,
            event.reason,
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _lock_head(session: Session) -> AuditHead:
    head = session.scalar(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    if head is None:
        head = AuditHead(id=1, last_event_id=None, last_hash=GENESIS)
        session.add(head)
        session.flush()
    return head


def record(
    session: Session,
    actor: Actor,
    action: str,
    entity: Any,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    reviewed_by_id: int | None = None,
) -> AuditEvent:
    """Append one event (``<domain>.<past_verb>``) to the chain inside the caller's unit of work."""
    head = _lock_head(session)
    if isinstance(entity, tuple):
        entity_type, entity_id, brand_id = entity
    else:
        entity_type = entity.__tablename__
        entity_id = entity.id
        brand_id = entity.id if isinstance(entity, Brand) else getattr(entity, "brand_id", None)
    event = AuditEvent(
        at=utcnow(),
        actor_id=actor.user_id,
        actor_label=actor.label,
        reviewed_by_id=reviewed_by_id,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        brand_id=brand_id,
        before=_jsonable(before),
        after=_jsonable(after),
        reason=reason or "",
        prev_hash=head.last_hash,
    )
    event.hash = _digest(event)
    session.add(event)
    session.flush()
    head.last_event_id = event.id
    head.last_hash = event.hash
    return event


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    broken_event_id: int | None = None
    problem: str = ""


def verify(session: Session, *, batch: int = 5000) -> VerifyResult:
    """Walk the chain in order and report the first broken link."""
    expected_prev = GENESIS
    last_id: int | None = None
    checked = 0
    cursor = 0
    while True:
        rows = list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.id > cursor).order_by(AuditEvent.id).limit(batch)
            )
        )
        if not rows:
            break
        for event in rows:
            if event.prev_hash != expected_prev:
                where = f"after event {last_id}" if last_id else "at the start"
                return VerifyResult(
                    False,
                    checked,
                    event.id,
                    f"event {event.id}: link broken — an event {where} was deleted or altered",
                )
            if _digest(event) != event.hash:
                return VerifyResult(
                    False, checked, event.id, f"event {event.id} ({event.action}): content altered"
                )
            expected_prev = event.hash
            last_id = event.id
            checked += 1
        cursor = rows[-1].id
    head = session.get(AuditHead, 1)
    if head is None and checked:
        # Deleting the tail together with the head must not pass for an intact chain.
        return VerifyResult(
            False,
            checked,
            None,
            f"the chain's head is missing: events after event {last_id} may have been deleted",
        )
    if head is not None and (head.last_event_id != last_id or head.last_hash != expected_prev):
        return VerifyResult(
            False,
            checked,
            head.last_event_id,
            f"event {head.last_event_id}: the chain's last event(s) were deleted",
        )
    return VerifyResult(True, checked)


def list_events(
    session: Session, actor: Actor, *, brand_id: int | None = None, limit: int = 200
) -> list[AuditEvent]:
    actor.require("admin", brand_id=brand_id)
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if brand_id is not None:
        stmt = stmt.where(AuditEvent.brand_id == brand_id)
    return list(session.scalars(stmt))

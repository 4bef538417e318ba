"""Disputes: a creator or agency disputes a commission line; the line pauses (no run pays it) until finance
upholds it — with an adjustment that the next run pays or takes back — or rejects it, with a reason."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.auth.scope import brand_filter
from clearline.commission.explain import readable_lines
from clearline.commission.service import account
from clearline.kit import money
from clearline.kit.clock import utcnow
from clearline.kit.errors import ConflictError, ForbiddenError, NotFoundError, ValidationFailedError
from clearline.ledger import service as ledger
from clearline.models import CommissionLine, Dispute


def open_dispute(session: Session, actor: Actor, *, commission_line_id: int, reason: str) -> Dispute:
    """The payee (the creator, or the agency paid for it) disputes a line; the line pauses."""
    line = session.scalar(select(CommissionLine).where(CommissionLine.id == commission_line_id,
                                                       readable_lines(actor)))
    if line is None:
        raise NotFoundError(f"no commission line {commission_line_id}")
    is_payee = (line.creator_id is not None and line.creator_id == actor.creator_id) or (
        line.payee_type == "agency" and line.payee_id == actor.agency_id)
    if not is_payee:
        raise ForbiddenError("only the creator or agency the line pays can dispute it")
    if not reason.strip():
        raise ValidationFailedError("a reason is required", details=[{"loc": ["reason"], "msg": "required"}])
    if session.scalar(select(Dispute.id).where(Dispute.commission_line_id == line.id, Dispute.status == "open")):
        raise ConflictError(f"commission line {line.id} already has an open dispute")
    dispute = Dispute(brand_id=line.brand_id, commission_line_id=line.id, opened_by_id=actor.user_id, reason=reason)
    session.add(dispute)
    session.flush()
    audit.record(session, actor, "dispute.opened", dispute, after={"commission_line_id": line.id, "reason": reason},
                 reason=reason)
    return dispute


def resolve(session: Session, actor: Actor, *, dispute_id: int, decision: str, reason: str,
            adjustment: Decimal = Decimal(0)) -> Dispute:
    """Finance upholds (posting an adjustment for the next run) or rejects; either way the line resumes."""
    dispute = session.scalar(select(Dispute).where(Dispute.id == dispute_id,
                                                   brand_filter(actor, Dispute.brand_id, ("finance",))))
    if dispute is None:
        raise NotFoundError(f"no dispute {dispute_id}")
    actor.require("finance", brand_id=dispute.brand_id)
    if dispute.status != "open":
        raise ConflictError(f"dispute {dispute.id} is already {dispute.status}")
    if decision not in ("upheld", "rejected"):
        raise ValidationFailedError("decision must be upheld or rejected",
                                    details=[{"loc": ["decision"], "msg": decision}])
    if not reason.strip():
        raise ValidationFailedError("a reason is required", details=[{"loc": ["reason"], "msg": "required"}])
    line = session.get(CommissionLine, dispute.commission_line_id)
    assert line is not None
    amount = money.to_minor(adjustment, line.currency) if decision == "upheld" else 0
    if decision == "upheld" and amount + (line.amount - line.reversed_amount) < 0:
        raise ValidationFailedError("an adjustment cannot take back more than the line earned",
                                    details=[{"loc": ["adjustment"], "msg": "too negative"}])
    dispute.status, dispute.resolution, dispute.adjustment_amount = decision, reason, amount
    dispute.resolved_by_id, dispute.resolved_at = actor.user_id, utcnow()
    if amount:
        expense, available = account(line, ledger.EXPENSE), account(line, ledger.AVAILABLE)
        ledger.post(session, [ledger.Transfer(
            key=f"adjustment.posted:{dispute.id}", kind="adjustment.posted",
            debit=expense if amount > 0 else available, credit=available if amount > 0 else expense,
            amount=abs(amount), commission_line_id=line.id, effective_at=dispute.resolved_at,
            memo=f"dispute {dispute.id}: {reason}")])
    audit.record(session, actor, f"dispute.{decision}", dispute, before={"status": "open"},
                 after={"status": decision, "adjustment": money.format_minor(amount, line.currency)}, reason=reason)
    return dispute


def list_disputes(session: Session, actor: Actor, *, brand_id: int | None = None, status: str | None = None
                  ) -> list[Dispute]:
    lines = select(CommissionLine.id).where(readable_lines(actor))
    stmt = select(Dispute).where(or_(brand_filter(actor, Dispute.brand_id, ("finance",)),
                                     Dispute.commission_line_id.in_(lines))).order_by(Dispute.id.desc())
    if brand_id is not None:
        stmt = stmt.where(Dispute.brand_id == brand_id)
    if status is not None:
        stmt = stmt.where(Dispute.status == status)
    return list(session.scalars(stmt))

"""Approval steps with SLAs in the organisation's business hours; breaches and escalations."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.auth.scope import brand_filter
from clearline.config import get_settings
from clearline.kit.clock import BusinessCalendar, utcnow
from clearline.kit.errors import ConflictError, NotFoundError, ValidationFailedError
from clearline.models import ApprovalStep, Brief, Creative, Notification

DECISIONS = ("approved", "changes_requested")


def sla_hours(kind: str) -> float:
    return float(get_settings().approval_sla_hours[kind])


def open_step(
    session: Session,
    *,
    brand_id: int,
    subject_type: str,
    subject_id: int,
    kind: str,
    role: str,
    channel: str = "",
    now: dt.datetime | None = None,
) -> ApprovalStep:
    now = now or utcnow()
    due = BusinessCalendar.from_settings(get_settings()).add_hours(now, sla_hours(kind))
    step = ApprovalStep(
        brand_id=brand_id,
        subject_type=subject_type,
        subject_id=subject_id,
        kind=kind,
        role=role,
        channel=channel,
        opened_at=now,
        due_at=due,
    )
    session.add(step)
    session.flush()
    return step


def queue(
    session: Session,
    actor: Actor,
    *,
    brand_id: int | None = None,
    role: str | None = None,
    include_decided: bool = False,
) -> list[ApprovalStep]:
    """Open steps (due first) for the roles the actor holds on its brands."""
    roles = [r for r in ("legal", "marketing", "social_ops") if r == role or role is None]
    stmt = (
        select(ApprovalStep)
        .where(or_(*[brand_filter(actor, ApprovalStep.brand_id, (r,)) & (ApprovalStep.role == r) for r in roles]))
        .order_by(ApprovalStep.due_at)
    )
    if brand_id is not None:
        stmt = stmt.where(ApprovalStep.brand_id == brand_id)
    if not include_decided:
        stmt = stmt.where(ApprovalStep.decided_at.is_(None))
    return list(session.scalars(stmt))


def steps_for(session: Session, actor: Actor, *, subject_type: str, subject_ids: list[int]) -> list[ApprovalStep]:
    """Every review of the given briefs or creatives on the actor's brands, whichever role holds it, oldest first:
    the history each page shows beside its subject."""
    stmt = (
        select(ApprovalStep)
        .where(
            ApprovalStep.subject_type == subject_type,
            ApprovalStep.subject_id.in_(subject_ids),
            brand_filter(actor, ApprovalStep.brand_id),
        )
        .order_by(ApprovalStep.opened_at, ApprovalStep.id)
    )
    return list(session.scalars(stmt))


def decide(session: Session, actor: Actor, *, step_id: int, decision: str, comment: str = "") -> ApprovalStep:
    """The step's role decides; approver, time and comment are recorded, and the subject moves on."""
    step = session.scalar(
        select(ApprovalStep).where(ApprovalStep.id == step_id, brand_filter(actor, ApprovalStep.brand_id))
    )
    if step is None:
        raise NotFoundError(f"no approval step {step_id}")
    actor.require(step.role, brand_id=step.brand_id)
    if decision not in DECISIONS:
        raise ValidationFailedError(
            f"unknown decision {decision!r}", details=[{"loc": ["decision"], "msg": f"one of {', '.join(DECISIONS)}"}]
        )
    if step.decided_at is not None:
        raise ConflictError(f"step {step.id} was already decided ({step.decision})")
    now = utcnow()
    step.decision, step.decided_at, step.approver_id, step.comment = decision, now, actor.user_id, comment
    if step.subject_type == "brief":
        from clearline.brief.service import on_brief_decision

        brief = session.get(Brief, step.subject_id)
        on_brief_decision(session, brief, decision=decision, at=now)  # type: ignore[arg-type]
    else:
        from clearline.brief.creative import on_creative_decision

        on_creative_decision(session, session.get(Creative, step.subject_id), decision=decision, at=now)  # type: ignore[arg-type]
    audit.record(
        session,
        actor,
        f"approval.{decision}",
        (step.__tablename__, step.id, step.brand_id),
        after={
            "subject": f"{step.subject_type}:{step.subject_id}",
            "kind": step.kind,
            "within_sla": now <= step.due_at,
        },
        reason=comment,
    )
    return step


def check_breaches(session: Session, actor: Actor, *, now: dt.datetime | None = None) -> list[ApprovalStep]:
    """Mark open steps past their due time as breached and escalate them (once) to the brand's admins."""
    now = now or utcnow()
    overdue = list(
        session.scalars(
            select(ApprovalStep).where(
                ApprovalStep.decided_at.is_(None), ApprovalStep.due_at < now, ApprovalStep.escalated_at.is_(None)
            )
        )
    )
    for step in overdue:
        step.breached_at = step.breached_at or now
        step.escalated_at = now
        message = (
            f"{step.kind.replace('_', ' ')} of {step.subject_type} {step.subject_id} for {step.role} was due "
            f"{step.due_at:%Y-%m-%d %H:%M} UTC and is overdue"
        )
        session.add(
            Notification(
                brand_id=step.brand_id,
                role=step.role,
                kind="approval.overdue",
                subject_type=step.subject_type,
                subject_id=step.subject_id,
                message=message,
            )
        )
        session.add(
            Notification(
                brand_id=step.brand_id,
                role="admin",
                kind="approval.escalated",
                level=2,
                subject_type=step.subject_type,
                subject_id=step.subject_id,
                message=f"Escalated to the {step.role} lead: {message}",
            )
        )
        audit.record(
            session,
            actor,
            "approval.escalated",
            (step.__tablename__, step.id, step.brand_id),
            after={"due_at": step.due_at, "breached_at": step.breached_at},
        )
    return overdue


def breaches(session: Session, actor: Actor, *, brand_id: int) -> list[ApprovalStep]:
    """Steps decided late or still open past due."""
    now = utcnow()
    steps = session.scalars(
        select(ApprovalStep).where(ApprovalStep.brand_id == brand_id, brand_filter(actor, ApprovalStep.brand_id))
    )
    return [s for s in steps if (s.decided_at or now) > s.due_at]

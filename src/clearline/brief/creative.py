"""Creatives per channel with versions and files, their reviews, proofs of posting, and the scheduling gate."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.auth.scope import brand_filter
from clearline.brand import repository as brand_repository
from clearline.brief import approval
from clearline.brief.service import get_brief
from clearline.kit.clock import utcnow
from clearline.kit.errors import ConflictError, NotFoundError, ValidationFailedError
from clearline.kit.storage import Storage, default_storage
from clearline.link import repository as link_repository
from clearline.models import (
    ApprovalStep,
    Brand,
    Brief,
    Creative,
    CreativeVersion,
    Link,
    ProofOfPosting,
    ScheduledPost,
)


class ScheduleRefusedError(ConflictError):
    code = "schedule_refused"


def readable(actor: Actor):  # type: ignore[no-untyped-def]
    clauses = [brand_filter(actor, Creative.brand_id)]
    if actor.creator_id is not None:
        clauses.append(Creative.creator_id == actor.creator_id)
    return or_(*clauses)


def get_creative(session: Session, actor: Actor, creative_id: int) -> Creative:
    found = session.scalar(select(Creative).where(Creative.id == creative_id, readable(actor)))
    if found is None:
        raise NotFoundError(f"no creative {creative_id}")
    return found


def list_creatives(session: Session, actor: Actor, *, brief_id: int | None = None) -> list[Creative]:
    stmt = select(Creative).where(readable(actor)).order_by(Creative.id)
    if brief_id is not None:
        stmt = stmt.where(Creative.brief_id == brief_id)
    return list(session.scalars(stmt))


def _may_edit(actor: Actor, creative_or_creator_id: int, brand_id: int) -> None:
    if actor.creator_id == creative_or_creator_id:
        return
    actor.require("social_ops", "marketing", brand_id=brand_id)


def create_creative(
    session: Session, actor: Actor, *, brief_id: int, creator_id: int, channel: str, is_high_risk: bool = False
) -> Creative:
    if actor.creator_id is None:
        brief = get_brief(session, actor, brief_id)
    else:
        # A creator answers briefs of the brands it holds a contract with, never another brand's: a
        # creative would otherwise make that brand's brief readable to it.
        brands = select(Brand.id).where(brand_repository.readable(actor))
        brief = session.scalar(select(Brief).where(Brief.id == brief_id, Brief.brand_id.in_(brands)))
    if brief is None:
        raise NotFoundError(f"no brief {brief_id}")
    _may_edit(actor, creator_id, brief.brand_id)
    if brief.status != "approved":
        raise ConflictError(f"brief {brief.id} is {brief.status}: creatives follow an approved brief")
    creative = Creative(
        brand_id=brief.brand_id,
        brief_id=brief.id,
        creator_id=creator_id,
        channel=channel.strip().lower(),
        is_high_risk=is_high_risk,
    )
    session.add(creative)
    session.flush()
    audit.record(session, actor, "creative.created", creative, after={"brief": brief.id, "channel": creative.channel})
    return creative


def add_version(
    session: Session,
    actor: Actor,
    *,
    creative_id: int,
    caption: str,
    data: bytes | None = None,
    file_name: str = "",
    content_type: str = "",
    storage: Storage | None = None,
) -> CreativeVersion:
    """A new version (caption and optional file, stored behind the storage interface) and a new review."""
    creative = get_creative(session, actor, creative_id)
    _may_edit(actor, creative.creator_id, creative.brand_id)
    if creative.status in ("approved", "scheduled", "posted"):
        raise ConflictError(f"creative {creative.id} is {creative.status}")
    stored = (storage or default_storage()).put(data, name=file_name, content_type=content_type) if data else None
    last = (
        session.scalar(
            select(CreativeVersion.version)
            .where(CreativeVersion.creative_id == creative.id)
            .order_by(CreativeVersion.version.desc())
            .limit(1)
        )
        or 0
    )
    version = CreativeVersion(
        creative_id=creative.id,
        version=last + 1,
        caption=caption,
        file_key=stored.key if stored else "",
        file_name=stored.name if stored else "",
        content_type=stored.content_type if stored else "",
        size_bytes=stored.size if stored else 0,
        created_by_id=actor.user_id,
    )
    session.add(version)
    session.flush()
    # A new version while the last is still in review replaces that round: its open steps close, so the new
    # round alone decides (they would otherwise have to approve a version nobody is looking at any more).
    for step in _open_steps(session, creative.id):
        step.decided_at, step.decision, step.comment = utcnow(), "superseded", f"replaced by version {version.version}"
    rework = creative.status == "rework"
    approval.open_step(
        session,
        brand_id=creative.brand_id,
        subject_type="creative",
        subject_id=creative.id,
        kind="content_check",
        role="marketing",
        channel=creative.channel,
    )
    if creative.is_high_risk:
        approval.open_step(
            session,
            brand_id=creative.brand_id,
            subject_type="creative",
            subject_id=creative.id,
            kind="claims_rework" if rework else "legal_clearance",
            role="legal",
            channel=creative.channel,
        )
    creative.status = "in_review"
    audit.record(
        session, actor, "creative.versioned", creative, after={"version": version.version, "file": version.file_key}
    )
    return version


def _open_steps(session: Session, creative_id: int) -> list[ApprovalStep]:
    return list(
        session.scalars(
            select(ApprovalStep).where(
                ApprovalStep.subject_type == "creative",
                ApprovalStep.subject_id == creative_id,
                ApprovalStep.decided_at.is_(None),
            )
        )
    )


def _aware(name: str, value: dt.datetime) -> None:
    if value.tzinfo is None:
        raise ValidationFailedError(f"{name} needs a UTC offset", details=[{"loc": [name], "msg": "naive time"}])


def on_creative_decision(session: Session, creative: Creative, *, decision: str, at: dt.datetime) -> None:
    """Approved for its channel once every open step of the round approves; any change request sends it back."""
    if decision == "changes_requested":
        creative.status = "rework"
        for step in _open_steps(session, creative.id):
            step.decided_at, step.decision, step.comment = at, "superseded", "another reviewer requested changes"
        return
    still_open = session.scalar(
        select(ApprovalStep.id)
        .where(
            ApprovalStep.subject_type == "creative",
            ApprovalStep.subject_id == creative.id,
            ApprovalStep.decided_at.is_(None),
        )
        .limit(1)
    )
    if still_open is None:
        creative.status, creative.approved_at = "approved", at


def missing_for_schedule(session: Session, creative: Creative, *, at: dt.datetime) -> list[dict[str, str]]:
    """Everything the scheduling rule needs that is not there: contract, live link, channel approval."""
    missing = []
    brief = session.get(Brief, creative.brief_id)
    assert brief is not None
    if (
        link_repository.accepted_contract_for(
            session, brand_id=creative.brand_id, creator_id=creative.creator_id, at=at
        )
        is None
    ):
        missing.append({"item": "contract", "msg": "the creator has no accepted contract with this brand"})
    live = session.scalar(
        select(Link.id)
        .where(
            Link.campaign_id == brief.campaign_id,
            Link.creator_id == creative.creator_id,
            Link.status == "live",
            Link.expires_at > at,
        )
        .limit(1)
    )
    if live is None:
        missing.append({"item": "link", "msg": "no live, signed-off sales link for this creator and campaign"})
    if creative.status not in ("approved", "scheduled", "posted"):
        missing.append(
            {
                "item": "approval",
                "msg": f"the creative is not approved for {creative.channel} (status {creative.status})",
            }
        )
    return missing


def schedule(session: Session, actor: Actor, *, creative_id: int, scheduled_for: dt.datetime) -> ScheduledPost:
    """No exceptions: a signed contract, a live sales link and a channel approval, or 409 listing what is missing.

    The refusal is recorded (``schedule.refused``) before it is raised, and is only kept if the caller's unit
    of work commits: the API answers it without raising, the page keeps it through its savepoint."""
    creative = get_creative(session, actor, creative_id)
    actor.require("social_ops", brand_id=creative.brand_id)
    _aware("scheduled_for", scheduled_for)
    missing = missing_for_schedule(session, creative, at=max(utcnow(), scheduled_for))
    if missing:
        audit.record(session, actor, "schedule.refused", creative, after={"missing": missing})
        raise ScheduleRefusedError(
            "cannot schedule: " + "; ".join(m["msg"] for m in missing),
            details=[{"loc": [m["item"]], "msg": m["msg"]} for m in missing],
        )
    post = ScheduledPost(
        brand_id=creative.brand_id,
        creative_id=creative.id,
        channel=creative.channel,
        scheduled_for=scheduled_for,
        scheduled_by_id=actor.user_id,
    )
    session.add(post)
    creative.status = "scheduled"
    session.flush()
    audit.record(session, actor, "creative.scheduled", creative, after={"scheduled_for": scheduled_for})
    return post


def add_proof(
    session: Session,
    actor: Actor,
    *,
    creative_id: int,
    url: str,
    posted_at: dt.datetime,
    data: bytes | None = None,
    file_name: str = "",
    content_type: str = "",
    storage: Storage | None = None,
) -> ProofOfPosting:
    creative = get_creative(session, actor, creative_id)
    if actor.creator_id != creative.creator_id:
        actor.require("social_ops", brand_id=creative.brand_id)
    _aware("posted_at", posted_at)
    if creative.status not in ("scheduled", "posted"):
        raise ConflictError(f"creative {creative.id} is {creative.status}: only scheduled content can be posted")
    stored = (storage or default_storage()).put(data, name=file_name, content_type=content_type) if data else None
    proof = ProofOfPosting(creative_id=creative.id, url=url, posted_at=posted_at, file_key=stored.key if stored else "")
    session.add(proof)
    creative.status = "posted"
    session.flush()
    audit.record(session, actor, "creative.posted", creative, after={"url": url, "posted_at": posted_at})
    return proof


def feedback(session: Session, actor: Actor) -> list[tuple[Creative, ApprovalStep]]:
    """Decided reviews of the creatives ``actor`` may read, newest first: what a creator hears back.
    Steps closed automatically because another reviewer asked for changes say nothing of their own."""
    stmt = (
        select(Creative, ApprovalStep)
        .join(ApprovalStep, (ApprovalStep.subject_type == "creative") & (ApprovalStep.subject_id == Creative.id))
        .where(readable(actor), ApprovalStep.decided_at.is_not(None), ApprovalStep.decision != "superseded")
        .order_by(ApprovalStep.decided_at.desc(), ApprovalStep.id.desc())
    )
    return [(creative, step) for creative, step in session.execute(stmt)]

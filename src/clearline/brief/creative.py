"""Creatives per channel with versions and files, their reviews, proofs of posting, and the scheduling gate."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.auth.scope import brand_filter
from clearline.brand import repository as brand_repository
from clearline.brief import approval
from clearline.brief.service import get_brief
from clearline.contract.repository import agency_brand_ids
from clearline.kit.clock import utcnow
from clearline.kit.errors import ConflictError, NotFoundError, ValidationFailedError
from clearline.kit.storage import ALLOWED_TYPES, Storage, default_storage, download_name
from clearline.link import repository as link_repository
from clearline.models import (
    ApprovalStep,
    Brand,
    Brief,
    Creative,
    CreativeVersion,
    Link,
    ProofOfPosting,
    RosterEntry,
    ScheduledPost,
    User,
)


class ScheduleRefusedError(ConflictError):
    code = "schedule_refused"


def party_clauses(actor: Actor) -> list:  # type: ignore[type-arg]
    """A creator's own creatives; an agency's roster creators' creatives for the brands the agency works for
    (a roster creator's content for another brand is not the agency's business)."""
    clauses = []
    if actor.creator_id is not None:
        clauses.append(Creative.creator_id == actor.creator_id)
    if actor.agency_id is not None:
        roster = select(RosterEntry.creator_id).where(RosterEntry.agency_id == actor.agency_id)
        clauses.append(
            and_(Creative.creator_id.in_(roster), Creative.brand_id.in_(agency_brand_ids(actor.agency_id)))
        )
    return clauses


def readable(actor: Actor):  # type: ignore[no-untyped-def]
    return or_(brand_filter(actor, Creative.brand_id), *party_clauses(actor))


def _represents(session: Session, actor: Actor, *, creator_id: int, brand_id: int) -> bool:
    """The creator itself, or its agency on a brand the agency works for."""
    if actor.creator_id is not None and actor.creator_id == creator_id:
        return True
    if actor.agency_id is None:
        return False
    on_roster = session.scalar(
        select(RosterEntry.id).where(RosterEntry.agency_id == actor.agency_id, RosterEntry.creator_id == creator_id)
    )
    return on_roster is not None and brand_id in set(session.scalars(agency_brand_ids(actor.agency_id)))


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


def _may_edit(session: Session, actor: Actor, *, creator_id: int, brand_id: int, roles: tuple[str, ...]) -> None:
    """The creator, its agency, or one of the brand's ``roles``."""
    if _represents(session, actor, creator_id=creator_id, brand_id=brand_id):
        return
    actor.require(*roles, brand_id=brand_id)


def _answerable(actor: Actor):  # type: ignore[no-untyped-def]
    """Briefs a creator or agency may make content for: of the brands it holds contracts with, never another
    brand's (a creative would otherwise make that brand's brief readable to it)."""
    return Brief.brand_id.in_(select(Brand.id).where(brand_repository.readable(actor)))


def answerable_briefs(session: Session, actor: Actor) -> list[Brief]:
    """Approved briefs the portal user (creator or agency) may answer with a creative, newest first."""
    if actor.creator_id is None and actor.agency_id is None:
        return []
    stmt = select(Brief).where(_answerable(actor), Brief.status == "approved").order_by(Brief.id.desc())
    return list(session.scalars(stmt))


def create_creative(
    session: Session, actor: Actor, *, brief_id: int, creator_id: int, channel: str, is_high_risk: bool = False
) -> Creative:
    """A creative for one channel, by the creator (itself, its agency, or the brand's marketing or social ops)
    answering an approved brief."""
    brief: Brief | None
    if actor.creator_id is None and actor.agency_id is None:
        brief = get_brief(session, actor, brief_id)
    else:
        brief = session.scalar(select(Brief).where(Brief.id == brief_id, _answerable(actor)))
    if brief is None:
        raise NotFoundError(f"no brief {brief_id}")
    _may_edit(session, actor, creator_id=creator_id, brand_id=brief.brand_id, roles=("social_ops", "marketing"))
    if brief.status != "approved":
        raise ConflictError(f"brief {brief.id} is {brief.status}: creatives follow an approved brief")
    channel = channel.strip().lower()
    if not channel:
        raise ValidationFailedError("a creative needs a channel", details=[{"loc": ["channel"], "msg": "required"}])
    taken = session.scalar(
        select(Creative.id).where(
            Creative.brief_id == brief.id, Creative.creator_id == creator_id, Creative.channel == channel
        )
    )
    if taken is not None:
        raise ConflictError(f"creative #{taken} already answers brief {brief.id} on {channel} for this creator")
    creative = Creative(
        brand_id=brief.brand_id,
        brief_id=brief.id,
        creator_id=creator_id,
        channel=channel,
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
    _may_edit(
        session, actor, creator_id=creative.creator_id, brand_id=creative.brand_id, roles=("social_ops", "marketing")
    )
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


def schedule_queue(
    session: Session, actor: Actor, *, brand_id: int, at: dt.datetime | None = None
) -> list[tuple[Creative, list[dict[str, str]]]]:
    """Social ops' scheduling queue: the brand's approved creatives not yet scheduled, earliest approved first,
    each with what the scheduling gate still misses (nothing: ready to schedule)."""
    brand = brand_repository.get(session, actor, brand_id)
    actor.require("social_ops", brand_id=brand.id)
    at = at or utcnow()
    stmt = (
        select(Creative)
        .where(readable(actor), Creative.brand_id == brand.id, Creative.status == "approved")
        .order_by(Creative.approved_at, Creative.id)
    )
    return [(found, missing_for_schedule(session, found, at=at)) for found in session.scalars(stmt)]


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


POST_URL_RULE = "the post's address, starting with https://"


def is_post_url(url: str) -> bool:
    """A proof's URL is a web address: anything else (javascript:, data:) would be a link no one should follow."""
    return url.strip().lower().startswith(("https://", "http://"))


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
    """Proof that scheduled content went out: its URL, when, and optionally a file (a screenshot, within the
    storage's size and type limits). By the creator, its agency, or the brand's social ops."""
    creative = get_creative(session, actor, creative_id)
    _may_edit(session, actor, creator_id=creative.creator_id, brand_id=creative.brand_id, roles=("social_ops",))
    _aware("posted_at", posted_at)
    if not is_post_url(url):
        raise ValidationFailedError("invalid field(s): url", details=[{"loc": ["url"], "msg": POST_URL_RULE}])
    if creative.status not in ("scheduled", "posted"):
        raise ConflictError(f"creative {creative.id} is {creative.status}: only scheduled content can be posted")
    stored = (storage or default_storage()).put(data, name=file_name, content_type=content_type) if data else None
    proof = ProofOfPosting(
        creative_id=creative.id,
        url=url,
        posted_at=posted_at,
        file_key=stored.key if stored else "",
        file_name=stored.name if stored else "",
        content_type=stored.content_type if stored else "",
        size_bytes=stored.size if stored else 0,
    )
    session.add(proof)
    creative.status = "posted"
    session.flush()
    audit.record(session, actor, "creative.posted", creative, after={"url": url, "posted_at": posted_at})
    return proof


def feedback(session: Session, actor: Actor) -> list[tuple[Creative, ApprovalStep, str]]:
    """Decided reviews of the creatives ``actor`` may read, newest first, each with its approver's name: what a
    creator hears back. Steps closed automatically because another reviewer asked for changes, or because a
    newer version replaced the one in review, say nothing of their own."""
    stmt = (
        select(Creative, ApprovalStep, User.name)
        .join(ApprovalStep, (ApprovalStep.subject_type == "creative") & (ApprovalStep.subject_id == Creative.id))
        .outerjoin(User, User.id == ApprovalStep.approver_id)
        .where(readable(actor), ApprovalStep.decided_at.is_not(None), ApprovalStep.decision != "superseded")
        .order_by(ApprovalStep.decided_at.desc(), ApprovalStep.id.desc())
    )
    return [(creative, step, name or "Clearline") for creative, step, name in session.execute(stmt)]


def versions_of(session: Session, actor: Actor, creative_ids: list[int]) -> dict[int, list[CreativeVersion]]:
    """creative id -> its versions, newest first (of the creatives ``actor`` may read)."""
    stmt = (
        select(CreativeVersion)
        .join(Creative, Creative.id == CreativeVersion.creative_id)
        .where(Creative.id.in_(creative_ids), readable(actor))
        .order_by(CreativeVersion.version.desc())
    )
    found: dict[int, list[CreativeVersion]] = {}
    for version in session.scalars(stmt):
        found.setdefault(version.creative_id, []).append(version)
    return found


def proofs_of(session: Session, actor: Actor, creative_ids: list[int]) -> dict[int, list[ProofOfPosting]]:
    """creative id -> its proofs of posting, newest first (of the creatives ``actor`` may read)."""
    stmt = (
        select(ProofOfPosting)
        .join(Creative, Creative.id == ProofOfPosting.creative_id)
        .where(Creative.id.in_(creative_ids), readable(actor))
        .order_by(ProofOfPosting.posted_at.desc())
    )
    found: dict[int, list[ProofOfPosting]] = {}
    for proof in session.scalars(stmt):
        found.setdefault(proof.creative_id, []).append(proof)
    return found


def open_reviews_of(session: Session, actor: Actor, creative_ids: list[int]) -> dict[int, list[ApprovalStep]]:
    """creative id -> the reviews still open on it, earliest due first: what the creator is waiting for."""
    stmt = (
        select(ApprovalStep)
        .join(Creative, (ApprovalStep.subject_type == "creative") & (ApprovalStep.subject_id == Creative.id))
        .where(Creative.id.in_(creative_ids), readable(actor), ApprovalStep.decided_at.is_(None))
        .order_by(ApprovalStep.due_at)
    )
    found: dict[int, list[ApprovalStep]] = {}
    for step in session.scalars(stmt):
        found.setdefault(step.subject_id, []).append(step)
    return found


@dataclass
class FileToServe:
    """A stored file opened for reading, with what to send it as (the caller streams and closes it)."""

    handle: BinaryIO
    name: str
    content_type: str
    is_allowed_type: bool


def _open_file(storage: Storage | None, *, key: str, name: str, content_type: str, fallback: str) -> FileToServe:
    # Only the types an upload could have been accepted as are served as themselves; anything else (a row
    # written by hand) goes out as an opaque download.
    allowed = content_type in ALLOWED_TYPES
    served = content_type if allowed else "application/octet-stream"
    try:
        handle = (storage or default_storage()).open(key)
    except ValidationFailedError:
        # A key the storage refuses (not one it could have made) is a damaged row, not the caller's mistake.
        raise NotFoundError("no stored file for this row") from None
    return FileToServe(handle, download_name(name, content_type=served, fallback=fallback), served, allowed)


def version_file(
    session: Session, actor: Actor, *, creative_id: int, version_id: int, storage: Storage | None = None
) -> FileToServe:
    """A version's file, for whoever may read the creative (404 for anyone else, and for a version without
    a file). The storage key comes from the version's row, never from the request."""
    creative = get_creative(session, actor, creative_id)
    version = session.scalar(
        select(CreativeVersion).where(CreativeVersion.id == version_id, CreativeVersion.creative_id == creative.id)
    )
    if version is None or not version.file_key:
        raise NotFoundError(f"no file for version {version_id} of creative {creative.id}")
    return _open_file(
        storage,
        key=version.file_key,
        name=version.file_name,
        content_type=version.content_type,
        fallback=f"creative-{creative.id}-v{version.version}",
    )


def proof_file(
    session: Session, actor: Actor, *, creative_id: int, proof_id: int, storage: Storage | None = None
) -> FileToServe:
    """A proof of posting's file, for whoever may read the creative (404 for anyone else, and for a proof
    without a file)."""
    creative = get_creative(session, actor, creative_id)
    proof = session.scalar(
        select(ProofOfPosting).where(ProofOfPosting.id == proof_id, ProofOfPosting.creative_id == creative.id)
    )
    if proof is None or not proof.file_key:
        raise NotFoundError(f"no file for proof {proof_id} of creative {creative.id}")
    return _open_file(
        storage,
        key=proof.file_key,
        name=proof.file_name,
        content_type=proof.content_type,
        fallback=f"proof-{proof.id}",
    )

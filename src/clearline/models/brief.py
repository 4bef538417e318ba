"""Briefs, creatives and their versions, approval steps with SLAs, proofs of posting and scheduled posts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clearline.kit.db import Base, BigId, UTCDateTime
from clearline.models._base import created_at, pk


class BriefTemplate(Base):
    __tablename__ = "brief_templates"

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    defaults: Mapped[dict] = mapped_column(JSON, default=dict)  # type: ignore[type-arg]
    created_at: Mapped[dt.datetime] = created_at()


class Brief(Base):
    __tablename__ = "briefs"

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaigns.id"), index=True)
    team: Mapped[str] = mapped_column(String(100), default="")
    title: Mapped[str] = mapped_column(String(200))
    skus: Mapped[list[str]] = mapped_column(JSON)
    offer_code: Mapped[str] = mapped_column(String(64))
    landing_url: Mapped[str] = mapped_column(String(2000))
    call_to_action: Mapped[str] = mapped_column(String(500))
    key_messages: Mapped[list[str]] = mapped_column(JSON)
    disclaimers: Mapped[list[str]] = mapped_column(JSON)
    assets: Mapped[list[str]] = mapped_column(JSON, default=list)
    measurement_note: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(24), default="draft")
    legal_rounds: Mapped[int] = mapped_column(Integer, default=0)
    is_ambiguous: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = created_at()
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Creative(Base):
    __tablename__ = "creatives"
    __table_args__ = (UniqueConstraint("brief_id", "creator_id", "channel"),)

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    brief_id: Mapped[int] = mapped_column(BigId, ForeignKey("briefs.id"), index=True)
    creator_id: Mapped[int] = mapped_column(BigId, ForeignKey("creators.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    is_high_risk: Mapped[bool] = mapped_column(Boolean, default=False, doc="Health or performance claims.")
    status: Mapped[str] = mapped_column(String(24), default="draft")
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = created_at()


class CreativeVersion(Base):
    __tablename__ = "creative_versions"
    __table_args__ = (UniqueConstraint("creative_id", "version"),)

    id: Mapped[int] = pk()
    creative_id: Mapped[int] = mapped_column(BigId, ForeignKey("creatives.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    caption: Mapped[str] = mapped_column(Text, default="")
    file_key: Mapped[str] = mapped_column(String(200), default="")
    file_name: Mapped[str] = mapped_column(String(200), default="")
    content_type: Mapped[str] = mapped_column(String(100), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = created_at()


class ApprovalStep(Base):
    """One review with its SLA: due in business hours; decided, breached and escalated times recorded."""

    __tablename__ = "approval_steps"

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    subject_type: Mapped[str] = mapped_column(String(16), doc="brief or creative.")
    subject_id: Mapped[int] = mapped_column(BigId, index=True)
    kind: Mapped[str] = mapped_column(String(32), doc="content_check, legal_clearance or claims_rework.")
    role: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32), default="")
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    decision: Mapped[str] = mapped_column(String(24), default="", doc="approved or changes_requested.")
    approver_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    comment: Mapped[str] = mapped_column(Text, default="")
    breached_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ProofOfPosting(Base):
    __tablename__ = "proofs_of_posting"

    id: Mapped[int] = pk()
    creative_id: Mapped[int] = mapped_column(BigId, ForeignKey("creatives.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    posted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    file_key: Mapped[str] = mapped_column(String(200), default="")
    file_name: Mapped[str] = mapped_column(String(200), default="")
    content_type: Mapped[str] = mapped_column(String(100), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = created_at()


class ScheduledPost(Base):
    __tablename__ = "scheduled_posts"

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    creative_id: Mapped[int] = mapped_column(BigId, ForeignKey("creatives.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    scheduled_for: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    scheduled_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = created_at()

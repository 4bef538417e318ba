"""UTM templates, tracked links, their change log, clicks, coupon codes and link notifications."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clearline.kit.db import Base, BigId, UTCDateTime
from clearline.models._base import created_at, pk

LINK_STATUSES = ("draft", "pending_signoff", "live", "expired", "retired")


class UtmTemplate(Base):
    """Per-brand UTM patterns; placeholders: {brand} {channel} {campaign} {campaign_id} {creator} {sku}."""

    __tablename__ = "utm_templates"

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), unique=True)
    params: Mapped[dict[str, str]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = created_at()


class Link(Base):
    __tablename__ = "links"
    __table_args__ = (UniqueConstraint("campaign_id", "creator_id", "sku"),)

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaigns.id"), index=True)
    creator_id: Mapped[int] = mapped_column(BigId, ForeignKey("creators.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    sku: Mapped[str] = mapped_column(String(64), default="", doc="Empty for a campaign-wide link.")
    code: Mapped[str] = mapped_column(String(32), unique=True)
    destination_url: Mapped[str] = mapped_column(String(2000))
    utm: Mapped[dict[str, str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    is_single_use: Mapped[bool] = mapped_column(Boolean, default=False)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    signoff_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    signoff_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    signed_off_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    signed_off_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    health: Mapped[str] = mapped_column(String(16), default="unknown", doc="ok, broken or unknown.")
    health_checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    broken_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = created_at()


class LinkChange(Base):
    """Append-only feed of link changes; every redirect worker polls it to keep its in-memory map current."""

    __tablename__ = "link_changes"

    id: Mapped[int] = pk()
    link_id: Mapped[int] = mapped_column(BigId)
    at: Mapped[dt.datetime] = created_at()


class Click(Base):
    __tablename__ = "clicks"
    # link_id alone: the click counts read by link only, and a narrower index is cheaper per stored click.
    __table_args__ = (Index("ix_clicks_link_id", "link_id"),)

    id: Mapped[int] = pk()
    click_id: Mapped[str] = mapped_column(String(40), index=True, doc="The unsigned id part; repeats share it.")
    link_id: Mapped[int] = mapped_column(BigId)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ip_hash: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    referrer: Mapped[str] = mapped_column(String(1000), default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    is_repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str] = mapped_column(String(16), doc="live, expired, retired, used or not_live.")


class CouponCode(Base):
    __tablename__ = "coupon_codes"
    __table_args__ = (UniqueConstraint("brand_id", "code"),)

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("campaigns.id"), index=True)
    creator_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("creators.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    batch: Mapped[str] = mapped_column(String(64), default="")
    is_single_use: Mapped[bool] = mapped_column(Boolean, default=False)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    valid_from: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(16), default="issued", doc="issued or imported.")
    created_at: Mapped[dt.datetime] = created_at()


class Notification(Base):
    """An alert for a role on a brand (``role``) or a message to one creator (``creator_id``)."""

    __tablename__ = "notifications"

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    role: Mapped[str] = mapped_column(String(32), default="")
    creator_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("creators.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32), default="")
    subject_id: Mapped[int | None] = mapped_column(BigId)
    message: Mapped[str] = mapped_column(Text)
    level: Mapped[int] = mapped_column(Integer, default=1, doc="1 alert, 2 escalation.")
    created_at: Mapped[dt.datetime] = created_at()
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

"""Creators, agencies and agency rosters."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clearline.kit.db import Base, BigId
from clearline.models._base import created_at, pk


class Agency(Base):
    __tablename__ = "agencies"

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), default="")
    vendor_id: Mapped[str] = mapped_column(String(64), default="")
    payout_reference: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = created_at()


class Creator(Base):
    """A creator, onboarded by one brand (``brand_id``) and visible to brands it holds contracts with."""

    __tablename__ = "creators"

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), default="")
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    country: Mapped[str] = mapped_column(String(2), default="")
    vendor_id: Mapped[str] = mapped_column(String(64), default="")
    payout_reference: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = created_at()


class RosterEntry(Base):
    __tablename__ = "agency_roster"
    __table_args__ = (UniqueConstraint("agency_id", "creator_id"),)

    id: Mapped[int] = pk()
    agency_id: Mapped[int] = mapped_column(BigId, ForeignKey("agencies.id", ondelete="CASCADE"))
    creator_id: Mapped[int] = mapped_column(BigId, ForeignKey("creators.id"), index=True)
    created_at: Mapped[dt.datetime] = created_at()

"""SKUs and offers."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clearline.kit.db import Base, BigId, UTCDateTime
from clearline.models._base import created_at, pk


class Sku(Base):
    __tablename__ = "skus"
    __table_args__ = (UniqueConstraint("brand_id", "sku"),)

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(100), default="")
    tier: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    price_amount: Mapped[int] = mapped_column(BigInteger, doc="List price per unit, minor units (>= 0).")
    unit_cost_amount: Mapped[int | None] = mapped_column(
        BigInteger, doc="Unit cost, minor units (>= 0); null when the margin % is given instead."
    )
    margin_bp: Mapped[int | None] = mapped_column(Integer, doc="Gross margin in basis points of price.")
    return_rate_bp: Mapped[int] = mapped_column(Integer, default=0, doc="Expected return rate, bp.")
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Offer(Base):
    __tablename__ = "offers"
    __table_args__ = (UniqueConstraint("brand_id", "code"),)

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    eligible_skus: Mapped[list[str]] = mapped_column(JSON, default=list)
    excluded_skus: Mapped[list[str]] = mapped_column(JSON, default=list)
    language: Mapped[str] = mapped_column(Text, default="")
    language_approved_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    language_approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = created_at()

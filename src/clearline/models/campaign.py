from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clearline.kit.db import Base, BigId, UTCDateTime
from clearline.models._base import created_at, pk


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("brand_id", "slug"),)

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    offer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("offers.id"))
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    payment_model: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    fallback_url: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[dt.datetime] = created_at()

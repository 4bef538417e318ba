from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from clearline.kit.db import Base
from clearline.models._base import created_at, pk


class Brand(Base):
    __tablename__ = "brands"

    id: Mapped[int] = pk()
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    default_currency: Mapped[str] = mapped_column(String(3), default="USD")
    allowed_domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    gl_account: Mapped[str] = mapped_column(String(40), default="")
    cost_center: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[dt.datetime] = created_at()

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clearline.kit.db import Base, BigId, UTCDateTime
from clearline.models._base import pk


class AuditEvent(Base):
    """One link of the tamper-evident chain: ``hash`` covers this row's content and ``prev_hash``."""

    __tablename__ = "audit_events"

    id: Mapped[int] = pk()
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor_id: Mapped[int | None] = mapped_column(BigId)
    actor_label: Mapped[str] = mapped_column(String(254))
    reviewed_by_id: Mapped[int | None] = mapped_column(BigId)
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64))
    brand_id: Mapped[int | None] = mapped_column(BigId, index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The chain's head, one row: writers lock it, so the chain never forks and a cut tail shows."""

    __tablename__ = "audit_head"

    id: Mapped[int] = pk()
    last_event_id: Mapped[int | None] = mapped_column(BigId)
    last_hash: Mapped[str] = mapped_column(String(64))

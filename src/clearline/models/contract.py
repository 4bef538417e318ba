"""Contract templates (versioned, legal-owned), contracts and acceptances."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clearline.kit.db import Base, BigId, UTCDateTime
from clearline.models._base import created_at, pk


class ContractTemplate(Base):
    __tablename__ = "contract_templates"

    id: Mapped[int] = pk()
    brand_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("brands.id"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = created_at()


class ContractTemplateVersion(Base):
    __tablename__ = "contract_template_versions"
    __table_args__ = (UniqueConstraint("template_id", "version"),)

    id: Mapped[int] = pk()
    template_id: Mapped[int] = mapped_column(BigId, ForeignKey("contract_templates.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = created_at()


class Contract(Base):
    __tablename__ = "contracts"
    __table_args__ = (CheckConstraint("(creator_id IS NULL) <> (agency_id IS NULL)", name="one_party"),)

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    creator_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("creators.id"), index=True)
    agency_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("agencies.id"), index=True)
    template_version_id: Mapped[int] = mapped_column(BigId, ForeignKey("contract_template_versions.id"))
    model: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="offered")
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = created_at()


class ContractAcceptance(Base):
    __tablename__ = "contract_acceptances"

    id: Mapped[int] = pk()
    contract_id: Mapped[int] = mapped_column(BigId, ForeignKey("contracts.id"), unique=True)
    template_version_id: Mapped[int] = mapped_column(BigId, ForeignKey("contract_template_versions.id"))
    accepted_by_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    accepted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    terms_sha256: Mapped[str] = mapped_column(String(64))

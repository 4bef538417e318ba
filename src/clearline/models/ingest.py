"""The inbox (every accepted event, stored raw before processing), the order files accepted whole, per-brand
signing secrets, FX rates."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clearline.kit.db import Base, BigId, UTCDateTime
from clearline.models._base import created_at, pk


class InboxEvent(Base):
    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("brand_id", "source", "kind", "external_id"),
        Index("ix_inbox_events_unhandled", "handled_at", "id"),
    )

    id: Mapped[int] = pk()
    # No foreign key (migration 7d3b9e4a2c15): its per-row check was a third of storing a bulk file;
    # `ingest.integrity` finds an event whose brand is missing.
    brand_id: Mapped[int] = mapped_column(BigId)
    source: Mapped[str] = mapped_column(String(32), doc="postback, shopify, woocommerce or csv.")
    kind: Mapped[str] = mapped_column(String(16), doc="order or refund.")
    external_id: Mapped[str] = mapped_column(String(128), doc="Order or refund id at the source.")
    delivery_id: Mapped[str] = mapped_column(String(128), default="", doc="webhook-id / X-*-Webhook-Id.")
    body: Mapped[str] = mapped_column(Text)
    body_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = created_at()
    handled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str] = mapped_column(Text, default="")


class OrderFile(Base):
    """An order CSV whose every order was accepted (`csv_import.accept_orders`, no row rejected), known by the
    SHA-256 of its bytes: the same bytes again for the same brand make the same inbox bodies, so every order in
    them is a duplicate, found by this one row instead of order by order. Written in the unit of work that
    stores its orders."""

    __tablename__ = "order_files"
    __table_args__ = (UniqueConstraint("brand_id", "sha256"),)

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"))
    sha256: Mapped[str] = mapped_column(String(64), doc="SHA-256 of the file's bytes as uploaded, hex.")
    size: Mapped[int] = mapped_column(BigInteger, doc="The file's size in bytes (looked up before its digest).")
    filename: Mapped[str] = mapped_column(String(255), default="", doc="Its name when first accepted.")
    accepted_at: Mapped[dt.datetime] = created_at()
    orders: Mapped[int] = mapped_column(Integer, doc="Orders in the file (stored then, or known already).")
    rows: Mapped[int] = mapped_column(Integer, doc="Data rows in the file.")


class BrandSecret(Base):
    """Signing secrets per brand and channel; during rotation the old one stays valid until ``expires_at``."""

    __tablename__ = "brand_secrets"

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), doc="postback, shopify or woocommerce.")
    sealed_secret: Mapped[str] = mapped_column(
        Text, doc="The secret encrypted under the data key (`ingest.signatures.seal_secret`), never in clear."
    )
    created_at: Mapped[dt.datetime] = created_at()
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class FxRate(Base):
    """1 ``base`` = ``rate`` ``quote`` on ``day`` (imported by finance)."""

    __tablename__ = "fx_rates"
    __table_args__ = (UniqueConstraint("day", "base", "quote"),)

    id: Mapped[int] = pk()
    day: Mapped[dt.date] = mapped_column()
    base: Mapped[str] = mapped_column(String(3))
    quote: Mapped[str] = mapped_column(String(3))
    rate: Mapped[str] = mapped_column(String(32), doc="Decimal string, never a float.")

"""Orders and their lines, refunds, and attributions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clearline.kit.db import Base, BigId, UTCDateTime
from clearline.models._base import created_at, pk


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("brand_id", "external_id"),
        Index("ix_orders_brand_id_ordered_at", "brand_id", "ordered_at"),
    )

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"))
    external_id: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(32))
    ordered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    currency: Mapped[str] = mapped_column(String(3))
    customer_ref: Mapped[str] = mapped_column(String(64), default="", doc="Salted hash of the shop's customer id.")
    customer_email_hash: Mapped[str] = mapped_column(String(64), default="")
    is_new_customer: Mapped[bool | None] = mapped_column(Boolean)
    click_id: Mapped[str] = mapped_column(String(64), default="", doc="Signed click id as received.")
    coupon_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    landing_url: Mapped[str] = mapped_column(String(2000), default="")
    shipping_amount: Mapped[int] = mapped_column(BigInteger, default=0, doc="Customer pays; never commissioned.")
    tax_amount: Mapped[int] = mapped_column(BigInteger, default=0, doc="Customer pays; never commissioned.")
    ip_hash: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    inbox_event_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox_events.id"))
    received_at: Mapped[dt.datetime] = created_at()


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "line_no"),)

    id: Mapped[int] = pk()
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_amount: Mapped[int] = mapped_column(BigInteger, doc="Per unit, order currency, >= 0.")
    discount_amount: Mapped[int] = mapped_column(BigInteger, default=0, doc="Line discount, >= 0.")
    net_amount: Mapped[int] = mapped_column(BigInteger, doc="quantity × unit price − discount.")
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0, doc="Refunded so far, >= 0.")
    refunded_quantity: Mapped[int] = mapped_column(Integer, default=0)


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("brand_id", "external_id"),)

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"))
    external_id: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), doc="return or chargeback.")
    refunded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    inbox_event_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inbox_events.id"))
    received_at: Mapped[dt.datetime] = created_at()


class Attribution(Base):
    """Who gets the order, and why; re-attribution supersedes (never edits) the current row."""

    __tablename__ = "attributions"
    __table_args__ = (Index("ix_attributions_order_id_current", "order_id", "is_current"),)

    id: Mapped[int] = pk()
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"))
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    via: Mapped[str] = mapped_column(String(16), doc="coupon, click, utm or none.")
    creator_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("creators.id"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("campaigns.id"))
    link_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("links.id"))
    contract_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("contracts.id"))
    click_id: Mapped[str] = mapped_column(String(40), default="")
    coupon_code: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text)
    conflict: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(254), default="system")
    created_at: Mapped[dt.datetime] = created_at()

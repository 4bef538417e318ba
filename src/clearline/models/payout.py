"""Payout runs, their lines and items, disputes and adjustments, reconciliations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clearline.kit.db import Base, BigId, UTCDateTime
from clearline.models._base import created_at, pk

RUN_STATUSES = ("draft", "approved", "paid", "reconciled")


class PayoutRun(Base):
    __tablename__ = "payout_runs"

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    as_of: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    period_start: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="draft")
    minimum_amount: Mapped[int] = mapped_column(BigInteger, doc="Minimum payout in minor units (any currency).")
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    created_by_label: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = created_at()
    approved_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    approved_by_label: Mapped[str] = mapped_column(String(254), default="")
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    exported_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    carried_forward: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class PayoutLine(Base):
    """One payee × brand × currency in a run. Amounts are minor units, from the payee's point of view."""

    __tablename__ = "payout_lines"
    __table_args__ = (UniqueConstraint("run_id", "payee_type", "payee_id", "currency"),)

    id: Mapped[int] = pk()
    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("payout_runs.id"), index=True)
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"))
    payee_type: Mapped[str] = mapped_column(String(16))
    payee_id: Mapped[int] = mapped_column(BigId)
    payee_name: Mapped[str] = mapped_column(String(200))
    payee_vendor_id: Mapped[str] = mapped_column(String(64), default="")
    currency: Mapped[str] = mapped_column(String(3))
    commission_amount: Mapped[int] = mapped_column(BigInteger, default=0, doc="Commissions paid (>= 0).")
    retainer_amount: Mapped[int] = mapped_column(BigInteger, default=0, doc="Retainers paid (>= 0).")
    adjustment_amount: Mapped[int] = mapped_column(BigInteger, default=0, doc="Dispute adjustments (either sign).")
    clawback_amount: Mapped[int] = mapped_column(BigInteger, default=0, doc="Clawbacks netted (<= 0).")
    total_amount: Mapped[int] = mapped_column(BigInteger, doc="commission + retainer + adjustment + clawback.")
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    commission_line_count: Mapped[int] = mapped_column(Integer, default=0)
    contract_id: Mapped[int | None] = mapped_column(BigId)
    contract_version: Mapped[int | None] = mapped_column(Integer)
    contract_accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    brief_approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    link_signed_off_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    invoice_reference: Mapped[str] = mapped_column(String(64))


class PayoutItem(Base):
    """What a payout line pays. ``source`` is unique: no commission, release, clawback or adjustment is ever
    paid twice, whatever happens to the runs around it."""

    __tablename__ = "payout_items"
    __table_args__ = (UniqueConstraint("source"), Index("ix_payout_items_run_line", "run_id", "payout_line_id"))

    id: Mapped[int] = pk()
    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("payout_runs.id"))
    payout_line_id: Mapped[int] = mapped_column(BigId, ForeignKey("payout_lines.id"))
    source: Mapped[str] = mapped_column(String(80), doc="e.g. 'commission:12', 'reserve:12', 'clawback:<entry>'.")
    kind: Mapped[str] = mapped_column(String(16), doc="commission, retainer, reserve, clawback or adjustment.")
    commission_line_id: Mapped[int | None] = mapped_column(BigId, index=True)
    amount: Mapped[int] = mapped_column(BigInteger, doc="Payee's view: positive pays, negative nets off.")


class Dispute(Base):
    __tablename__ = "disputes"

    id: Mapped[int] = pk()
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    commission_line_id: Mapped[int] = mapped_column(BigId, ForeignKey("commission_lines.id"), index=True)
    opened_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open", doc="open, upheld or rejected.")
    created_at: Mapped[dt.datetime] = created_at()
    resolved_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    resolution: Mapped[str] = mapped_column(Text, default="")
    adjustment_amount: Mapped[int] = mapped_column(BigInteger, default=0, doc="Payee's view, either sign.")


class Reconciliation(Base):
    __tablename__ = "reconciliations"

    id: Mapped[int] = pk()
    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("payout_runs.id"), index=True)
    imported_by_label: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = created_at()
    matched: Mapped[int] = mapped_column(Integer)
    mismatched: Mapped[int] = mapped_column(Integer)
    missing: Mapped[int] = mapped_column(Integer)
    unknown: Mapped[int] = mapped_column(Integer)
    accuracy_bp: Mapped[int] = mapped_column(Integer, doc="matched ÷ all lines, basis points.")
    details: Mapped[list[dict[str, Any]]] = mapped_column(JSON)

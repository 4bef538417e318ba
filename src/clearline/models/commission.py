"""Commission lines (one per eligible order line) and the double-entry ledger."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clearline.kit.db import Base, BigId, UTCDateTime
from clearline.models._base import created_at, pk


class CommissionLine(Base):
    __tablename__ = "commission_lines"
    __table_args__ = (
        Index("ix_commission_lines_payee", "payee_type", "payee_id", "eligible_at"),
        # A contract's period cap sums its lines of the period at every accrual.
        Index("ix_commission_lines_contract_id_period", "contract_id", "period"),
    )

    id: Mapped[int] = pk()
    key: Mapped[str] = mapped_column(String(160), unique=True, doc="One line per business fact (idempotency).")
    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brands.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orders.id"), index=True)
    order_line_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("order_lines.id"))
    line_no: Mapped[int] = mapped_column(Integer, default=0)
    sku: Mapped[str] = mapped_column(String(64), default="")
    attribution_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("attributions.id"))
    contract_id: Mapped[int] = mapped_column(BigId, ForeignKey("contracts.id"))
    contract_version: Mapped[int] = mapped_column(Integer, doc="Template version the contract was signed on.")
    creator_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("creators.id"))
    payee_type: Mapped[str] = mapped_column(String(16), doc="creator or agency.")
    payee_id: Mapped[int] = mapped_column(BigId)
    rule: Mapped[str] = mapped_column(
        String(32), doc="cpa_unit, cpa_order, revshare_net_revenue, revshare_gross_margin, retainer, volume_bonus."
    )
    period: Mapped[str] = mapped_column(String(7), doc="YYYY-MM of the order (or of the retainer/bonus).")
    tier: Mapped[str] = mapped_column(String(32), default="")
    rate: Mapped[str] = mapped_column(String(32), doc="Decimal string: money per unit/order, or a percent.")
    customer_type: Mapped[str] = mapped_column(String(16), default="new")
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    order_currency: Mapped[str] = mapped_column(String(3))
    net_revenue_amount: Mapped[int] = mapped_column(BigInteger, default=0, doc="Order currency.")
    gross_margin_amount: Mapped[int] = mapped_column(BigInteger, default=0, doc="Order currency; may be < 0.")
    unit_price_amount: Mapped[int] = mapped_column(BigInteger, default=0, doc="SKU snapshot, order currency.")
    unit_cost_amount: Mapped[int] = mapped_column(BigInteger, default=0, doc="SKU snapshot, order currency.")
    fx_rate: Mapped[str] = mapped_column(String(32), default="1", doc="Order currency → contract currency.")
    currency: Mapped[str] = mapped_column(String(3), doc="Contract currency.")
    amount: Mapped[int] = mapped_column(BigInteger, doc="Earned by the payee (>= 0), rounded once, half-up.")
    reversed_amount: Mapped[int] = mapped_column(BigInteger, default=0, doc="Taken back so far (>= 0).")
    note: Mapped[str] = mapped_column(String(200), default="")
    earned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), doc="Order time.")
    eligible_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), doc="End of the verification window.")
    cleared_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reserve_amount: Mapped[int] = mapped_column(BigInteger, default=0, doc="Held back at clearing (>= 0).")
    reserve_release_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reserve_released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    hold_reason: Mapped[str] = mapped_column(
        String(200), default="", server_default="", doc="Non-empty: on hold, not payable."
    )
    created_at: Mapped[dt.datetime] = created_at()


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (UniqueConstraint("code"),)

    id: Mapped[int] = pk()
    code: Mapped[str] = mapped_column(String(120), doc="e.g. 'creator:7:pending:USD' or 'brand:1:expense:USD'.")
    brand_id: Mapped[int] = mapped_column(BigId)
    owner_type: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))


class LedgerEntry(Base):
    """A journal entry; its postings sum to zero per currency. Append-only: corrections are new entries."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = pk()
    key: Mapped[str] = mapped_column(String(160), unique=True, doc="Idempotency key: one entry per business event.")
    kind: Mapped[str] = mapped_column(String(32))
    brand_id: Mapped[int] = mapped_column(BigId, index=True)
    commission_line_id: Mapped[int | None] = mapped_column(BigId, index=True)
    memo: Mapped[str] = mapped_column(String(300), default="")
    effective_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = created_at()


class LedgerPosting(Base):
    """One side of an entry. No foreign keys (their per-row checks were half the cost of posting): postings are
    written only by ``ledger.post`` from the entries and accounts of the same statement, and
    ``ledger.integrity`` finds any posting whose entry or account is missing."""

    __tablename__ = "ledger_postings"

    id: Mapped[int] = pk()
    entry_id: Mapped[int] = mapped_column(BigId, index=True, doc="ledger_entries.id (not a foreign key, see above).")
    account_id: Mapped[int] = mapped_column(BigId, index=True, doc="ledger_accounts.id (not a foreign key).")
    amount: Mapped[int] = mapped_column(
        BigInteger, doc="Signed minor units: credit positive, debit negative; an entry's postings sum to zero."
    )
    currency: Mapped[str] = mapped_column(String(3))

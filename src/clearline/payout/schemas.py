from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    brand_id: int
    as_of: dt.datetime
    period_start: dt.datetime | None = None
    minimum: Decimal = Field(default=Decimal("50.00"), ge=0)


class PayoutLineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    payee_type: str
    payee_id: int
    payee_name: str
    currency: str
    commission_amount: int
    retainer_amount: int
    adjustment_amount: int
    clawback_amount: int
    total_amount: int
    order_count: int
    commission_line_count: int
    invoice_reference: str


class RunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    brand_id: int
    as_of: dt.datetime
    period_start: dt.datetime
    period_end: dt.datetime
    status: str
    created_by_label: str
    approved_by_label: str
    approved_at: dt.datetime | None
    exported_at: dt.datetime | None
    paid_at: dt.datetime | None
    carried_forward: list[dict[str, Any]]
    totals: dict[str, str] = Field(default_factory=dict)
    lines: list[PayoutLineRead] = Field(default_factory=list)


class ReconciliationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int
    matched: int
    mismatched: int
    missing: int
    unknown: int
    accuracy_bp: int
    details: list[dict[str, Any]]


class DisputeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    commission_line_id: int
    reason: str = Field(min_length=3)


class DisputeResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: str = Field(pattern="^(upheld|rejected)$")
    reason: str = Field(min_length=3)
    adjustment: Decimal = Decimal(0)


class DisputeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    brand_id: int
    commission_line_id: int
    reason: str
    status: str
    created_at: dt.datetime
    resolved_at: dt.datetime | None
    resolution: str
    adjustment_amount: int

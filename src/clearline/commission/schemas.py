from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CommissionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    brand_id: int
    order_id: int | None
    line_no: int
    sku: str
    creator_id: int | None
    payee_type: str
    payee_id: int
    contract_id: int
    contract_version: int
    rule: str
    tier: str
    rate: str
    customer_type: str
    currency: str
    amount: int = Field(description="Minor units earned.")
    reversed_amount: int
    fx_rate: str
    earned_at: dt.datetime
    eligible_at: dt.datetime
    cleared_at: dt.datetime | None
    note: str


class OrderRead(BaseModel):
    id: int
    order_id: str
    source: str
    created_at: dt.datetime
    currency: str
    attributed_via: str
    creator_id: int | None
    reason: str
    conflict: bool
    commission_amount: int
    reversed_amount: int


class ReattributeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    creator_id: int | None = Field(description="The creator who should get the order, or null for nobody.")
    campaign_id: int | None = None
    reason: str = Field(min_length=3)
    via: Literal["coupon", "click", "utm"] | None = Field(
        default=None,
        description="The evidence for the new creator, when no coupon, click or UTM touch on the order names them.",
    )

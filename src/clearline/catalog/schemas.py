from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SkuRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    brand_id: int
    sku: str
    name: str
    category: str
    tier: str
    currency: str
    price_amount: int
    unit_cost_amount: int | None
    margin_bp: int | None
    return_rate_bp: int


class SkuImportReport(BaseModel):
    created: int
    updated: int


class OfferCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[A-Za-z0-9_-]{2,64}$")
    name: str = Field(min_length=1, max_length=200)
    starts_at: dt.datetime
    ends_at: dt.datetime
    eligible_skus: list[str] = Field(min_length=1)
    excluded_skus: list[str] = Field(default_factory=list)
    language: str = ""

    @model_validator(mode="after")
    def _window(self) -> OfferCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("times need a UTC offset")
        return self


class OfferRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    brand_id: int
    code: str
    name: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    eligible_skus: list[str]
    excluded_skus: list[str]
    language: str
    language_approved_by_id: int | None
    language_approved_at: dt.datetime | None


class LanguageApproval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: str = Field(min_length=1)
    reason: str = ""


class SkuParsed(BaseModel):
    sku: str
    name: str
    category: str
    tier: str
    currency: str
    price: Decimal
    unit_cost: Decimal | None
    margin_pct: Decimal | None
    return_rate_pct: Decimal

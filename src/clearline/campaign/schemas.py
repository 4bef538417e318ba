from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str = Field(min_length=1, max_length=200)
    offer_id: int | None = None
    payment_model: Literal["cpa", "revshare", "hybrid"]
    starts_at: dt.datetime
    ends_at: dt.datetime
    fallback_url: HttpUrl

    @model_validator(mode="after")
    def _window(self) -> CampaignCreate:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("times need a UTC offset")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class CampaignRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    brand_id: int
    offer_id: int | None
    slug: str
    name: str
    payment_model: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    fallback_url: str

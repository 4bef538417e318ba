from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class UtmTemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    params: dict[str, str]
    reason: str = ""


class LinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: int
    creator_id: int
    channel: str = Field(min_length=1, max_length=32)
    destination_url: str = Field(min_length=1, max_length=2000)
    sku: str = ""
    is_single_use: bool = False
    expires_at: dt.datetime | None = None
    submit: bool = Field(default=True, description="Send straight to ops sign-off (else stays draft).")


class LinkPreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: int
    creator_id: int
    channel: str = Field(min_length=1, max_length=32)
    destination_url: str
    sku: str = ""


class LinkPreview(BaseModel):
    utm: dict[str, str]
    landing_url: str


class Readiness(BaseModel):
    contract: bool
    signoff: bool
    health: bool


class LinkRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    brand_id: int
    campaign_id: int
    creator_id: int
    channel: str
    sku: str
    code: str
    short_url: str = ""
    destination_url: str
    utm: dict[str, str]
    status: str
    is_single_use: bool
    used_at: dt.datetime | None
    expires_at: dt.datetime
    signoff_requested_at: dt.datetime | None
    signoff_due_at: dt.datetime | None
    signed_off_by_id: int | None
    signed_off_at: dt.datetime | None
    health: str
    broken_since: dt.datetime | None
    readiness: Readiness | None = None
    clicks: int = 0
    unique_clicks: int = 0


class SignoffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = ""


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destination_url: str
    reason: str = Field(min_length=1)


class RetireIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1)


class SignoffQueue(BaseModel):
    pending: list[LinkRead]
    breaches: list[LinkRead]


class CouponCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    creator_id: int
    code: str | None = None
    valid_until: dt.datetime | None = None


class CouponBatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1, le=10_000)
    prefix: str = ""
    creator_id: int | None = None


class CouponRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    brand_id: int
    campaign_id: int | None
    creator_id: int | None
    code: str
    batch: str
    is_single_use: bool
    used_at: dt.datetime | None
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    source: str


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    brand_id: int
    role: str
    creator_id: int | None
    kind: str
    subject_type: str
    subject_id: int | None
    message: str
    level: int
    created_at: dt.datetime

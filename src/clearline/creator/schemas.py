from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

HANDLE = r"^[a-z0-9][a-z0-9_.]{1,63}$"


class CreatorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handle: str = Field(pattern=HANDLE)
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(default="", max_length=254)
    channels: list[str] = Field(default_factory=list)
    country: str = Field(default="", pattern=r"^([A-Z]{2})?$")
    vendor_id: str = Field(default="", max_length=64)
    payout_reference: str = Field(default="", max_length=200)


class CreatorRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    brand_id: int
    handle: str
    name: str
    email: str
    channels: list[str]
    country: str
    vendor_id: str
    created_at: dt.datetime


class AgencyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    email: str = Field(default="", max_length=254)
    vendor_id: str = Field(default="", max_length=64)
    payout_reference: str = Field(default="", max_length=200)


class AgencyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    brand_id: int
    name: str
    email: str
    vendor_id: str
    creator_ids: list[int] = Field(default_factory=list)


class ImportReport(BaseModel):
    created: int
    updated: int = 0

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from clearline.contract.terms import ContractTerms


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    brand_id: int | None = None
    body: str = Field(min_length=1)


class TemplateVersionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1)
    reason: str = ""


class TemplateVersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    template_id: int
    version: int
    body: str
    created_at: dt.datetime


class TemplateRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    brand_id: int | None
    name: str
    versions: list[TemplateVersionRead] = Field(default_factory=list)


class ContractCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    creator_id: int | None = None
    agency_id: int | None = None
    template_version_id: int
    terms: ContractTerms
    starts_at: dt.datetime
    ends_at: dt.datetime | None = None

    @model_validator(mode="after")
    def _one_party(self) -> ContractCreate:
        if (self.creator_id is None) == (self.agency_id is None):
            raise ValueError("give exactly one of creator_id and agency_id")
        if self.starts_at.tzinfo is None:
            raise ValueError("starts_at needs a UTC offset")
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class ContractRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    brand_id: int
    creator_id: int | None
    agency_id: int | None
    template_version_id: int
    template_version: int | None = None
    model: str
    currency: str
    terms: dict[str, Any]
    status: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    accepted_at: dt.datetime | None = None
    accepted_by_id: int | None = None

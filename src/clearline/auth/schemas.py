from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str
    brand_id: int | None = None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str
    name: str = Field(min_length=1, max_length=200)
    password: str | None = None
    grants: list[GrantIn] = Field(default_factory=list)
    creator_id: int | None = None
    agency_id: int | None = None
    reason: str = ""


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    is_active: bool
    creator_id: int | None
    agency_id: int | None


class MeRead(BaseModel):
    user_id: int | None
    email: str
    grants: dict[str, list[int | None]]
    creator_id: int | None
    agency_id: int | None


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="key", max_length=100)
    user_id: int | None = None


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    name: str
    prefix: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class ApiKeyCreated(ApiKeyRead):
    secret: str = Field(description="Shown once; only its hash is stored.")

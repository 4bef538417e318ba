from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

TRACKING_FIELDS = (
    "skus",
    "offer_code",
    "landing_url",
    "call_to_action",
    "key_messages",
    "disclaimers",
    "measurement_note",
)


class BriefIn(BaseModel):
    """Every field is optional here so that the service can name *all* missing tracking fields at once."""

    model_config = ConfigDict(extra="forbid")

    campaign_id: int
    title: str = Field(min_length=1, max_length=200)
    team: str = Field(default="", max_length=100)
    template_id: int | None = None
    skus: list[str] | None = None
    offer_code: str | None = None
    landing_url: str | None = None
    call_to_action: str | None = None
    key_messages: list[str] | None = None
    disclaimers: list[str] | None = None
    assets: list[str] = Field(default_factory=list)
    measurement_note: str | None = None


class BriefRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    brand_id: int
    campaign_id: int
    team: str
    title: str
    skus: list[str]
    offer_code: str
    landing_url: str
    call_to_action: str
    key_messages: list[str]
    disclaimers: list[str]
    assets: list[str]
    measurement_note: str
    status: str
    legal_rounds: int
    is_ambiguous: bool
    approved_at: dt.datetime | None


class StepRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    subject_type: str
    subject_id: int
    kind: str
    role: str
    channel: str
    opened_at: dt.datetime
    due_at: dt.datetime
    decided_at: dt.datetime | None
    decision: str
    approver_id: int | None
    comment: str
    breached_at: dt.datetime | None
    escalated_at: dt.datetime | None


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: str = Field(pattern="^(approved|changes_requested)$")
    comment: str = ""


class CreativeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    brief_id: int
    creator_id: int
    channel: str = Field(min_length=1, max_length=32)
    is_high_risk: bool = False


class CreativeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    brief_id: int
    creator_id: int
    channel: str
    is_high_risk: bool
    status: str
    approved_at: dt.datetime | None


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheduled_for: dt.datetime


class ProofIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2000)
    posted_at: dt.datetime

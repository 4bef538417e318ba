from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from clearline.audit import service
from clearline.auth.deps import CurrentActor, DbSession

router = APIRouter(tags=["audit"])


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: dt.datetime
    actor_id: int | None
    actor_label: str
    action: str
    entity_type: str
    entity_id: str
    brand_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str
    hash: str


class VerifyRead(BaseModel):
    ok: bool
    checked: int
    broken_event_id: int | None
    problem: str


@router.get("/audit-events", response_model=list[AuditEventRead])
def list_events(session: DbSession, actor: CurrentActor, brand_id: int | None = None) -> object:
    """The most recent audit events (admin; a brand admin sees that brand's)."""
    return service.list_events(session, actor, brand_id=brand_id)


@router.get("/audit/verify", response_model=VerifyRead)
def verify(session: DbSession, actor: CurrentActor) -> VerifyRead:
    """Walk the whole hash chain and report the first broken link (admin on all brands)."""
    actor.require("admin")
    result = service.verify(session)
    return VerifyRead(
        ok=result.ok, checked=result.checked, broken_event_id=result.broken_event_id, problem=result.problem
    )

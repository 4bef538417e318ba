from __future__ import annotations

from fastapi import APIRouter

from clearline.auth import service
from clearline.auth.deps import CurrentActor, DbSession
from clearline.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    GrantIn,
    MeRead,
    UserCreate,
    UserRead,
)

router = APIRouter(tags=["users"])


@router.get("/me", response_model=MeRead)
def me(actor: CurrentActor) -> MeRead:
    return MeRead(
        user_id=actor.user_id,
        email=actor.label,
        grants={role: sorted(b, key=lambda x: x or 0) for role, b in actor.grants.items()},
        creator_id=actor.creator_id,
        agency_id=actor.agency_id,
    )


@router.post("/users", response_model=UserRead, status_code=201)
def create_user(body: UserCreate, session: DbSession, actor: CurrentActor) -> object:
    """Create a user with role grants per brand (admin)."""
    return service.create_user(
        session,
        actor,
        email=body.email,
        name=body.name,
        password=body.password,
        grants=[(g.role, g.brand_id) for g in body.grants],
        creator_id=body.creator_id,
        agency_id=body.agency_id,
        reason=body.reason,
    )


@router.post("/users/{user_id}/grants", status_code=201)
def grant(user_id: int, body: GrantIn, session: DbSession, actor: CurrentActor) -> dict[str, object]:
    """Grant a role on a brand (or every brand when brand_id is null) (admin)."""
    created = service.grant_role(session, actor, user_id=user_id, role=body.role, brand_id=body.brand_id)
    return {"id": created.id, "user_id": user_id, "role": body.role, "brand_id": body.brand_id}


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=201)
def create_api_key(body: ApiKeyCreate, session: DbSession, actor: CurrentActor) -> ApiKeyCreated:
    """Create an API key (your own, or any user's as admin). The secret is shown only in this answer."""
    key, secret = service.create_api_key(
        session, actor, user_id=body.user_id or actor.user_id or 0, name=body.name
    )
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), secret=secret)


@router.get("/api-keys", response_model=list[ApiKeyRead])
def list_api_keys(session: DbSession, actor: CurrentActor) -> object:
    return service.list_api_keys(session, actor, user_id=actor.user_id or 0)


@router.delete("/api-keys/{key_id}", response_model=ApiKeyRead)
def revoke_api_key(key_id: int, session: DbSession, actor: CurrentActor) -> object:
    """Revoke a key at once; later requests with it get 401."""
    return service.revoke_api_key(session, actor, key_id=key_id)

"""Users, grants, API keys and web sessions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.kit import security
from clearline.kit.clock import utcnow
from clearline.kit.errors import ConflictError, NotFoundError, UnauthenticatedError, ValidationFailedError
from clearline.models import ROLES, ApiKey, Brand, RoleGrant, User, WebSession

API_KEY_PREFIX = "clk_"


def actor_for(session: Session, user: User) -> Actor:
    grants: dict[str, set[int | None]] = {}
    for grant in session.scalars(select(RoleGrant).where(RoleGrant.user_id == user.id)):
        grants.setdefault(grant.role, set()).add(grant.brand_id)
    return Actor(
        user_id=user.id,
        label=user.email,
        grants={role: frozenset(brands) for role, brands in grants.items()},
        creator_id=user.creator_id,
        agency_id=user.agency_id,
    )


def _validate_grants(session: Session, grants: list[tuple[str, int | None]]) -> None:
    errors = []
    for index, (role, brand_id) in enumerate(grants):
        if role not in ROLES:
            errors.append({"loc": ["grants", index, "role"], "msg": f"unknown role {role!r}"})
        if brand_id is not None and session.get(Brand, brand_id) is None:
            errors.append({"loc": ["grants", index, "brand_id"], "msg": f"no brand {brand_id}"})
    if errors:
        raise ValidationFailedError("invalid role grants", details=errors)


def create_user(
    session: Session,
    actor: Actor,
    *,
    email: str,
    name: str,
    password: str | None,
    grants: list[tuple[str, int | None]],
    creator_id: int | None = None,
    agency_id: int | None = None,
    reason: str = "",
) -> User:
    """Create a user with role grants (admin only). A creator or agency user is bound to its record."""
    actor.require("admin")
    email = email.strip().lower()
    if "@" not in email:
        raise ValidationFailedError("invalid e-mail", details=[{"loc": ["email"], "msg": "not an e-mail"}])
    if password is not None and len(password) < 8:
        raise ValidationFailedError(
            "password too short", details=[{"loc": ["password"], "msg": "at least 8 characters"}]
        )
    _validate_grants(session, grants)
    roles = {role for role, _ in grants}
    if "creator" in roles and creator_id is None:
        raise ValidationFailedError(
            "creator role needs creator_id", details=[{"loc": ["creator_id"], "msg": "required"}]
        )
    if "agency" in roles and agency_id is None:
        raise ValidationFailedError(
            "agency role needs agency_id", details=[{"loc": ["agency_id"], "msg": "required"}]
        )
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise ConflictError(f"a user with e-mail {email} exists")
    user = User(
        email=email,
        name=name,
        password_hash=security.hash_password(password) if password else None,
        creator_id=creator_id,
        agency_id=agency_id,
    )
    session.add(user)
    session.flush()
    for role, brand_id in grants:
        session.add(RoleGrant(user_id=user.id, role=role, brand_id=brand_id))
    session.flush()
    audit.record(
        session,
        actor,
        "user.created",
        user,
        after={"email": email, "name": name, "grants": [list(g) for g in grants]},
        reason=reason,
    )
    return user


def grant_role(
    session: Session, actor: Actor, *, user_id: int, role: str, brand_id: int | None, reason: str = ""
) -> RoleGrant:
    actor.require("admin")
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"no user {user_id}")
    _validate_grants(session, [(role, brand_id)])
    grant = RoleGrant(user_id=user_id, role=role, brand_id=brand_id)
    session.add(grant)
    session.flush()
    audit.record(
        session,
        actor,
        "role_grant.created",
        grant,
        after={"user_id": user_id, "role": role, "brand_id": brand_id},
        reason=reason,
    )
    return grant


def create_api_key(session: Session, actor: Actor, *, user_id: int, name: str) -> tuple[ApiKey, str]:
    """Create a key for a user; the secret is returned once and only its hash is kept."""
    if actor.user_id != user_id:
        actor.require("admin")
    if session.get(User, user_id) is None:
        raise NotFoundError(f"no user {user_id}")
    secret = API_KEY_PREFIX + security.new_token(30)
    key = ApiKey(
        user_id=user_id, name=name or "key", prefix=secret[:10], key_hash=security.hash_token(secret)
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        actor,
        "api_key.created",
        key,
        after={"user_id": user_id, "name": key.name, "prefix": key.prefix},
    )
    return key, secret


def list_api_keys(session: Session, actor: Actor, *, user_id: int) -> list[ApiKey]:
    if actor.user_id != user_id:
        actor.require("admin")
    return list(session.scalars(select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.id)))


def revoke_api_key(session: Session, actor: Actor, *, key_id: int, reason: str = "") -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None or (key.user_id != actor.user_id and not actor.is_admin):
        raise NotFoundError(f"no API key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(
            session,
            actor,
            "api_key.revoked",
            key,
            before={"revoked_at": None},
            after={"revoked_at": key.revoked_at.isoformat()},
            reason=reason,
        )
    return key


def authenticate_api_key(session: Session, secret: str) -> Actor:
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == security.hash_token(secret)))
    if key is None or key.revoked_at is not None:
        raise UnauthenticatedError("invalid or revoked API key")
    user = session.get(User, key.user_id)
    if user is None or not user.is_active:
        raise UnauthenticatedError("user is inactive")
    return actor_for(session, user)


def login(session: Session, *, email: str, password: str, max_age_hours: int) -> tuple[WebSession, str]:
    """Check the password (argon2) and open a web session; the cookie value is returned once."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active or not user.password_hash:
        security.hash_password(password)  # same cost whether or not the user exists
        raise UnauthenticatedError("wrong e-mail or password")
    if not security.verify_password(user.password_hash, password):
        raise UnauthenticatedError("wrong e-mail or password")
    token = security.new_token()
    web_session = WebSession(
        token_hash=security.hash_token(token),
        user_id=user.id,
        csrf_token=security.new_token(24),
        expires_at=utcnow() + dt.timedelta(hours=max_age_hours),
    )
    session.add(web_session)
    session.flush()
    return web_session, token


def session_user(session: Session, token: str) -> tuple[WebSession, User] | None:
    web_session = session.scalar(
        select(WebSession).where(WebSession.token_hash == security.hash_token(token))
    )
    if web_session is None or web_session.expires_at <= utcnow():
        return None
    user = session.get(User, web_session.user_id)
    if user is None or not user.is_active:
        return None
    return web_session, user


def logout(session: Session, token: str) -> None:
    found = session.scalar(select(WebSession).where(WebSession.token_hash == security.hash_token(token)))
    if found is not None:
        session.delete(found)

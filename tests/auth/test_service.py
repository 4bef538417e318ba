"""Users and grants, API keys (shown once, stored hashed, revocable) and password logins."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.auth import service as auth_service
from clearline.auth.actor import Actor
from clearline.kit.clock import utcnow
from clearline.kit.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnauthenticatedError,
    ValidationFailedError,
)
from clearline.models import ApiKey, AuditEvent, RoleGrant, User, WebSession
from tests import factories

PASSWORD = "correct horse battery"


class TestCreateUser:
    def test_an_admin_creates_a_user_with_grants_per_brand(self, db: Session) -> None:
        brand = factories.brand(db)
        user = auth_service.create_user(
            db,
            factories.SYSTEM,
            email=" Finance@Example.COM ",
            name="Fin",
            password=PASSWORD,
            grants=[("finance", brand.id), ("marketing", None)],
            reason="new hire",
        )
        assert user.email == "finance@example.com"
        actor = auth_service.actor_for(db, user)
        assert actor.grants == {"finance": frozenset({brand.id}), "marketing": frozenset({None})}
        event = db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
        assert (event.action, event.reason) == ("user.created", "new hire")

    def test_the_password_is_stored_as_an_argon2_hash(self, db: Session) -> None:
        user = factories.user(db, password=PASSWORD)
        assert user.password_hash is not None and user.password_hash.startswith("$argon2")
        assert PASSWORD not in user.password_hash

    def test_a_short_password_is_refused_naming_the_field(self, db: Session) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            auth_service.create_user(db, factories.SYSTEM, email="a@example.com", name="A", password="short", grants=[])
        assert caught.value.details == [{"loc": ["password"], "msg": "at least 8 characters"}]

    def test_an_unknown_role_and_an_unknown_brand_are_each_named(self, db: Session) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            auth_service.create_user(
                db,
                factories.SYSTEM,
                email="a@example.com",
                name="A",
                password=None,
                grants=[("wizard", None), ("finance", 999_999)],
            )
        assert caught.value.details == [
            {"loc": ["grants", 0, "role"], "msg": "unknown role 'wizard'"},
            {"loc": ["grants", 1, "brand_id"], "msg": "no brand 999999"},
        ]

    def test_a_creator_user_must_be_bound_to_a_creator(self, db: Session) -> None:
        brand = factories.brand(db)
        with pytest.raises(ValidationFailedError, match="creator_id"):
            auth_service.create_user(
                db, factories.SYSTEM, email="c@example.com", name="C", password=None, grants=[("creator", brand.id)]
            )

    def test_an_e_mail_can_only_be_used_once(self, db: Session) -> None:
        auth_service.create_user(db, factories.SYSTEM, email="a@example.com", name="A", password=None, grants=[])
        with pytest.raises(ConflictError):
            auth_service.create_user(db, factories.SYSTEM, email="A@example.com", name="A", password=None, grants=[])

    def test_a_brand_admin_cannot_create_users(self, db: Session) -> None:
        brand = factories.brand(db)
        with pytest.raises(ForbiddenError):
            auth_service.create_user(
                db, factories.actor(db, ("admin", brand.id)), email="a@example.com", name="A", password=None, grants=[]
            )


class TestGrantRole:
    def test_a_grant_widens_the_users_actor(self, db: Session) -> None:
        brand = factories.brand(db)
        user = factories.user(db, password=None)
        auth_service.grant_role(db, factories.SYSTEM, user_id=user.id, role="legal", brand_id=brand.id)
        assert auth_service.actor_for(db, user).has_role("legal", brand.id)

    def test_granting_to_an_unknown_user_is_not_found(self, db: Session) -> None:
        with pytest.raises(NotFoundError):
            auth_service.grant_role(db, factories.SYSTEM, user_id=999_999, role="legal", brand_id=None)


class TestCreateApiKey:
    def test_the_secret_is_returned_once_and_only_its_hash_is_stored(self, db: Session) -> None:
        user = factories.user(db, password=None)
        key, secret = auth_service.create_api_key(db, factories.SYSTEM, user_id=user.id, name="ci")
        assert secret.startswith("clk_") and len(secret) > 30
        assert key.key_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert key.prefix == secret[:10]
        stored = db.scalars(select(ApiKey).where(ApiKey.id == key.id)).one()
        assert secret not in (stored.key_hash, stored.prefix, stored.name)

    def test_every_key_is_different(self, db: Session) -> None:
        user = factories.user(db, password=None)
        secrets = {auth_service.create_api_key(db, factories.SYSTEM, user_id=user.id, name="k")[1] for _ in range(5)}
        assert len(secrets) == 5

    def test_the_audit_event_keeps_the_prefix_not_the_secret(self, db: Session) -> None:
        user = factories.user(db, password=None)
        _, secret = auth_service.create_api_key(db, factories.SYSTEM, user_id=user.id, name="ci")
        event = db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
        assert event.action == "api_key.created"
        assert secret not in str(event.after)

    def test_a_user_creates_keys_for_itself(self, db: Session) -> None:
        user = factories.user(db, ("finance", None), password=None)
        key, _ = auth_service.create_api_key(db, auth_service.actor_for(db, user), user_id=user.id, name="mine")
        assert key.user_id == user.id

    def test_only_an_admin_creates_keys_for_someone_else(self, db: Session) -> None:
        brand = factories.brand(db)
        victim = factories.user(db, ("finance", brand.id), password=None)
        with pytest.raises(ForbiddenError):
            auth_service.create_api_key(db, factories.actor(db, ("admin", brand.id)), user_id=victim.id, name="x")

    def test_the_api_answer_shows_the_secret_and_the_listing_never_does(self, client, db: Session) -> None:  # type: ignore[no-untyped-def]
        user = factories.user(db, ("marketing", None), password=None)
        headers = {"Authorization": f"Bearer {factories.api_key(db, user)}"}
        created = client.post("/api/v1/api-keys", json={"name": "laptop"}, headers=headers)
        assert created.status_code == 201
        secret = created.json()["secret"]
        listing = client.get("/api/v1/api-keys", headers=headers)
        assert "secret" not in listing.text and secret not in listing.text
        assert [k["name"] for k in listing.json()] == ["test", "laptop"]
        assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).json()["user_id"] == user.id


class TestRevokeApiKey:
    def test_a_revoked_key_no_longer_authenticates(self, db: Session) -> None:
        user = factories.user(db, password=None)
        key, secret = auth_service.create_api_key(db, factories.SYSTEM, user_id=user.id, name="k")
        assert auth_service.authenticate_api_key(db, secret).user_id == user.id
        auth_service.revoke_api_key(db, auth_service.actor_for(db, user), key_id=key.id, reason="lost laptop")
        with pytest.raises(UnauthenticatedError, match="invalid or revoked"):
            auth_service.authenticate_api_key(db, secret)

    def test_revoking_twice_keeps_the_first_time_and_audits_once(self, db: Session) -> None:
        user = factories.user(db, password=None)
        key, _ = auth_service.create_api_key(db, factories.SYSTEM, user_id=user.id, name="k")
        first = auth_service.revoke_api_key(db, factories.SYSTEM, key_id=key.id).revoked_at
        second = auth_service.revoke_api_key(db, factories.SYSTEM, key_id=key.id).revoked_at
        assert first == second
        revoked = db.scalars(select(AuditEvent).where(AuditEvent.action == "api_key.revoked")).all()
        assert len(revoked) == 1

    def test_someone_elses_key_is_not_found(self, db: Session) -> None:
        owner, other = factories.user(db, password=None), factories.user(db, ("finance", None), password=None)
        key, _ = auth_service.create_api_key(db, factories.SYSTEM, user_id=owner.id, name="k")
        with pytest.raises(NotFoundError):
            auth_service.revoke_api_key(db, auth_service.actor_for(db, other), key_id=key.id)

    def test_an_admin_revokes_anyones_key(self, db: Session) -> None:
        owner = factories.user(db, password=None)
        key, _ = auth_service.create_api_key(db, factories.SYSTEM, user_id=owner.id, name="k")
        assert auth_service.revoke_api_key(db, factories.actor(db, ("admin", None)), key_id=key.id).revoked_at


class TestAuthenticateApiKey:
    def test_the_key_carries_its_users_roles_and_brand_scope(self, db: Session) -> None:
        brand = factories.brand(db)
        user = factories.user(db, ("finance", brand.id), password=None)
        actor = auth_service.authenticate_api_key(db, factories.api_key(db, user))
        assert (actor.user_id, actor.label, actor.grants) == (user.id, user.email, {"finance": frozenset({brand.id})})

    def test_an_unknown_key_is_refused(self, db: Session) -> None:
        with pytest.raises(UnauthenticatedError):
            auth_service.authenticate_api_key(db, "clk_nothing")

    def test_a_deactivated_users_key_is_refused(self, db: Session) -> None:
        user = factories.user(db, password=None)
        secret = factories.api_key(db, user)
        user.is_active = False
        with pytest.raises(UnauthenticatedError, match="inactive"):
            auth_service.authenticate_api_key(db, secret)


class TestLogin:
    def test_the_right_password_opens_a_session_whose_token_is_stored_hashed(self, db: Session) -> None:
        user = factories.user(db, password=PASSWORD)
        web_session, token = auth_service.login(db, email=user.email.upper(), password=PASSWORD, max_age_hours=12)
        assert web_session.user_id == user.id
        assert web_session.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert len(web_session.csrf_token) >= 24
        assert dt.timedelta(hours=11) < web_session.expires_at - utcnow() <= dt.timedelta(hours=12)

    @pytest.mark.parametrize("email", ["known", "unknown@example.com"])
    def test_a_wrong_password_or_an_unknown_user_get_the_same_answer(self, db: Session, email: str) -> None:
        user = factories.user(db, password=PASSWORD)
        with pytest.raises(UnauthenticatedError) as caught:
            auth_service.login(
                db, email=user.email if email == "known" else email, password="wrong pass", max_age_hours=1
            )
        assert caught.value.message == "wrong e-mail or password"

    def test_a_user_without_a_password_cannot_log_in(self, db: Session) -> None:
        user = factories.user(db, password=None)
        with pytest.raises(UnauthenticatedError):
            auth_service.login(db, email=user.email, password="", max_age_hours=1)

    def test_a_deactivated_user_cannot_log_in(self, db: Session) -> None:
        user = factories.user(db, password=PASSWORD)
        user.is_active = False
        with pytest.raises(UnauthenticatedError):
            auth_service.login(db, email=user.email, password=PASSWORD, max_age_hours=1)


class TestSessionUser:
    def test_a_live_token_finds_its_user(self, db: Session) -> None:
        user = factories.user(db, password=PASSWORD)
        _, token = auth_service.login(db, email=user.email, password=PASSWORD, max_age_hours=1)
        found = auth_service.session_user(db, token)
        assert found is not None and found[1].id == user.id

    def test_an_expired_session_finds_nobody(self, db: Session) -> None:
        user = factories.user(db, password=PASSWORD)
        web_session, token = auth_service.login(db, email=user.email, password=PASSWORD, max_age_hours=1)
        web_session.expires_at = utcnow() - dt.timedelta(seconds=1)
        assert auth_service.session_user(db, token) is None

    def test_logging_out_ends_the_session(self, db: Session) -> None:
        user = factories.user(db, password=PASSWORD)
        _, token = auth_service.login(db, email=user.email, password=PASSWORD, max_age_hours=1)
        auth_service.logout(db, token)
        db.flush()
        assert auth_service.session_user(db, token) is None
        assert db.scalars(select(WebSession).where(WebSession.user_id == user.id)).all() == []


class TestActor:
    def test_admin_on_every_brand_passes_every_role_check(self) -> None:
        Actor.system().require("legal", brand_id=7)

    def test_a_grant_on_one_brand_does_not_reach_another(self) -> None:
        actor = Actor(user_id=1, label="x", grants={"legal": frozenset({1})})
        assert actor.has_role("legal", 1) and not actor.has_role("legal", 2) and not actor.has_role("legal")
        with pytest.raises(ForbiddenError, match="requires role finance on brand 2"):
            actor.require("finance", brand_id=2)

    def test_a_brand_scope_is_the_union_of_the_staff_grants(self) -> None:
        actor = Actor(
            user_id=1, label="x", grants={"legal": frozenset({1}), "finance": frozenset({2}), "creator": frozenset({3})}
        )
        assert actor.brand_scope() == frozenset({1, 2})
        assert actor.brand_scope(["legal"]) == frozenset({1})
        assert Actor.system().brand_scope() is None

    def test_the_role_grants_table_keeps_one_row_per_role_and_brand(self, db: Session) -> None:
        brand = factories.brand(db)
        user = factories.user(db, ("legal", brand.id), ("finance", brand.id), password=None)
        rows = db.scalars(select(RoleGrant).where(RoleGrant.user_id == user.id)).all()
        assert sorted(r.role for r in rows) == ["finance", "legal"]
        assert db.get(User, user.id) is not None

"""Who is calling: an API key, or a session cookie whose state-changing requests carry the CSRF token."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from clearline.auth import service as auth_service
from clearline.auth.deps import SESSION_COOKIE
from clearline.kit.clock import utcnow
from clearline.models import User, WebSession
from tests import factories

PASSWORD = "correct horse battery"


@pytest.fixture
def logged_in(client: TestClient, db: Session) -> tuple[User, WebSession]:
    user = factories.user(db, ("marketing", None), password=PASSWORD)
    web_session, token = auth_service.login(db, email=user.email, password=PASSWORD, max_age_hours=1)
    client.cookies.set(SESSION_COOKIE, token)
    return user, web_session


class TestLoginPage:
    def test_a_password_login_sets_an_http_only_session_cookie_that_the_api_accepts(
        self, client: TestClient, db: Session
    ) -> None:
        user = factories.user(db, ("finance", None), password=PASSWORD)
        answer = client.post("/login", data={"email": user.email, "password": PASSWORD}, follow_redirects=False)
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
        assert client.get("/api/v1/me").json()["user_id"] == user.id

    def test_a_wrong_password_sets_no_cookie(self, client: TestClient, db: Session) -> None:
        user = factories.user(db, password=PASSWORD)
        answer = client.post("/login", data={"email": user.email, "password": "nope nope"}, follow_redirects=False)
        assert answer.status_code == 401
        assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")


class TestCookieAuthentication:
    def test_a_get_needs_only_the_cookie(self, client: TestClient, logged_in: tuple[User, WebSession]) -> None:
        user, _ = logged_in
        answer = client.get("/api/v1/me")
        assert answer.status_code == 200
        assert answer.json()["email"] == user.email

    def test_a_post_without_the_csrf_token_is_refused(
        self, client: TestClient, logged_in: tuple[User, WebSession]
    ) -> None:
        answer = client.post("/api/v1/api-keys", json={"name": "x"})
        assert answer.status_code == 401
        assert answer.json()["detail"] == "missing or wrong CSRF token"

    def test_a_post_with_a_wrong_csrf_token_is_refused(
        self, client: TestClient, logged_in: tuple[User, WebSession]
    ) -> None:
        answer = client.post("/api/v1/api-keys", json={"name": "x"}, headers={"X-CSRF-Token": "guess"})
        assert answer.status_code == 401

    def test_a_post_with_the_sessions_csrf_token_goes_through(
        self, client: TestClient, logged_in: tuple[User, WebSession]
    ) -> None:
        _, web_session = logged_in
        answer = client.post("/api/v1/api-keys", json={"name": "x"}, headers={"X-CSRF-Token": web_session.csrf_token})
        assert answer.status_code == 201

    @pytest.mark.parametrize(("method", "path"), [("PATCH", "/api/v1/brands/1"), ("DELETE", "/api/v1/api-keys/1")])
    def test_every_state_changing_method_needs_the_token(
        self, client: TestClient, logged_in: tuple[User, WebSession], method: str, path: str
    ) -> None:
        assert client.request(method, path, json={}).status_code == 401

    def test_another_sessions_csrf_token_does_not_do(
        self, client: TestClient, db: Session, logged_in: tuple[User, WebSession]
    ) -> None:
        other = factories.user(db, password=PASSWORD)
        other_session, _ = auth_service.login(db, email=other.email, password=PASSWORD, max_age_hours=1)
        answer = client.post("/api/v1/api-keys", json={"name": "x"}, headers={"X-CSRF-Token": other_session.csrf_token})
        assert answer.status_code == 401

    def test_an_expired_session_is_refused(
        self, client: TestClient, db: Session, logged_in: tuple[User, WebSession]
    ) -> None:
        _, web_session = logged_in
        web_session.expires_at = utcnow() - dt.timedelta(minutes=1)
        db.flush()
        assert client.get("/api/v1/me").status_code == 401

    def test_a_made_up_cookie_is_refused(self, client: TestClient) -> None:
        client.cookies.set(SESSION_COOKIE, "forged")
        assert client.get("/api/v1/me").status_code == 401

    def test_an_api_key_needs_no_csrf_token_even_beside_a_cookie(
        self, client: TestClient, db: Session, logged_in: tuple[User, WebSession]
    ) -> None:
        other = factories.user(db, ("finance", None), password=None)
        answer = client.post(
            "/api/v1/api-keys", json={"name": "x"}, headers={"Authorization": f"Bearer {factories.api_key(db, other)}"}
        )
        assert answer.status_code == 201
        assert answer.json()["user_id"] == other.id

"""FastAPI dependencies: the request's unit of work and the acting user (API key or web session)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from clearline.auth import service
from clearline.auth.actor import Actor
from clearline.kit.db import new_session
from clearline.kit.errors import UnauthenticatedError

SESSION_COOKIE = "clearline_session"


def get_session() -> Iterator[Session]:
    """The request is the unit of work: one commit at the end, or a rollback on any error."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# Scope "function": the commit runs before the response is sent. By default FastAPI ends a yield
# dependency after sending, so a browser following a POST's 303 could read before the commit landed
# (a fresh login bounced back to the login page, a signed-off link still shown pending).
DbSession = Annotated[Session, Depends(get_session, scope="function")]


def get_actor(request: Request, session: DbSession) -> Actor:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return service.authenticate_api_key(session, header[7:].strip())
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        found = service.session_user(session, token)
        if found is not None:
            web_session, user = found
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                from clearline.kit.security import constant_time_equal

                sent = request.headers.get("x-csrf-token", "")
                if not constant_time_equal(sent, web_session.csrf_token):
                    raise UnauthenticatedError("missing or wrong CSRF token")
            return service.actor_for(session, user)
    raise UnauthenticatedError("send 'Authorization: Bearer <api key>'")


CurrentActor = Annotated[Actor, Depends(get_actor)]

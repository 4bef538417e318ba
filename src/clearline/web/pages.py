"""Server-rendered pages (Jinja2 + htmx): login, logout and the landing redirect.

Each domain keeps its own pages in ``clearline.<domain>.pages``; they are included here, so the app
mounts one router. Pages parse input, resolve the actor and call one service or repository function.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from clearline.auth import service as auth_service
from clearline.auth.deps import SESSION_COOKIE, DbSession
from clearline.brand.pages import router as brand_pages
from clearline.brief.pages import router as brief_pages
from clearline.catalog.pages import router as catalog_pages
from clearline.commission.pages import router as commission_pages
from clearline.config import get_settings
from clearline.contract.pages import router as contract_pages
from clearline.creator.pages import router as creator_pages
from clearline.kit.errors import UnauthenticatedError
from clearline.link.pages import router as link_pages
from clearline.payout.pages import router as payout_pages
from clearline.web.render import (
    NAV,
    PageActor,
    PageUser,
    check_csrf,
    current_page_user,
    error_page,
    render,
    safe_next,
    see_other,
    templates,
)

__all__ = [
    "NAV",
    "PageActor",
    "PageUser",
    "check_csrf",
    "current_page_user",
    "error_page",
    "render",
    "router",
    "templates",
]

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", None, next=safe_next(next))


@router.post("/login")
def login(
    request: Request,
    session: DbSession,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    try:
        _, token = auth_service.login(
            session, email=email, password=password, max_age_hours=get_settings().session_max_age_hours
        )
    except UnauthenticatedError as exc:
        return render(
            request, "login.html", None, status_code=401, error=exc.message, email=email, next=safe_next(next)
        )
    response = see_other(safe_next(next))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        max_age=get_settings().session_max_age_hours * 3600,
    )
    return response


@router.post("/logout")
def logout(
    request: Request, session: DbSession, page_user: PageActor, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(page_user, csrf_token)
    auth_service.logout(session, request.cookies.get(SESSION_COOKIE, ""))
    response = see_other("/login")
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, page_user: PageActor) -> Response:
    nav = page_user.nav
    if nav:
        return see_other(nav[0][1])
    return render(request, "home.html", page_user)


for _domain_pages in (
    brand_pages,
    catalog_pages,
    creator_pages,
    contract_pages,
    link_pages,
    commission_pages,
    brief_pages,
    payout_pages,
):
    router.include_router(_domain_pages)

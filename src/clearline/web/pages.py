"""Server-rendered pages (Jinja2 + htmx). Pages parse input, resolve the actor and call services."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from clearline.auth import service as auth_service
from clearline.auth.actor import Actor
from clearline.auth.deps import SESSION_COOKIE, DbSession
from clearline.config import get_settings
from clearline.kit.errors import ClearlineError, UnauthenticatedError
from clearline.kit.money import format_minor
from clearline.models import User, WebSession

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters["money"] = lambda minor, currency: format_minor(minor, currency)

router = APIRouter(include_in_schema=False)

# Navigation entries and the roles that see them (admin sees everything).
NAV: list[tuple[str, str, tuple[str, ...]]] = [
    ("Brands", "/brands", ("marketing", "legal", "social_ops", "finance", "brand_ops", "brand_steward")),
    ("Catalog", "/catalog", ("brand_ops", "brand_steward", "marketing", "legal", "finance", "social_ops")),
    ("Creators & agencies", "/creators", ("marketing", "social_ops", "legal", "finance", "brand_steward")),
    ("Contracts", "/contracts", ("legal", "finance", "social_ops", "marketing", "brand_steward")),
    ("My portal", "/portal", ("creator", "agency")),
]


class PageUser:
    def __init__(self, user: User, actor: Actor, web_session: WebSession) -> None:
        self.user = user
        self.actor = actor
        self.csrf_token = web_session.csrf_token

    @property
    def nav(self) -> list[tuple[str, str]]:
        return [
            (label, href)
            for label, href, roles in NAV
            if self.actor.has_any((*roles, "admin")) or any(r in self.actor.grants for r in roles)
        ]


def current_page_user(request: Request, session: DbSession) -> PageUser:
    token = request.cookies.get(SESSION_COOKIE)
    found = auth_service.session_user(session, token) if token else None
    if found is None:
        raise UnauthenticatedError("please log in")
    web_session, user = found
    return PageUser(user, auth_service.actor_for(session, user), web_session)


PageActor = Annotated[PageUser, Depends(current_page_user)]


def check_csrf(page_user: PageUser, token: str) -> None:
    from clearline.kit.security import constant_time_equal

    if not constant_time_equal(token or "", page_user.csrf_token):
        raise UnauthenticatedError("the form expired; reload the page")


def render(
    request: Request, name: str, page_user: PageUser | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"me": page_user, **context}, status_code=status_code)


def error_page(request: Request, exc: ClearlineError) -> Response:
    if isinstance(exc, UnauthenticatedError) and request.method == "GET":
        return RedirectResponse("/login", status_code=303)
    return render(request, "error.html", None, status_code=exc.status_code, error=exc)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return render(request, "login.html", None)


@router.post("/login")
def login(
    request: Request, session: DbSession, email: Annotated[str, Form()], password: Annotated[str, Form()]
) -> Response:
    try:
        _, token = auth_service.login(
            session, email=email, password=password, max_age_hours=get_settings().session_max_age_hours
        )
    except UnauthenticatedError as exc:
        return render(request, "login.html", None, status_code=401, error=exc.message, email=email)
    response = RedirectResponse("/", status_code=303)
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
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, page_user: PageActor) -> Response:
    nav = page_user.nav
    if nav:
        return RedirectResponse(nav[0][1], status_code=303)
    return render(request, "home.html", page_user)

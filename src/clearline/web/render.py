"""What every HTML page shares: templates and filters, the logged-in page user, CSRF, rendering.

Domain page modules (``clearline.<domain>.pages``) import from here; ``clearline.web.pages`` re-exports
these names and includes the domain routers, so nothing here imports a domain.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from clearline.auth import service as auth_service
from clearline.auth.actor import Actor
from clearline.auth.deps import SESSION_COOKIE, DbSession
from clearline.kit.clock import ensure_utc
from clearline.kit.errors import ClearlineError, ForbiddenError, UnauthenticatedError
from clearline.kit.money import format_minor
from clearline.kit.security import constant_time_equal
from clearline.models import User, WebSession

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def money(minor: int | None, currency: str) -> str:
    """Minor units as a decimal string with the currency's digits, e.g. 4999 USD -> '49.99'."""
    return "" if minor is None else format_minor(minor, currency)


def utc(value: dt.datetime | None) -> str:
    """An instant as ISO date and time in UTC, to the minute: '2026-10-01 14:05 UTC'."""
    return "" if value is None else ensure_utc(value).strftime("%Y-%m-%d %H:%M UTC")


def utc_date(value: dt.datetime | None) -> str:
    return "" if value is None else ensure_utc(value).strftime("%Y-%m-%d")


def iso(value: dt.datetime | None) -> str:
    """Machine-readable form for ``<time datetime=...>``."""
    return "" if value is None else ensure_utc(value).isoformat().replace("+00:00", "Z")


def bp_pct(value: int | None) -> str:
    """Basis points as a percentage without trailing zeros: 725 -> '7.25 %', 7000 -> '70 %'."""
    if value is None:
        return ""
    whole, rest = divmod(value, 100)
    text = f"{whole}.{rest:02d}".rstrip("0").rstrip(".") if rest else str(whole)
    return f"{text} %"


templates.env.filters["money"] = money
templates.env.filters["utc"] = utc
templates.env.filters["utc_date"] = utc_date
templates.env.filters["iso"] = iso
templates.env.filters["bp_pct"] = bp_pct

# Navigation entries and the roles that may open them (admin opens everything). A page checks the
# same list, so the menu never offers a page that answers 403.
NAV: list[tuple[str, str, tuple[str, ...]]] = [
    ("Brands", "/brands", ("marketing", "legal", "social_ops", "finance", "brand_ops", "brand_steward")),
    ("Catalog", "/catalog", ("brand_ops", "brand_steward", "marketing", "legal", "finance", "social_ops")),
    ("Creators & agencies", "/creators", ("marketing", "social_ops", "legal", "finance", "brand_steward")),
    ("Contracts", "/contracts", ("legal", "finance", "social_ops", "marketing", "brand_steward")),
    ("Links", "/links", ("social_ops",)),
    ("Orders", "/orders", ("finance", "legal", "marketing", "social_ops", "brand_steward")),
    ("Briefs", "/briefs", ("marketing", "legal", "social_ops", "brand_steward")),
    ("Approvals", "/approvals", ("legal", "marketing", "social_ops")),
    ("Payouts", "/payouts", ("finance",)),
    ("My portal", "/portal", ("creator", "agency")),
]


class PageUser:
    """The logged-in user as pages see it; plain values are copied so an error page can still show them
    after the request's session was rolled back."""

    def __init__(self, user: User, actor: Actor, web_session: WebSession) -> None:
        self.user_id = user.id
        self.name = user.name
        self.email = user.email
        self.actor = actor
        self.csrf_token = web_session.csrf_token

    def holds(self, roles: tuple[str, ...]) -> bool:
        """Has any of ``roles`` on at least one brand (admin holds every role)."""
        return self.actor.is_admin or any(self.actor.grants.get(role) for role in roles)

    @property
    def nav(self) -> list[tuple[str, str]]:
        return [(label, href) for label, href, roles in NAV if self.holds(roles)]

    def can_open(self, href: str) -> bool:
        return any(nav_href == href for _, nav_href in self.nav)

    @property
    def roles(self) -> list[str]:
        return sorted(role for role, brands in self.actor.grants.items() if brands)

    def require_page(self, href: str) -> None:
        """403 unless the user holds one of the roles the navigation lists for ``href``."""
        for label, nav_href, roles in NAV:
            if nav_href == href:
                if not self.holds(roles):
                    raise ForbiddenError(f"the {label} page is for: {', '.join(roles)}")
                return
        raise KeyError(href)


def current_page_user(request: Request, session: DbSession) -> PageUser:
    token = request.cookies.get(SESSION_COOKIE)
    found = auth_service.session_user(session, token) if token else None
    if found is None:
        raise UnauthenticatedError("please log in")
    web_session, user = found
    page_user = PageUser(user, auth_service.actor_for(session, user), web_session)
    request.state.page_user = page_user
    return page_user


PageActor = Annotated[PageUser, Depends(current_page_user)]


def check_csrf(page_user: PageUser, token: str) -> None:
    if not constant_time_equal(token or "", page_user.csrf_token):
        raise UnauthenticatedError("the form expired; reload the page")


def render(
    request: Request, name: str, page_user: PageUser | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"me": page_user, **context}, status_code=status_code)


def error_page(request: Request, exc: ClearlineError) -> Response:
    if isinstance(exc, UnauthenticatedError) and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    page_user = getattr(request.state, "page_user", None)
    return render(request, "error.html", page_user, status_code=exc.status_code, error=exc)


def safe_next(target: str | None) -> str:
    """Only a path on this site is a valid place to return to after login (never an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@contextmanager
def savepoint(session: Session, *, keep: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Run one service call so that a domain error leaves nothing half-written, even though the page
    then answers normally (re-rendering the form with its errors) and the request commits.

    ``keep``: refusals that are facts in their own right (a refused schedule and its audit event); what
    the call wrote before raising one of them stands."""
    nested = session.begin_nested()
    try:
        yield
    except keep:
        nested.commit()
        raise
    except BaseException:
        nested.rollback()
        raise
    nested.commit()


def error_lines(exc: ClearlineError) -> list[str]:
    """A domain error's details as lines a person reads: 'line 3 · price: ... is not a decimal number'."""
    details = exc.details if isinstance(exc.details, list) else []
    lines = []
    for detail in details:
        if isinstance(detail, dict):
            where = " · ".join(str(part) for part in detail.get("loc", []))
            lines.append(f"{where}: {detail.get('msg', '')}" if where else str(detail.get("msg", "")))
        else:
            lines.append(str(detail))
    return lines

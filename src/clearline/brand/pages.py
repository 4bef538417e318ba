"""Brand pages: the brands a user can see, with their landing-domain allow-list and GL coding."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from clearline.auth.deps import DbSession
from clearline.brand import repository
from clearline.web.render import PageActor, render

router = APIRouter(include_in_schema=False)


@router.get("/brands", response_class=HTMLResponse)
def brands(request: Request, session: DbSession, page_user: PageActor) -> HTMLResponse:
    page_user.require_page("/brands")
    return render(request, "brand/list.html", page_user, brands=repository.list_brands(session, page_user.actor))

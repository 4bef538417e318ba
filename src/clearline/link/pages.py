"""Link pages: social ops' links with readiness and clicks, the sign-off queue, and recent alerts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from clearline.auth.deps import DbSession
from clearline.brief import views as brief_views
from clearline.kit.errors import ConflictError
from clearline.link import service, views
from clearline.web.render import PageActor, check_csrf, error_lines, render, savepoint, see_other

router = APIRouter(include_in_schema=False)


@router.get("/links", response_class=HTMLResponse)
def links(
    request: Request,
    session: DbSession,
    page_user: PageActor,
    brand_id: int | None = None,
    signed: int | None = None,
) -> HTMLResponse:
    page_user.require_page("/links")
    view = views.links_overview(session, page_user.actor, brand_id=brand_id)
    return render(request, "link/index.html", page_user, view=view, signed=signed)


@router.post("/links/{link_id}/signoff", response_class=HTMLResponse)
def sign_off(
    request: Request,
    session: DbSession,
    page_user: PageActor,
    link_id: int,
    brand_id: Annotated[int, Form()],
    comment: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Sign a link off; ``back=approvals`` when the form is ops' queue on the approvals page, which then shows
    the outcome (a refusal on the link's own row there)."""
    check_csrf(page_user, csrf_token)
    try:
        with savepoint(session):
            link = service.sign_off(session, page_user.actor, link_id=link_id, comment=comment.strip())
    except ConflictError as exc:
        if back == "approvals":
            return render(
                request,
                "brief/approvals.html",
                page_user,
                status_code=exc.status_code,
                items=brief_views.approvals(session, page_user.actor),
                ops=brief_views.ops_queues(session, page_user.actor),
                signoff_error={"link_id": link_id, "message": exc.message, "lines": error_lines(exc)},
            )
        # The refusal (no accepted contract, expired, no longer pending) is shown on the link's own row.
        return render(
            request,
            "link/index.html",
            page_user,
            status_code=exc.status_code,
            view=views.links_overview(session, page_user.actor, brand_id=brand_id),
            signoff_error={"link_id": link_id, "message": exc.message, "lines": error_lines(exc)},
        )
    if back == "approvals":
        return see_other(f"/approvals?signed={link.id}")
    return see_other(f"/links?brand_id={link.brand_id}&signed={link.id}")

"""Creator pages: creators and agencies with their rosters, the creator CSV import, and the creator /
agency portal with its disputes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from clearline.auth.deps import DbSession
from clearline.creator import service, views
from clearline.kit.errors import ConflictError, ValidationFailedError
from clearline.payout import dispute as dispute_service
from clearline.web.render import PageActor, check_csrf, error_lines, render, savepoint, see_other

router = APIRouter(include_in_schema=False)


@router.get("/creators", response_class=HTMLResponse)
def creators(request: Request, session: DbSession, page_user: PageActor, created: int | None = None) -> HTMLResponse:
    page_user.require_page("/creators")
    view = views.creators(session, page_user.actor)
    return render(request, "creator/index.html", page_user, view=view, created=created)


@router.post("/creators/import", response_class=HTMLResponse)
def import_creators(
    request: Request,
    session: DbSession,
    page_user: PageActor,
    brand_id: Annotated[int, Form()],
    file: Annotated[UploadFile, File()],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(page_user, csrf_token)
    data = file.file.read()
    try:
        with savepoint(session):
            report = service.import_creators(session, page_user.actor, brand_id=brand_id, data=data)
    except ValidationFailedError as exc:
        return render(
            request,
            "creator/index.html",
            page_user,
            status_code=exc.status_code,
            view=views.creators(session, page_user.actor),
            import_error=exc.message,
            import_errors=error_lines(exc),
            filename=file.filename,
            import_brand_id=brand_id,
        )
    return see_other(f"/creators?created={report.created}")


@router.get("/portal", response_class=HTMLResponse)
def portal(request: Request, session: DbSession, page_user: PageActor, disputed: int | None = None) -> HTMLResponse:
    page_user.require_page("/portal")
    view = views.portal(session, page_user.actor)
    return render(request, "creator/portal.html", page_user, view=view, disputed=disputed)


@router.post("/portal/disputes", response_class=HTMLResponse)
def open_dispute(
    request: Request,
    session: DbSession,
    page_user: PageActor,
    commission_line_id: Annotated[int, Form()],
    reason: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(page_user, csrf_token)
    try:
        with savepoint(session):
            dispute = dispute_service.open_dispute(
                session, page_user.actor, commission_line_id=commission_line_id, reason=reason.strip()
            )
    except (ValidationFailedError, ConflictError) as exc:
        # A missing reason (422) or a line already under dispute (409) is shown on the line's own row.
        return render(
            request,
            "creator/portal.html",
            page_user,
            status_code=exc.status_code,
            view=views.portal(session, page_user.actor),
            dispute_error={"line_id": commission_line_id, "message": exc.message, "reason": reason},
        )
    return see_other(f"/portal?disputed={dispute.id}#disputes")

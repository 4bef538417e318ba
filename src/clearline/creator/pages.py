"""Creator pages: creators and agencies with their rosters, and the creator CSV import."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from clearline.auth.deps import DbSession
from clearline.creator import service, views
from clearline.kit.errors import ValidationFailedError
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

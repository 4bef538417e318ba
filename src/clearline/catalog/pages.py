"""Catalog pages: a brand's SKUs and offers, and the SKU CSV upload for brand ops."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from clearline.auth.deps import DbSession
from clearline.catalog import service, views
from clearline.kit.errors import ValidationFailedError
from clearline.web.render import PageActor, check_csrf, error_lines, render, savepoint, see_other

router = APIRouter(include_in_schema=False)


@router.get("/catalog", response_class=HTMLResponse)
def catalog(
    request: Request,
    session: DbSession,
    page_user: PageActor,
    brand_id: int | None = None,
    created: int | None = None,
    updated: int | None = None,
) -> HTMLResponse:
    page_user.require_page("/catalog")
    view = views.catalog(session, page_user.actor, brand_id=brand_id)
    imported = None if created is None else {"created": created, "updated": updated or 0}
    return render(request, "catalog/index.html", page_user, view=view, imported=imported)


@router.post("/catalog/skus", response_class=HTMLResponse)
def import_skus(
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
            report = service.import_skus(session, page_user.actor, brand_id=brand_id, data=data)
    except ValidationFailedError as exc:
        view = views.catalog(session, page_user.actor, brand_id=brand_id)
        return render(
            request,
            "catalog/index.html",
            page_user,
            status_code=exc.status_code,
            view=view,
            import_error=exc.message,
            import_errors=error_lines(exc),
            filename=file.filename,
        )
    return see_other(f"/catalog?brand_id={brand_id}&created={report.created}&updated={report.updated}")

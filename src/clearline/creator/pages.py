"""Creator pages: creators and agencies with their rosters, the creator CSV import, and the creator /
agency portal with its disputes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from clearline.auth.deps import DbSession
from clearline.brief import creative as creative_service
from clearline.creator import service, views
from clearline.kit.clock import parse_datetime
from clearline.kit.errors import ClearlineError, ConflictError, ValidationFailedError
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
def portal(
    request: Request, session: DbSession, page_user: PageActor, disputed: int | None = None, done: str = ""
) -> HTMLResponse:
    page_user.require_page("/portal")
    view = views.portal(session, page_user.actor)
    return render(request, "creator/portal.html", page_user, view=view, disputed=disputed, done=done)


def _content_error(
    request: Request, session: DbSession, page_user: PageActor, exc: ClearlineError, where: str
) -> HTMLResponse:
    """The portal again, the error shown at the form it came from (``where``: brief-N or creative-N)."""
    return render(
        request,
        "creator/portal.html",
        page_user,
        status_code=exc.status_code,
        view=views.portal(session, page_user.actor),
        content_error={"where": where, "message": exc.message, "lines": error_lines(exc)},
    )


def _file(upload: UploadFile | None) -> tuple[bytes | None, str, str]:
    if upload is None or not upload.filename:
        return None, "", ""
    return upload.file.read(), upload.filename, upload.content_type or ""


@router.post("/portal/briefs/{brief_id}/creatives", response_class=HTMLResponse)
def create_creative(
    request: Request,
    session: DbSession,
    page_user: PageActor,
    brief_id: int,
    channel: Annotated[str, Form()] = "",
    creator_id: Annotated[int | None, Form()] = None,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """A creator (or its agency, for a roster creator) answers an approved brief with a creative for a channel."""
    check_csrf(page_user, csrf_token)
    page_user.require_page("/portal")
    actor = page_user.actor
    try:
        with savepoint(session):
            made = creative_service.create_creative(
                session, actor, brief_id=brief_id, creator_id=creator_id or actor.creator_id or 0, channel=channel
            )
    except ClearlineError as exc:
        return _content_error(request, session, page_user, exc, f"brief-{brief_id}")
    return see_other(f"/portal?done=created#creative-{made.id}")


@router.post("/portal/creatives/{creative_id}/versions", response_class=HTMLResponse)
def add_version(
    request: Request,
    session: DbSession,
    page_user: PageActor,
    creative_id: int,
    caption: Annotated[str, Form()] = "",
    file: Annotated[UploadFile | None, File()] = None,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Upload a new version (caption and file, within the size and type limits): it goes to review."""
    check_csrf(page_user, csrf_token)
    page_user.require_page("/portal")
    data, name, content_type = _file(file)
    try:
        with savepoint(session):
            creative_service.add_version(
                session,
                page_user.actor,
                creative_id=creative_id,
                caption=caption.strip(),
                data=data,
                file_name=name,
                content_type=content_type,
            )
    except ClearlineError as exc:
        return _content_error(request, session, page_user, exc, f"creative-{creative_id}")
    return see_other(f"/portal?done=submitted#creative-{creative_id}")


@router.post("/portal/creatives/{creative_id}/proofs", response_class=HTMLResponse)
def add_proof(
    request: Request,
    session: DbSession,
    page_user: PageActor,
    creative_id: int,
    url: Annotated[str, Form()] = "",
    posted_at: Annotated[str, Form()] = "",
    file: Annotated[UploadFile | None, File()] = None,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Record proof of posting: the post's URL, when it went out (UTC) and optionally a screenshot."""
    check_csrf(page_user, csrf_token)
    page_user.require_page("/portal")
    data, name, content_type = _file(file)
    try:
        errors = []
        if not creative_service.is_post_url(url):
            errors.append({"loc": ["url"], "msg": creative_service.POST_URL_RULE})
        try:
            when = parse_datetime(posted_at) if posted_at.strip() else None
        except ValueError:
            when = None
        if when is None:
            errors.append({"loc": ["posted_at"], "msg": "when the post went out (UTC)"})
        if errors or when is None:
            raise ValidationFailedError("the proof needs the post's URL and time", details=errors)
        with savepoint(session):
            creative_service.add_proof(
                session,
                page_user.actor,
                creative_id=creative_id,
                url=url.strip(),
                posted_at=when,
                data=data,
                file_name=name,
                content_type=content_type,
            )
    except ClearlineError as exc:
        return _content_error(request, session, page_user, exc, f"creative-{creative_id}")
    return see_other(f"/portal?done=posted#creative-{creative_id}")


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

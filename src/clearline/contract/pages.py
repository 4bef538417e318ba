"""Contract pages: legal's contracts and templates, and one contract's detail (the creator / agency portal
that lists a payee's own contracts lives with the creator pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from clearline.auth.deps import DbSession
from clearline.contract import service, views
from clearline.contract.schemas import TemplateVersionCreate
from clearline.kit.errors import ValidationFailedError
from clearline.web.render import PageActor, PageUser, check_csrf, error_lines, render, savepoint, see_other

router = APIRouter(include_in_schema=False)


@router.get("/contracts", response_class=HTMLResponse)
def contracts(
    request: Request,
    session: DbSession,
    page_user: PageActor,
    brand_id: int | None = None,
    published: int | None = None,
) -> HTMLResponse:
    page_user.require_page("/contracts")
    view = views.contracts_overview(session, page_user.actor, brand_id=brand_id)
    return render(request, "contract/index.html", page_user, view=view, published=published)


@router.post("/contracts/templates/{template_id}/versions", response_class=HTMLResponse)
def publish_template_version(
    request: Request,
    session: DbSession,
    page_user: PageActor,
    template_id: int,
    body: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(page_user, csrf_token)
    try:
        data = TemplateVersionCreate(body=body.strip(), reason=reason.strip())
    except ValidationError as exc:
        errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return _publish_failed(request, session, page_user, template_id, "the new version needs a body", errors)
    try:
        with savepoint(session):
            version = service.add_template_version(
                session, page_user.actor, template_id=template_id, body=data.body, reason=data.reason
            )
    except ValidationFailedError as exc:
        return _publish_failed(request, session, page_user, template_id, exc.message, error_lines(exc))
    return see_other(f"/contracts?published={version.id}#template-{template_id}")


def _publish_failed(
    request: Request, session: Session, page_user: PageUser, template_id: int, message: str, errors: list[str]
) -> Response:
    return render(
        request,
        "contract/index.html",
        page_user,
        status_code=422,
        view=views.contracts_overview(session, page_user.actor),
        publish_template_id=template_id,
        publish_error=message,
        publish_errors=errors,
    )


@router.get("/contracts/{contract_id}", response_class=HTMLResponse)
def contract(request: Request, session: DbSession, page_user: PageActor, contract_id: int) -> HTMLResponse:
    detail = views.contract_detail(session, page_user.actor, contract_id=contract_id)
    return render(request, "contract/detail.html", page_user, detail=detail)


@router.post("/contracts/{contract_id}/accept")
def accept(
    session: DbSession, page_user: PageActor, contract_id: int, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(page_user, csrf_token)
    service.accept_contract(session, page_user.actor, contract_id=contract_id)
    return see_other(f"/contracts/{contract_id}")

"""Finance pages: payout runs (create, approve, download both files, mark paid, reconcile) and disputes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from clearline.auth.deps import DbSession
from clearline.kit.clock import parse_datetime
from clearline.kit.errors import ClearlineError, ValidationFailedError
from clearline.payout import dispute, export, service, views
from clearline.web.render import PageActor, check_csrf, error_lines, render, savepoint, see_other

router = APIRouter(include_in_schema=False)


@router.get("/payouts", response_class=HTMLResponse)
def payouts(request: Request, session: DbSession, page_user: PageActor, brand_id: int | None = None,
            notice: str = "") -> HTMLResponse:
    page_user.require_page("/payouts")
    return render(request, "payout/index.html", page_user,
                  view=views.payouts(session, page_user.actor, brand_id=brand_id), notice=notice)


@router.post("/payouts/runs", response_class=HTMLResponse)
def create_run(request: Request, session: DbSession, page_user: PageActor, brand_id: Annotated[int, Form()],
               as_of: Annotated[str, Form()], minimum: Annotated[str, Form()] = "50.00",
               csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(page_user, csrf_token)
    try:
        with savepoint(session):
            when = parse_datetime(as_of if "T" in as_of else f"{as_of}T23:59:59Z")
            run = service.create_run(session, page_user.actor, brand_id=brand_id, as_of=min(when, _now()),
                                     minimum=Decimal(minimum or "0"))
    except (ValueError, InvalidOperation):
        return _index_error(request, session, page_user, brand_id,
                            ValidationFailedError("as_of must be a date and minimum a decimal amount"))
    except ClearlineError as exc:
        return _index_error(request, session, page_user, brand_id, exc)
    return see_other(f"/payouts/runs/{run.id}")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _index_error(request: Request, session: DbSession, page_user: PageActor, brand_id: int,
                 exc: ClearlineError) -> HTMLResponse:
    return render(request, "payout/index.html", page_user, status_code=exc.status_code,
                  view=views.payouts(session, page_user.actor, brand_id=brand_id), run_error=exc.message,
                  run_errors=error_lines(exc))


@router.get("/payouts/runs/{run_id}", response_class=HTMLResponse)
def run(request: Request, session: DbSession, page_user: PageActor, run_id: int, notice: str = "") -> HTMLResponse:
    page_user.require_page("/payouts")
    return render(request, "payout/run.html", page_user,
                  view=views.run_detail(session, page_user.actor, run_id=run_id), notice=notice)


def _run_action(request: Request, session: DbSession, page_user: PageActor, run_id: int, action, notice: str  # type: ignore[no-untyped-def]
                ) -> Response:
    try:
        with savepoint(session):
            action()
    except ClearlineError as exc:
        return render(request, "payout/run.html", page_user, status_code=exc.status_code,
                      view=views.run_detail(session, page_user.actor, run_id=run_id), action_error=exc.message)
    return see_other(f"/payouts/runs/{run_id}?notice={notice}")


@router.post("/payouts/runs/{run_id}/approve", response_class=HTMLResponse)
def approve(request: Request, session: DbSession, page_user: PageActor, run_id: int,
            csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(page_user, csrf_token)
    return _run_action(request, session, page_user, run_id,
                       lambda: service.approve_run(session, page_user.actor, run_id=run_id), "approved")


@router.post("/payouts/runs/{run_id}/paid", response_class=HTMLResponse)
def paid(request: Request, session: DbSession, page_user: PageActor, run_id: int,
         reference: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(page_user, csrf_token)
    return _run_action(request, session, page_user, run_id,
                       lambda: service.mark_paid(session, page_user.actor, run_id=run_id, reference=reference), "paid")


@router.post("/payouts/runs/{run_id}/reconcile", response_class=HTMLResponse)
async def reconcile(request: Request, session: DbSession, page_user: PageActor, run_id: int, file: UploadFile,
                    csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(page_user, csrf_token)
    data = await file.read()
    try:
        with savepoint(session):
            export.reconcile(session, page_user.actor, run_id=run_id, data=data)
    except ClearlineError as exc:
        return render(request, "payout/run.html", page_user, status_code=exc.status_code,
                      view=views.run_detail(session, page_user.actor, run_id=run_id),
                      reconcile_error=exc.message, reconcile_errors=error_lines(exc))
    return see_other(f"/payouts/runs/{run_id}?notice=reconciled#reconciliation")


@router.post("/payouts/disputes/{dispute_id}", response_class=HTMLResponse)
def resolve_dispute(request: Request, session: DbSession, page_user: PageActor, dispute_id: int,
                    brand_id: Annotated[int, Form()], decision: Annotated[str, Form()],
                    reason: Annotated[str, Form()] = "", adjustment: Annotated[str, Form()] = "0",
                    csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(page_user, csrf_token)
    try:
        with savepoint(session):
            dispute.resolve(session, page_user.actor, dispute_id=dispute_id, decision=decision, reason=reason,
                            adjustment=Decimal(adjustment or "0"))
    except InvalidOperation:
        return _index_error(request, session, page_user, brand_id,
                            ValidationFailedError("adjustment must be a decimal amount"))
    except ClearlineError as exc:
        return _index_error(request, session, page_user, brand_id, exc)
    return see_other(f"/payouts?brand_id={brand_id}&notice=dispute+{decision}#disputes")

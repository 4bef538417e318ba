"""Marketing's brief editor, the approval queues (legal, marketing, social ops), and scheduling."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from clearline.auth.deps import DbSession
from clearline.brief import approval, creative, service, views
from clearline.brief.schemas import BriefIn
from clearline.kit.clock import parse_datetime
from clearline.kit.errors import ClearlineError, ValidationFailedError
from clearline.web.render import PageActor, check_csrf, error_lines, render, savepoint, see_other

router = APIRouter(include_in_schema=False)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@router.get("/briefs", response_class=HTMLResponse)
def briefs(request: Request, session: DbSession, page_user: PageActor, brand_id: int | None = None) -> HTMLResponse:
    page_user.require_page("/briefs")
    return render(request, "brief/index.html", page_user, view=views.briefs(session, page_user.actor,
                                                                             brand_id=brand_id), form={})


@router.post("/briefs", response_class=HTMLResponse)
def create_brief(request: Request, session: DbSession, page_user: PageActor, brand_id: Annotated[int, Form()],
                 campaign_id: Annotated[int, Form()], title: Annotated[str, Form()] = "",
                 team: Annotated[str, Form()] = "", skus: Annotated[str, Form()] = "",
                 offer_code: Annotated[str, Form()] = "", landing_url: Annotated[str, Form()] = "",
                 call_to_action: Annotated[str, Form()] = "", key_messages: Annotated[str, Form()] = "",
                 disclaimers: Annotated[str, Form()] = "", measurement_note: Annotated[str, Form()] = "",
                 csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(page_user, csrf_token)
    form = {"campaign_id": campaign_id, "title": title, "team": team, "skus": skus, "offer_code": offer_code,
            "landing_url": landing_url, "call_to_action": call_to_action, "key_messages": key_messages,
            "disclaimers": disclaimers, "measurement_note": measurement_note}
    try:
        data = BriefIn(campaign_id=campaign_id, title=title.strip() or "untitled", team=team.strip(),
                       skus=[s.strip() for s in skus.replace(",", "\n").splitlines() if s.strip()],
                       offer_code=offer_code.strip() or None, landing_url=landing_url.strip() or None,
                       call_to_action=call_to_action.strip() or None, key_messages=_lines(key_messages),
                       disclaimers=_lines(disclaimers), measurement_note=measurement_note.strip() or None)
        with savepoint(session):
            brief = service.create_brief(session, page_user.actor, brand_id=brand_id, data=data)
    except ValidationError as exc:
        error = ValidationFailedError("invalid brief", details=[{"loc": list(map(str, e["loc"])), "msg": e["msg"]}
                                                                for e in exc.errors()])
        return _index_error(request, session, page_user, brand_id, error, form)
    except ClearlineError as exc:
        return _index_error(request, session, page_user, brand_id, exc, form)
    return see_other(f"/briefs/{brief.id}")


def _index_error(request: Request, session: DbSession, page_user: PageActor, brand_id: int,
                 exc: ClearlineError, form: dict[str, object]) -> HTMLResponse:
    return render(request, "brief/index.html", page_user, status_code=exc.status_code,
                  view=views.briefs(session, page_user.actor, brand_id=brand_id), form=form,
                  brief_error=exc.message, brief_errors=error_lines(exc))


@router.get("/briefs/{brief_id}", response_class=HTMLResponse)
def brief(request: Request, session: DbSession, page_user: PageActor, brief_id: int) -> HTMLResponse:
    return render(request, "brief/detail.html", page_user,
                  view=views.brief_detail(session, page_user.actor, brief_id=brief_id))


def _brief_action(request: Request, session: DbSession, page_user: PageActor, brief_id: int, action  # type: ignore[no-untyped-def]
                  ) -> Response:
    try:
        # A refused schedule is shown like any error, but its audit event stays.
        with savepoint(session, keep=(creative.ScheduleRefusedError,)):
            action()
    except ClearlineError as exc:
        return render(request, "brief/detail.html", page_user, status_code=exc.status_code,
                      view=views.brief_detail(session, page_user.actor, brief_id=brief_id),
                      action_error=exc.message, action_errors=error_lines(exc))
    return see_other(f"/briefs/{brief_id}")


@router.post("/briefs/{brief_id}/submit", response_class=HTMLResponse)
def submit(request: Request, session: DbSession, page_user: PageActor, brief_id: int,
           csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(page_user, csrf_token)
    return _brief_action(request, session, page_user, brief_id,
                         lambda: service.submit_brief(session, page_user.actor, brief_id=brief_id))


@router.post("/briefs/{brief_id}/creatives/{creative_id}/schedule", response_class=HTMLResponse)
def schedule(request: Request, session: DbSession, page_user: PageActor, brief_id: int, creative_id: int,
             scheduled_for: Annotated[str, Form()] = "", back: Annotated[str, Form()] = "",
             csrf_token: Annotated[str, Form()] = "") -> Response:
    """Schedule a creative; ``back=approvals`` when the form is ops' queue on the approvals page, which then
    shows the outcome (a refusal on the creative's own row)."""
    check_csrf(page_user, csrf_token)

    def act() -> None:
        try:
            when = parse_datetime(scheduled_for) if scheduled_for else dt.datetime.now(dt.UTC)
        except ValueError:
            raise ValidationFailedError("scheduled_for is not a date and time",
                                        details=[{"loc": ["scheduled_for"], "msg": scheduled_for}]) from None
        creative.schedule(session, page_user.actor, creative_id=creative_id, scheduled_for=when)

    if back != "approvals":
        return _brief_action(request, session, page_user, brief_id, act)
    try:
        with savepoint(session, keep=(creative.ScheduleRefusedError,)):
            act()
    except ClearlineError as exc:
        return approvals_page(request, session, page_user, status_code=exc.status_code,
                              schedule_error={"creative_id": creative_id, "message": exc.message,
                                              "lines": error_lines(exc)})
    return see_other(f"/approvals?scheduled={creative_id}")


def approvals_page(request: Request, session: DbSession, page_user: PageActor, *, status_code: int = 200,
                   **context: object) -> HTMLResponse:
    """The approvals page: the steps the user decides, and social ops' queue on each brand the user runs it for.
    (The links page's sign-off route renders the same template for a sign-off refused from here.)"""
    return render(request, "brief/approvals.html", page_user, status_code=status_code,
                  items=views.approvals(session, page_user.actor), ops=views.ops_queues(session, page_user.actor),
                  **context)


@router.get("/approvals", response_class=HTMLResponse)
def approvals(request: Request, session: DbSession, page_user: PageActor, notice: str = "",
              signed: int | None = None, scheduled: int | None = None) -> HTMLResponse:
    page_user.require_page("/approvals")
    return approvals_page(request, session, page_user, notice=notice, signed=signed, scheduled=scheduled)


@router.post("/approvals/{step_id}", response_class=HTMLResponse)
def decide(request: Request, session: DbSession, page_user: PageActor, step_id: int,
           decision: Annotated[str, Form()], comment: Annotated[str, Form()] = "",
           csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(page_user, csrf_token)
    if decision not in ("approved", "changes_requested"):
        decision = "changes_requested"
    try:
        with savepoint(session):
            approval.decide(session, page_user.actor, step_id=step_id, decision=decision, comment=comment)
    except ClearlineError as exc:
        return approvals_page(request, session, page_user, status_code=exc.status_code, action_error=exc.message)
    return see_other(f"/approvals?notice={decision}")

"""Order pages: finance's orders with attribution and commission totals, and one order explained."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from clearline.auth.deps import DbSession
from clearline.commission import views
from clearline.web.render import PageActor, render

router = APIRouter(include_in_schema=False)


@router.get("/orders", response_class=HTMLResponse)
def orders(
    request: Request, session: DbSession, page_user: PageActor, brand_id: int | None = None, page: int = 1
) -> HTMLResponse:
    page_user.require_page("/orders")
    view = views.orders(session, page_user.actor, brand_id=brand_id, page=page)
    return render(request, "commission/orders.html", page_user, view=view)


@router.get("/orders/{brand_id}/{order_id}", response_class=HTMLResponse)
def order(request: Request, session: DbSession, page_user: PageActor, brand_id: int, order_id: str) -> HTMLResponse:
    # Not gated by the menu: a creator or agency opens its own orders from the portal (the view scopes it).
    detail = views.order_explain(session, page_user.actor, brand_id=brand_id, order_id=order_id)
    return render(request, "commission/order.html", page_user, detail=detail)

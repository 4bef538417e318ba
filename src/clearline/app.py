"""The FastAPI application factory: JSON API under /api/v1, web pages at /, hot paths mounted ahead."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from clearline import __version__
from clearline.audit.endpoints import router as audit_router
from clearline.auth.endpoints import router as auth_router
from clearline.brand.endpoints import router as brand_router
from clearline.brief.endpoints import router as brief_router
from clearline.campaign.endpoints import router as campaign_router
from clearline.catalog.endpoints import router as catalog_router
from clearline.commission.endpoints import router as commission_router
from clearline.contract.endpoints import router as contract_router
from clearline.creator.endpoints import router as creator_router
from clearline.ingest.endpoints import router as ingest_router
from clearline.kit.errors import ClearlineError
from clearline.link.endpoints import router as link_router
from clearline.link.redirect import RedirectMiddleware
from clearline.payout.endpoints import router as payout_router

STATIC = Path(__file__).parent / "web" / "static"


def _api_router() -> APIRouter:
    api = APIRouter(prefix="/api/v1")
    for router in (
        auth_router,
        brand_router,
        catalog_router,
        creator_router,
        campaign_router,
        contract_router,
        link_router,
        ingest_router,
        commission_router,
        payout_router,
        brief_router,
        audit_router,
    ):
        api.include_router(router)
    return api


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def create_app(*, jobs: bool = False, served: bool = False) -> FastAPI:
    """The application. ``jobs`` also runs the periodic-job consumer in-process; ``served`` (``clearline serve``)
    also takes what start-up loaded out of the garbage collector's reach."""
    from clearline.config import get_settings
    from clearline.kit.db import get_engine
    from clearline.link.redirect import Redirector

    settings = get_settings()
    redirector = Redirector(
        get_engine(),
        secret_key=settings.secret_key,
        log_clicks=settings.click_logging,
        poll_interval=settings.link_poll_seconds,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redirector.start()
        consumer = None
        if jobs and settings.run_jobs:
            from clearline.kit.jobs import start_consumer

            consumer = start_consumer()
        if served:
            # Everything loaded so far (modules, the app, the link map) lives as long as the process: moved out of
            # the collector's generations, a full collection no longer walks ~180,000 objects (25-55 ms here, a
            # pause every request queued behind it waits out) but only what requests left behind.
            gc.collect()  # start-up's own garbage first: frozen, a cycle would be kept for the process's life
            gc.freeze()
        try:
            yield
        finally:
            if consumer is not None:
                consumer.stop(graceful=True)
            redirector.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="Clearline",
        version=__version__,
        description="Creator programs that pay only for sales: contracts, links, attribution, ledger, payouts.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.redirector = redirector
    from clearline.ingest.fastpath import PostbackIntake, PostbackMiddleware

    # started and stopped by its middleware with the app; it drains the inbox too unless `clearline worker` does
    app.state.postbacks = PostbackIntake(get_engine(), drain=settings.drain_in_serve)
    app.add_middleware(PostbackMiddleware, intake=app.state.postbacks)
    app.include_router(_api_router())

    from clearline.web.pages import router as pages_router

    app.include_router(pages_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(ClearlineError)
    async def _domain_error(request: Request, exc: ClearlineError) -> object:
        if _wants_html(request):
            from clearline.web.pages import error_page

            return error_page(request, exc)
        return JSONResponse(exc.to_dict(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        names = ", ".join(".".join(e["loc"][1:] or e["loc"]) for e in errors)
        return JSONResponse(
            {"error": "validation_failed", "detail": f"invalid field(s): {names}", "errors": errors},
            status_code=422,
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app


def create_served_app() -> RedirectMiddleware:
    """What `clearline serve` runs: the application plus the in-process periodic jobs, behind the redirect
    hot path as the outermost ASGI callable (a redirect meets no framework layer; lifespan reaches FastAPI)."""
    app = create_app(jobs=True, served=True)
    return RedirectMiddleware(app, app.state.redirector)

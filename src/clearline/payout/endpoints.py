from __future__ import annotations

from fastapi import APIRouter, UploadFile
from fastapi.responses import PlainTextResponse

from clearline.auth.deps import CurrentActor, DbSession
from clearline.payout import dispute, export, service
from clearline.payout.schemas import (
    DisputeCreate,
    DisputeRead,
    DisputeResolve,
    PayoutLineRead,
    ReconciliationRead,
    RunCreate,
    RunRead,
)

router = APIRouter(tags=["payouts"])


def run_read(session: DbSession, run: object) -> RunRead:
    read = RunRead.model_validate(run)
    return read.model_copy(update={
        "totals": service.totals(session, read.id),
        "lines": [PayoutLineRead.model_validate(x) for x in service.run_lines(session, read.id)]})


@router.post("/payout-runs", response_model=RunRead, status_code=201)
def create_run(body: RunCreate, session: DbSession, actor: CurrentActor) -> RunRead:
    """Create a draft run as of a date (finance): pays what has cleared and is on no hold or open dispute,
    net of clawbacks, above the minimum; 409 when nothing is left to pay (runs never pay anything twice)."""
    run = service.create_run(session, actor, brand_id=body.brand_id, as_of=body.as_of,
                             period_start=body.period_start, minimum=body.minimum)
    return run_read(session, run)


@router.get("/brands/{brand_id}/payout-runs", response_model=list[RunRead])
def list_runs(brand_id: int, session: DbSession, actor: CurrentActor) -> list[RunRead]:
    return [run_read(session, run) for run in service.list_runs(session, actor, brand_id=brand_id)]


@router.get("/payout-runs/{run_id}", response_model=RunRead)
def get_run(run_id: int, session: DbSession, actor: CurrentActor) -> RunRead:
    return run_read(session, service.get_run(session, actor, run_id))


@router.post("/payout-runs/{run_id}/approve", response_model=RunRead)
def approve(run_id: int, session: DbSession, actor: CurrentActor) -> RunRead:
    """Four eyes: a second finance user approves; whoever created the run cannot."""
    return run_read(session, service.approve_run(session, actor, run_id=run_id))


@router.post("/payout-runs/{run_id}/paid", response_model=RunRead)
def mark_paid(run_id: int, session: DbSession, actor: CurrentActor, reference: str = "") -> RunRead:
    return run_read(session, service.mark_paid(session, actor, run_id=run_id, reference=reference))


@router.get("/payout-runs/{run_id}/payout.csv", response_class=PlainTextResponse)
def payout_file(run_id: int, session: DbSession, actor: CurrentActor) -> PlainTextResponse:
    """INTERFACES §6: one row per payee, brand and currency (approved runs)."""
    payout, _ = export.export(session, actor, run_id=run_id)
    return PlainTextResponse(payout, media_type="text/csv", headers={
        "content-disposition": f'attachment; filename="payout-run-{run_id}.csv"'})


@router.get("/payout-runs/{run_id}/detail.csv", response_class=PlainTextResponse)
def detail_file(run_id: int, session: DbSession, actor: CurrentActor) -> PlainTextResponse:
    """INTERFACES §7: one row per commission line paid in the run."""
    _, detail = export.export(session, actor, run_id=run_id)
    return PlainTextResponse(detail, media_type="text/csv", headers={
        "content-disposition": f'attachment; filename="payout-run-{run_id}-detail.csv"'})


@router.post("/payout-runs/{run_id}/reconcile", response_model=ReconciliationRead)
async def reconcile(run_id: int, file: UploadFile, session: DbSession, actor: CurrentActor) -> object:
    """INTERFACES §8: finance's paid file → matched / mismatched / missing / unknown and payout accuracy."""
    return export.reconcile(session, actor, run_id=run_id, data=await file.read())


@router.post("/disputes", response_model=DisputeRead, status_code=201)
def open_dispute(body: DisputeCreate, session: DbSession, actor: CurrentActor) -> object:
    """A creator or agency disputes one of its commission lines; the line pauses."""
    return dispute.open_dispute(session, actor, commission_line_id=body.commission_line_id, reason=body.reason)


@router.get("/disputes", response_model=list[DisputeRead])
def list_disputes(session: DbSession, actor: CurrentActor, brand_id: int | None = None,
                  status: str | None = None) -> object:
    return dispute.list_disputes(session, actor, brand_id=brand_id, status=status)


@router.post("/disputes/{dispute_id}/resolve", response_model=DisputeRead)
def resolve(dispute_id: int, body: DisputeResolve, session: DbSession, actor: CurrentActor) -> object:
    """Finance upholds (with an adjustment paid in the next run) or rejects, with a reason."""
    return dispute.resolve(session, actor, dispute_id=dispute_id, decision=body.decision, reason=body.reason,
                           adjustment=body.adjustment)

"""Read models for the finance payout pages, assembled from the payout services (no queries here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.models import Brand, Dispute, PayoutLine, PayoutRun, Reconciliation
from clearline.payout import dispute, export, service


@dataclass
class RunSummary:
    run: PayoutRun
    totals: dict[str, str]
    lines: int


@dataclass
class PayoutsView:
    brands: list[Brand]
    brand: Brand | None = None
    runs: list[RunSummary] = field(default_factory=list)
    disputes: list[Dispute] = field(default_factory=list)


@dataclass
class RunView:
    run: PayoutRun
    lines: list[PayoutLine]
    totals: dict[str, str]
    reconciliation: Reconciliation | None
    can_approve: bool


def payouts(session: Session, actor: Actor, *, brand_id: int | None) -> PayoutsView:
    brands = [b for b in brand_repository.list_brands(session, actor) if actor.has_any(("finance", "admin"), b.id)]
    if brand_id is None:
        if not brands:
            return PayoutsView(brands)
        brand_id = brands[0].id
    runs = service.list_runs(session, actor, brand_id=brand_id)
    return PayoutsView(
        brands=brands, brand=brand_repository.get(session, actor, brand_id),
        runs=[RunSummary(r, service.totals(session, r.id), len(service.run_lines(session, r.id))) for r in runs],
        disputes=dispute.list_disputes(session, actor, brand_id=brand_id, status="open"))


def run_detail(session: Session, actor: Actor, *, run_id: int) -> RunView:
    run = service.get_run(session, actor, run_id)
    return RunView(run=run, lines=service.run_lines(session, run.id), totals=service.totals(session, run.id),
                   reconciliation=export.latest_reconciliation(session, run.id),
                   can_approve=run.status == "draft" and actor.user_id != run.created_by_id)

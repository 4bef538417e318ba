from __future__ import annotations

from typing import Any

from fastapi import APIRouter, UploadFile

from clearline.attribution import reattribution
from clearline.auth.deps import CurrentActor, DbSession
from clearline.brand import repository as brand_repository
from clearline.commission import explain, fx, repository
from clearline.commission.schemas import CommissionRead, OrderRead, ReattributeIn

router = APIRouter(tags=["commissions"])


@router.get("/brands/{brand_id}/orders", response_model=list[OrderRead])
def list_orders(brand_id: int, session: DbSession, actor: CurrentActor, limit: int = 200, offset: int = 0) -> object:
    """Orders with how they were attributed (and why) and their commission totals (finance and staff)."""
    brand = brand_repository.get(session, actor, brand_id)
    actor.require(*explain.READERS, brand_id=brand.id)
    return [
        OrderRead(
            id=o.id,
            order_id=o.external_id,
            source=o.source,
            created_at=o.ordered_at,
            currency=o.currency,
            attributed_via=a.via if a else "none",
            creator_id=a.creator_id if a else None,
            reason=a.reason if a else "",
            conflict=bool(a and a.conflict),
            commission_amount=e,
            reversed_amount=r,
        )
        for o, a, e, r in repository.list_orders(
            session, actor, brand_id=brand.id, limit=min(limit, 1000), offset=offset
        )
    ]


@router.get("/brands/{brand_id}/orders/{order_id}/explain")
def explain_order(brand_id: int, order_id: str, session: DbSession, actor: CurrentActor) -> dict[str, Any]:
    """Order → attribution reason → rule → contract version → rate → amount → ledger transfers."""
    return explain.explain_order(session, actor, brand_id=brand_id, order_id=order_id)


@router.get("/commissions", response_model=list[CommissionRead])
def list_commissions(
    session: DbSession, actor: CurrentActor, brand_id: int | None = None, creator_id: int | None = None
) -> object:
    """Commission lines you may see (a creator: its own; an agency: its roster's and its own)."""
    return repository.list_lines(session, actor, brand_id=brand_id, creator_id=creator_id)


@router.get("/commissions/{line_id}/explain")
def explain_commission(line_id: int, session: DbSession, actor: CurrentActor) -> dict[str, Any]:
    """One commission line explained end to end, with its ledger transfers."""
    return explain.explain_line(session, actor, line_id)


@router.post("/brands/{brand_id}/orders/{order_id}/reattribute")
def reattribute(
    brand_id: int, order_id: str, body: ReattributeIn, session: DbSession, actor: CurrentActor
) -> dict[str, Any]:
    """Explicit, audited re-attribution (finance): the old commissions are reversed (clawed back if
    already cleared) and the order is credited anew; nothing already paid is silently rewritten."""
    return reattribution.reattribute(
        session,
        actor,
        brand_id=brand_id,
        order_id=order_id,
        creator_id=body.creator_id,
        campaign_id=body.campaign_id,
        reason=body.reason,
        via=body.via,
    )


@router.post("/fx-rates/import")
async def import_fx(file: UploadFile, session: DbSession, actor: CurrentActor) -> dict[str, int]:
    """Import FX rates (finance): CSV day,base,quote,rate — 1 base = rate quote."""
    return {"imported": fx.import_rates(session, actor, data=await file.read())}

from __future__ import annotations

from fastapi import APIRouter, Request, UploadFile
from sqlalchemy.orm import Session

from clearline.auth.deps import CurrentActor, DbSession
from clearline.link import coupon, repository, service
from clearline.link.schemas import (
    CouponBatchCreate,
    CouponCreate,
    CouponRead,
    LinkCreate,
    LinkPreview,
    LinkPreviewIn,
    LinkRead,
    NotificationRead,
    Readiness,
    RetireIn,
    RotateIn,
    SignoffIn,
    SignoffQueue,
    UtmTemplateIn,
)
from clearline.models import Link

router = APIRouter(tags=["links"])


def link_reads(session: Session, links: list[Link], base_url: str = "") -> list[LinkRead]:
    counts = repository.click_counts(session, [x.id for x in links])
    return [
        LinkRead.model_validate(x).model_copy(
            update={
                "short_url": f"{base_url.rstrip('/')}/r/{x.code}",
                "readiness": Readiness(**service.readiness(session, x)),
                "clicks": counts.get(x.id, (0, 0))[0],
                "unique_clicks": counts.get(x.id, (0, 0))[1],
            }
        )
        for x in links
    ]


@router.get("/brands/{brand_id}/utm-template", response_model=dict[str, str])
def get_utm_template(brand_id: int, session: DbSession, actor: CurrentActor) -> object:
    return service.utm_template(session, actor, brand_id=brand_id)


@router.put("/brands/{brand_id}/utm-template", response_model=dict[str, str])
def put_utm_template(brand_id: int, body: UtmTemplateIn, session: DbSession, actor: CurrentActor) -> object:
    """Replace the brand's UTM template (social_ops). Placeholders: {brand} {channel} {campaign}
    {campaign_id} {creator} {sku}; literal text lowercase (GA4 conventions)."""
    return service.set_utm_template(session, actor, brand_id=brand_id, params=body.params, reason=body.reason).params


@router.post("/links/preview", response_model=LinkPreview)
def preview_link(body: LinkPreviewIn, session: DbSession, actor: CurrentActor) -> object:
    """The UTM values and landing URL a link would carry, before it is issued."""
    return service.preview(session, actor, **body.model_dump())


@router.post("/links", response_model=LinkRead, status_code=201)
def issue_link(body: LinkCreate, request: Request, session: DbSession, actor: CurrentActor) -> object:
    """Issue the canonical link for a creator × campaign (× SKU); it goes live only after ops sign-off."""
    link = service.issue_link(session, actor, **body.model_dump())
    return link_reads(session, [link], str(request.base_url))[0]


@router.get("/links", response_model=list[LinkRead])
def list_links(
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    brand_id: int | None = None,
    creator_id: int | None = None,
    status: str | None = None,
) -> object:
    links = repository.list_links(session, actor, brand_id=brand_id, creator_id=creator_id, status=status)
    return link_reads(session, links, str(request.base_url))


@router.get("/links/{link_id}", response_model=LinkRead)
def get_link(link_id: int, request: Request, session: DbSession, actor: CurrentActor) -> object:
    return link_reads(session, [repository.get_link(session, actor, link_id)], str(request.base_url))[0]


@router.post("/links/{link_id}/submit", response_model=LinkRead)
def submit_link(link_id: int, request: Request, session: DbSession, actor: CurrentActor) -> object:
    """Draft → pending sign-off; due one business hour later."""
    link = service.submit_for_signoff(session, actor, link_id=link_id)
    return link_reads(session, [link], str(request.base_url))[0]


@router.post("/links/{link_id}/signoff", response_model=LinkRead)
def sign_off(link_id: int, body: SignoffIn, request: Request, session: DbSession, actor: CurrentActor) -> object:
    """Social ops signs off; the link goes live only if the creator has an accepted contract (else 409)."""
    link = service.sign_off(session, actor, link_id=link_id, comment=body.comment)
    return link_reads(session, [link], str(request.base_url))[0]


@router.post("/links/{link_id}/rotate", response_model=LinkRead)
def rotate(link_id: int, body: RotateIn, request: Request, session: DbSession, actor: CurrentActor) -> object:
    """New destination, same code; audited with the reason."""
    link = service.rotate(session, actor, link_id=link_id, destination_url=body.destination_url, reason=body.reason)
    return link_reads(session, [link], str(request.base_url))[0]


@router.post("/links/{link_id}/retire", response_model=LinkRead)
def retire(link_id: int, body: RetireIn, request: Request, session: DbSession, actor: CurrentActor) -> object:
    link = service.retire(session, actor, link_id=link_id, reason=body.reason)
    return link_reads(session, [link], str(request.base_url))[0]


@router.get("/brands/{brand_id}/signoffs", response_model=SignoffQueue)
def signoffs(brand_id: int, request: Request, session: DbSession, actor: CurrentActor) -> object:
    """Links waiting for ops sign-off with their due times, and sign-off SLA breaches."""
    queue = service.signoff_queue(session, actor, brand_id=brand_id)
    base = str(request.base_url)
    return SignoffQueue(
        pending=link_reads(session, queue["pending"], base), breaches=link_reads(session, queue["breaches"], base)
    )


@router.post("/campaigns/{campaign_id}/coupons", response_model=CouponRead, status_code=201)
def issue_coupon(campaign_id: int, body: CouponCreate, session: DbSession, actor: CurrentActor) -> object:
    """The creator's unique, readable code for the campaign (or a chosen one, if free)."""
    return coupon.issue_creator_code(session, actor, campaign_id=campaign_id, **body.model_dump())


@router.post("/campaigns/{campaign_id}/coupon-batches", response_model=list[CouponRead], status_code=201)
def issue_batch(campaign_id: int, body: CouponBatchCreate, session: DbSession, actor: CurrentActor) -> object:
    """N single-use codes, unique on the brand."""
    return coupon.issue_batch(session, actor, campaign_id=campaign_id, **body.model_dump())


@router.post("/campaigns/{campaign_id}/coupons/import", response_model=dict[str, int])
async def import_coupons(campaign_id: int, file: UploadFile, session: DbSession, actor: CurrentActor) -> object:
    """Import existing codes from CSV (code,creator_handle,valid_from,valid_until,single_use); all or none."""
    return {"imported": coupon.import_codes(session, actor, campaign_id=campaign_id, data=await file.read())}


@router.get("/coupons", response_model=list[CouponRead])
def list_coupons(
    session: DbSession,
    actor: CurrentActor,
    brand_id: int | None = None,
    creator_id: int | None = None,
    campaign_id: int | None = None,
) -> object:
    return repository.coupons(session, actor, brand_id=brand_id, creator_id=creator_id, campaign_id=campaign_id)


@router.get("/notifications", response_model=list[NotificationRead])
def notifications(session: DbSession, actor: CurrentActor, brand_id: int | None = None) -> object:
    """Alerts for your brands (broken links, escalations) or, for a creator, messages to you."""
    return repository.notifications(session, actor, brand_id=brand_id)

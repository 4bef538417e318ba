"""Briefs (C3): required tracking fields, templates, legal review with edit rounds, duplicates and collisions."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from itertools import combinations
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.auth.scope import brand_filter
from clearline.brand import repository as brand_repository
from clearline.brief import approval
from clearline.brief.schemas import TRACKING_FIELDS, BriefIn
from clearline.campaign import repository as campaign_repository
from clearline.campaign.service import host_allowed
from clearline.catalog import repository as catalog_repository
from clearline.kit.errors import ConflictError, NotFoundError, ValidationFailedError
from clearline.models import Brand, Brief, BriefTemplate, Offer

SIMILARITY_THRESHOLD = 80.0  # see similarity(), 0–100
AMBIGUOUS_AFTER_ROUNDS = 2


def readable(actor: Actor):  # type: ignore[no-untyped-def]
    """Staff read their brands' briefs; a creator (or its agency) the briefs it has made content for."""
    from clearline.brief.creative import party_clauses
    from clearline.models import Creative

    clauses = [brand_filter(actor, Brief.brand_id)]
    parties = party_clauses(actor)
    if parties:
        clauses.append(Brief.id.in_(select(Creative.brief_id).where(or_(*parties))))
    return or_(*clauses)


def get_brief(session: Session, actor: Actor, brief_id: int) -> Brief:
    brief = session.scalar(select(Brief).where(Brief.id == brief_id, readable(actor)))
    if brief is None:
        raise NotFoundError(f"no brief {brief_id}")
    return brief


def list_briefs(session: Session, actor: Actor, *, brand_id: int | None = None) -> list[Brief]:
    stmt = select(Brief).where(readable(actor)).order_by(Brief.id.desc())
    if brand_id is not None:
        stmt = stmt.where(Brief.brand_id == brand_id)
    return list(session.scalars(stmt))


def _clean(value: Any) -> Any:
    """Blank text is no value: a brief of spaces must be named as missing, not accepted."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return [v.strip() for v in value if isinstance(v, str) and v.strip()]
    return value


def _values(session: Session, data: BriefIn, brand_id: int) -> dict[str, Any]:
    values = {k: _clean(v) for k, v in data.model_dump(exclude={"template_id", "campaign_id", "title", "team"}).items()}
    if data.template_id is not None:
        template = session.get(BriefTemplate, data.template_id)
        if template is None or template.brand_id != brand_id:
            raise ValidationFailedError("unknown brief template", details=[{"loc": ["template_id"], "msg": "unknown"}])
        for key, default in template.defaults.items():
            if key in values and not values[key]:
                values[key] = default
    return values


def _validate(session: Session, brand: Brand, values: dict[str, Any]) -> None:
    missing = [name for name in TRACKING_FIELDS if not values.get(name)]
    if missing:
        raise ValidationFailedError(
            f"brief is missing tracking field(s): {', '.join(missing)}",
            details=[{"loc": [name], "msg": "required tracking field"} for name in missing],
        )
    errors = []
    known = catalog_repository.skus_by_code(session, brand_id=brand.id, codes=values["skus"])
    errors += [
        {"loc": ["skus", i], "msg": f"unknown SKU {code!r}"}
        for i, code in enumerate(values["skus"])
        if code not in known
    ]
    if session.scalar(select(Offer.id).where(Offer.brand_id == brand.id, Offer.code == values["offer_code"])) is None:
        errors.append({"loc": ["offer_code"], "msg": f"no offer {values['offer_code']!r} on this brand"})
    if not host_allowed(brand, values["landing_url"]):
        errors.append({"loc": ["landing_url"], "msg": "not on the brand's allowed domains"})
    if errors:
        raise ValidationFailedError("brief has invalid fields", details=errors)


def create_brief(session: Session, actor: Actor, *, brand_id: int, data: BriefIn) -> Brief:
    """Marketing writes a brief; every tracking field is required and checked against the catalog."""
    brand = brand_repository.get(session, actor, brand_id)
    actor.require("marketing", brand_id=brand.id)
    campaign = campaign_repository.get(session, actor, data.campaign_id)
    if campaign.brand_id != brand.id:
        raise ValidationFailedError(
            "campaign of another brand", details=[{"loc": ["campaign_id"], "msg": "other brand"}]
        )
    values = _values(session, data, brand.id)
    _validate(session, brand, values)
    brief = Brief(
        brand_id=brand.id,
        campaign_id=campaign.id,
        title=data.title,
        team=data.team,
        created_by_id=actor.user_id,
        **values,
    )
    session.add(brief)
    session.flush()
    audit.record(session, actor, "brief.created", brief, after={"title": brief.title, **values})
    return brief


def update_brief(session: Session, actor: Actor, *, brief_id: int, data: BriefIn) -> Brief:
    """Marketing edits a draft or a brief sent back by legal (the next submission is a new edit round)."""
    brief = get_brief(session, actor, brief_id)
    actor.require("marketing", brand_id=brief.brand_id)
    if brief.status not in ("draft", "changes_requested"):
        raise ConflictError(f"brief {brief.id} is {brief.status}; only a draft or a returned brief can change")
    brand = session.get(Brand, brief.brand_id)
    values = _values(session, data, brief.brand_id)
    _validate(session, brand, values)  # type: ignore[arg-type]
    before = {k: getattr(brief, k) for k in values}
    for key, value in values.items():
        setattr(brief, key, value)
    brief.title, brief.team = data.title, data.team
    audit.record(session, actor, "brief.updated", brief, before=before, after=values)
    return brief


def submit_brief(session: Session, actor: Actor, *, brief_id: int) -> Brief:
    """Send the brief to legal: clearance of a new offer (48 h), else a content check (24 h), business hours."""
    brief = get_brief(session, actor, brief_id)
    actor.require("marketing", brand_id=brief.brand_id)
    if brief.status not in ("draft", "changes_requested"):
        raise ConflictError(f"brief {brief.id} is {brief.status}")
    offer = session.scalar(select(Offer).where(Offer.brand_id == brief.brand_id, Offer.code == brief.offer_code))
    new_offer = (
        offer is None
        or session.scalar(
            select(Brief.id).where(
                Brief.offer_code == brief.offer_code, Brief.brand_id == brief.brand_id, Brief.status == "approved"
            )
        )
        is None
    )
    kind = "legal_clearance" if new_offer else "content_check"
    approval.open_step(
        session, brand_id=brief.brand_id, subject_type="brief", subject_id=brief.id, kind=kind, role="legal"
    )
    before = brief.status
    brief.status = "in_review"
    audit.record(
        session, actor, "brief.submitted", brief, before={"status": before}, after={"status": "in_review", "step": kind}
    )
    return brief


def on_brief_decision(session: Session, brief: Brief, *, decision: str, at: dt.datetime) -> None:
    """Called by the approval service after legal decides."""
    if decision == "approved":
        brief.status, brief.approved_at = "approved", at
        return
    brief.status = "changes_requested"
    brief.legal_rounds += 1
    if brief.legal_rounds > AMBIGUOUS_AFTER_ROUNDS:
        brief.is_ambiguous = True  # more than two legal edit rounds: the brief itself is unclear


def create_template(
    session: Session, actor: Actor, *, brand_id: int, name: str, defaults: dict[str, Any]
) -> BriefTemplate:
    brand = brand_repository.get(session, actor, brand_id)
    actor.require("marketing", brand_id=brand.id)
    unknown = [k for k in defaults if k not in (*TRACKING_FIELDS, "assets")]
    if unknown:
        raise ValidationFailedError(
            "unknown template fields", details=[{"loc": ["defaults", k], "msg": "unknown"} for k in unknown]
        )
    template = BriefTemplate(brand_id=brand.id, name=name, defaults=defaults)
    session.add(template)
    session.flush()
    audit.record(session, actor, "brief_template.created", template, after={"name": name, "defaults": defaults})
    return template


def _text(brief: Brief) -> str:
    return " ".join([brief.title, brief.call_to_action, *brief.key_messages]).lower()


def similarity(a: str, b: str) -> float:
    """0–100. The token-set ratio alone scores 100 whenever one text's words are a subset of the other's, so a
    terse brief would "duplicate" every longer brief on its SKU; averaging it with the token-sort ratio keeps a
    reworded or reordered copy high and a mere subset low."""
    return (fuzz.token_set_ratio(a, b) + fuzz.token_sort_ratio(a, b)) / 2


def duplicates(session: Session, actor: Actor, *, threshold: float = SIMILARITY_THRESHOLD) -> list[dict[str, Any]]:
    """Briefs for the same SKU with similar text across teams or brands. Only briefs sharing a SKU are compared."""
    briefs = list(session.scalars(select(Brief).where(brand_filter(actor, Brief.brand_id)).order_by(Brief.id)))
    by_sku: dict[str, list[int]] = defaultdict(list)
    for index, brief in enumerate(briefs):
        for sku in set(brief.skus):
            by_sku[sku].append(index)
    pairs = {pair for indexes in by_sku.values() for pair in combinations(indexes, 2)}
    texts = [_text(brief) for brief in briefs]
    found = []
    for i, j in sorted(pairs):
        a, b = briefs[i], briefs[j]
        if a.brand_id == b.brand_id and a.team == b.team:
            continue
        score = similarity(texts[i], texts[j])
        if score >= threshold:
            found.append(
                {
                    "brief_ids": [a.id, b.id],
                    "skus": sorted(set(a.skus) & set(b.skus)),
                    "similarity": round(score, 1),
                    "brands": [a.brand_id, b.brand_id],
                    "teams": [a.team, b.team],
                }
            )
    return sorted(found, key=lambda x: -x["similarity"])


def collisions(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """Offers on the same SKU (code) across brands whose windows overlap."""
    offers = list(session.scalars(select(Offer).where(brand_filter(actor, Offer.brand_id))))
    found = []
    for a, b in combinations(offers, 2):
        if a.brand_id == b.brand_id:
            continue
        shared = sorted((set(a.eligible_skus) - set(a.excluded_skus)) & (set(b.eligible_skus) - set(b.excluded_skus)))
        if shared and a.starts_at < b.ends_at and b.starts_at < a.ends_at:
            found.append(
                {
                    "offers": [a.code, b.code],
                    "offer_ids": [a.id, b.id],
                    "brands": [a.brand_id, b.brand_id],
                    "skus": shared,
                    "overlap": [max(a.starts_at, b.starts_at), min(a.ends_at, b.ends_at)],
                }
            )
    return found

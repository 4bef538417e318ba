"""The catalog: SKUs with price, cost or margin, tier and return rate; offers with legal-approved language."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.catalog import repository
from clearline.catalog.schemas import OfferCreate, SkuImportReport, SkuParsed
from clearline.kit import csvio, money
from clearline.kit.clock import utcnow
from clearline.kit.errors import ConflictError, ValidationFailedError
from clearline.models import Offer, Sku

SKU_COLUMNS = ["sku", "name", "tier", "price", "currency"]
SKU_OPTIONAL = ["category", "unit_cost", "margin_pct", "return_rate_pct"]
CATALOG_WRITERS = ("brand_ops",)
OFFER_WRITERS = ("brand_ops", "brand_steward", "marketing")


def _decimal(
    row: dict[str, str],
    column: str,
    *,
    required: bool,
    low: Decimal = Decimal(0),
    high: Decimal | None = None,
    places: int | None = None,
) -> Decimal | None:
    text = row.get(column, "")
    if not text:
        if required:
            raise csvio.RowInvalid(column, "required")
        return None
    try:
        value = money.parse_decimal(text, field=column)
    except money.MoneyError as exc:
        raise csvio.RowInvalid(column, str(exc)) from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise csvio.RowInvalid(column, f"{text} must be {bound}")
    if places is not None and value != value.quantize(Decimal(1).scaleb(-places)):
        # Stored as basis points: a finer percentage would be silently rounded, so it is refused.
        raise csvio.RowInvalid(column, f"at most {places} decimal places (a basis point)")
    return value


def _parse_sku_row(row: dict[str, str]) -> SkuParsed:
    for column in ("sku", "name", "tier"):
        if not row.get(column):
            raise csvio.RowInvalid(column, "required")
    try:
        currency = money.check_currency(row["currency"])
    except money.MoneyError as exc:
        raise csvio.RowInvalid("currency", str(exc)) from None
    price = _decimal(row, "price", required=True)
    assert price is not None  # required=True refuses a blank
    unit_cost = _decimal(row, "unit_cost", required=False)
    margin = _decimal(row, "margin_pct", required=False, high=Decimal(100), places=2)
    if (unit_cost is None) == (margin is None):
        raise csvio.RowInvalid("unit_cost", "give exactly one of unit_cost and margin_pct")
    for column, value in (("price", price), ("unit_cost", unit_cost)):
        if value is not None and money.round_half_up(value, currency) != value:
            raise csvio.RowInvalid(column, f"more digits than {currency} allows")
    return SkuParsed(
        sku=row["sku"],
        name=row["name"],
        category=row.get("category", ""),
        tier=row["tier"].lower(),
        currency=currency,
        price=price,
        unit_cost=unit_cost,
        margin_pct=margin,  # type: ignore[arg-type]
        return_rate_pct=_decimal(row, "return_rate_pct", required=False, high=Decimal(100), places=2)
        or Decimal(0),
    )


def _bp(pct: Decimal | None) -> int | None:
    return None if pct is None else int((pct * 100).to_integral_value())


def import_skus(
    session: Session, actor: Actor, *, brand_id: int, data: bytes | str, reason: str = ""
) -> SkuImportReport:
    """Create or update SKUs from CSV; one bad row and nothing is imported (errors name line and column)."""
    brand = brand_repository.get(session, actor, brand_id)
    actor.require(*CATALOG_WRITERS, brand_id=brand.id)
    parsed = csvio.parse(data, required=SKU_COLUMNS, optional=SKU_OPTIONAL, convert=_parse_sku_row)
    seen: dict[str, int] = {}
    for line, row in parsed.rows:
        if row.sku in seen:
            parsed.errors.append(csvio.RowError(line, "sku", f"{row.sku} repeats line {seen[row.sku]}"))
        seen[row.sku] = line
    csvio.raise_if_errors(parsed, "SKU import")
    existing = repository.skus_by_code(session, brand_id=brand.id, codes=list(seen))
    created = updated = 0
    now = utcnow()
    for _, row in parsed.rows:
        values = {
            "name": row.name,
            "category": row.category,
            "tier": row.tier,
            "currency": row.currency,
            "price_amount": money.to_minor(row.price, row.currency),
            "unit_cost_amount": None
            if row.unit_cost is None
            else money.to_minor(row.unit_cost, row.currency),
            "margin_bp": _bp(row.margin_pct),
            "return_rate_bp": _bp(row.return_rate_pct) or 0,
        }
        sku = existing.get(row.sku)
        if sku is None:
            sku = Sku(brand_id=brand.id, sku=row.sku, **values)
            session.add(sku)
            created += 1
        else:
            for key, value in values.items():
                setattr(sku, key, value)
            sku.updated_at = now
            updated += 1
    session.flush()
    audit.record(
        session,
        actor,
        "sku.imported",
        ("skus", f"brand:{brand.id}", brand.id),
        after={"created": created, "updated": updated, "skus": sorted(seen)},
        reason=reason,
    )
    return SkuImportReport(created=created, updated=updated)


def create_offer(
    session: Session, actor: Actor, *, brand_id: int, data: OfferCreate, reason: str = ""
) -> Offer:
    """Create an offer on a brand's SKUs; its language needs legal approval before it can be used."""
    brand = brand_repository.get(session, actor, brand_id)
    actor.require(*OFFER_WRITERS, brand_id=brand.id)
    known = repository.skus_by_code(session, brand_id=brand.id, codes=data.eligible_skus + data.excluded_skus)
    errors = [
        {"loc": [field, index], "msg": f"unknown SKU {code!r}"}
        for field, codes in (("eligible_skus", data.eligible_skus), ("excluded_skus", data.excluded_skus))
        for index, code in enumerate(codes)
        if code not in known
    ]
    if errors:
        raise ValidationFailedError("offer names unknown SKUs", details=errors)
    if any(o.code == data.code for o in repository.list_offers(session, actor, brand_id=brand.id)):
        raise ConflictError(f"offer code {data.code!r} exists on this brand")
    offer = Offer(brand_id=brand.id, **data.model_dump())
    session.add(offer)
    session.flush()
    audit.record(session, actor, "offer.created", offer, after=data.model_dump(mode="json"), reason=reason)
    return offer


def approve_offer_language(
    session: Session, actor: Actor, *, offer_id: int, language: str, reason: str = ""
) -> Offer:
    """Legal approves (and may redline) the offer language; approver and time are recorded."""
    offer = repository.get_offer(session, actor, offer_id)
    actor.require("legal", brand_id=offer.brand_id)
    before = {"language": offer.language, "approved_by": offer.language_approved_by_id}
    offer.language = language
    offer.language_approved_by_id = actor.user_id
    offer.language_approved_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "offer.language_approved",
        offer,
        before=before,
        after={"language": language, "approved_by": actor.user_id},
        reason=reason,
    )
    return offer

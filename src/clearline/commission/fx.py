"""FX rates that finance imports (day, base, quote, rate); the rate used is kept on each line."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.kit import csvio, money
from clearline.kit.db import insert_ignore
from clearline.kit.errors import ValidationFailedError
from clearline.models import FxRate

PRECISION = Decimal("0.000000000001")


def rate(session: Session, *, day: dt.date, base: str, quote: str) -> Decimal:
    """1 base = rate quote on ``day`` (the most recent rate on or before it); inverse rates are used too."""
    if base == quote:
        return Decimal(1)
    for b, q, invert in ((base, quote, False), (quote, base, True)):
        found = session.scalar(
            select(FxRate.rate)
            .where(FxRate.base == b, FxRate.quote == q, FxRate.day <= day)
            .order_by(FxRate.day.desc())
            .limit(1)
        )
        if found is not None:
            value = Decimal(found)
            return (Decimal(1) / value).quantize(PRECISION) if invert else value
    raise ValidationFailedError(
        f"no FX rate {base}→{quote} on or before {day.isoformat()}: import it, then replay",
        details=[{"loc": ["fx", f"{base}{quote}"], "msg": "missing rate"}],
    )


def import_rates(session: Session, actor: Actor, *, data: bytes | str) -> int:
    """Import day,base,quote,rate (finance); all rows or none; a repeated day/pair is refused."""
    actor.require("finance")

    def convert(row: dict[str, str]) -> dict[str, object]:
        try:
            day = dt.date.fromisoformat(row["day"])
        except ValueError:
            raise csvio.RowInvalid("day", f"{row['day']!r} is not YYYY-MM-DD") from None
        pair = {}
        for column in ("base", "quote"):
            try:
                pair[column] = money.check_currency(row[column])
            except money.MoneyError as exc:
                raise csvio.RowInvalid(column, str(exc)) from None
        try:
            value = money.parse_decimal(row["rate"], field="rate")
        except money.MoneyError as exc:
            raise csvio.RowInvalid("rate", str(exc)) from None
        if value <= 0:
            raise csvio.RowInvalid("rate", "must be positive")
        return {"day": day, **pair, "rate": str(value)}

    parsed = csvio.parse(data, required=["day", "base", "quote", "rate"], convert=convert)
    csvio.raise_if_errors(parsed, "FX import")
    statement = insert_ignore(FxRate.__table__, session.get_bind().dialect.name, conflict=["day", "base", "quote"])
    session.execute(statement, [row for _, row in parsed.rows])
    audit.record(session, actor, "fx_rate.imported", ("fx_rates", "import", None), after={"rows": len(parsed.rows)})
    return len(parsed.rows)

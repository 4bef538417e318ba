"""A checked order file into the inbox, in bulk: its orders stored raw (one inbox event per order, the body the
canonical JSON of its rows), answered per order as `service.store_many` answers.

On PostgreSQL the brand's known orders are found with one join from the id array (a file of duplicates stops
there: nothing to write), the new ones get their ids from the sequence in one statement and go in by one
``COPY`` straight into ``inbox_events`` (no staging table, no statement text per event). Should another
session store one of the same orders between the look-up and the ``COPY``, the unique key refuses the
``COPY``: its savepoint is rolled back and `service.store_many` (insert-or-ignore) stores the file instead.
Elsewhere (SQLite) `service.store_many` does it with executemany.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import polars as pl
from psycopg.errors import UniqueViolation
from sqlalchemy import String, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from clearline.ingest import service
from clearline.kit.clock import utcnow

log = logging.getLogger(__name__)

_KNOWN = text("""
SELECT e.external_id, e.id, e.body_sha256, e.handled_at IS NOT NULL
FROM unnest(:ids) AS i(external_id)
JOIN inbox_events e
  ON e.brand_id = :brand_id AND e.source = :source AND e.kind = :kind AND e.external_id = i.external_id
""").bindparams(bindparam("ids", type_=ARRAY(String)))
_IDS = text("SELECT nextval(pg_get_serial_sequence('inbox_events', 'id')) FROM generate_series(1, :n)")
_COPY = (
    "COPY inbox_events (id, brand_id, source, kind, external_id, delivery_id, body, body_sha256, received_at, error)"
    " FROM STDIN"
)
_CHUNK = 1 << 20


def store_orders(
    session: Session,
    *,
    brand_id: int,
    orders: pl.DataFrame,
    digests: Sequence[str],
    delivery_id: str = "",
    source: str = "csv",
) -> list[service.Stored]:
    """Store checked orders (``orders``: order_id, body; one row per order id) with their bodies' digests;
    one answer per order in the same order."""
    ids: list[str] = orders["order_id"].to_list()
    if not ids:
        return []
    if session.get_bind().dialect.name != "postgresql":
        items = list(zip(ids, orders["body"].to_list(), digests, strict=True))
        return service.store_many(
            session, brand_id=brand_id, source=source, kind="order", items=items, delivery_id=delivery_id
        )
    where = {"brand_id": brand_id, "source": source, "kind": "order"}
    known = {row[0]: row[1:] for row in session.execute(_KNOWN, {**where, "ids": ids})}
    answers: list[service.Stored | None] = [None] * len(ids)
    fresh: list[int] = []
    for position, (external_id, digest) in enumerate(zip(ids, digests, strict=True)):
        found = known.get(external_id)
        if found is None:
            fresh.append(position)
        else:
            event_id, stored_digest, handled = found
            # The body is canonical JSON, so its digest is `service.body_digest` of it, as stored ones are.
            answers[position] = service.Stored(
                event_id, duplicate=True, handled=handled, conflict=stored_digest != digest
            )
    if fresh:
        try:
            with session.begin_nested():
                event_ids = _copy_new(session, brand_id, source, orders, digests, fresh, delivery_id)
        except UniqueViolation:  # another session stored some of them meanwhile: insert-or-ignore sorts it out
            log.warning("COPY into the inbox refused; storing the %d orders by insert-or-ignore", len(ids))
            items = list(zip(ids, orders["body"].to_list(), digests, strict=True))
            return service.store_many(
                session, brand_id=brand_id, source=source, kind="order", items=items, delivery_id=delivery_id
            )
        for position, event_id in zip(fresh, event_ids, strict=True):
            answers[position] = service.Stored(event_id)
    assert all(answer is not None for answer in answers)
    return answers  # type: ignore[return-value]


def _copy_new(
    session: Session,
    brand_id: int,
    source: str,
    orders: pl.DataFrame,
    digests: Sequence[str],
    fresh: list[int],
    delivery_id: str,
) -> list[int]:
    event_ids = sorted(session.scalars(_IDS, {"n": len(fresh)}))
    new = orders.with_columns(pl.Series("digest", digests, dtype=pl.String))
    if len(fresh) < len(orders):
        new = new[fresh]
    received = utcnow().isoformat()
    # COPY's text format: a tab between columns, a backslash doubled (JSON bodies have no raw tab or newline;
    # an id might, and is escaped too).
    lines = new.select(
        pl.concat_str(
            [
                pl.Series("id", event_ids, dtype=pl.Int64).cast(pl.String),
                pl.lit(f"{brand_id}\t{_escape(source)}\torder"),
                _escaped(pl.col("order_id")),
                pl.lit(_escape(delivery_id[:128])),
                _escaped(pl.col("body")),
                pl.col("digest"),
                pl.lit(f"{received}\t"),
            ],
            separator="\t",
        )
    ).to_series()
    payload = (lines.str.join("\n").item() + "\n").encode()
    driver = session.connection().connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(_COPY) as copy:  # type: ignore[union-attr]
        view = memoryview(payload)
        for start in range(0, len(payload), _CHUNK):
            copy.write(view[start : start + _CHUNK])
    return event_ids


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _escaped(value: pl.Expr) -> pl.Expr:
    return (
        value.str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all("\t", "\\t", literal=True)
        .str.replace_all("\n", "\\n", literal=True)
        .str.replace_all("\r", "\\r", literal=True)
    )

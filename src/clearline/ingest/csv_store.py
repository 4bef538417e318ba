"""A checked order file into the inbox, in bulk: its orders stored raw (one inbox event per order, the body the
canonical JSON of its rows), answered per order as `service.store_many` answers.

On PostgreSQL the new orders go in by one ``COPY`` straight into ``inbox_events`` (no staging table, no
statement text per event, ids from the column's default); the brand's known orders are found with one join
from the id array (a file of duplicates stops there: nothing to write). Should another session store one of
the same orders meanwhile, the unique key refuses the ``COPY``: its savepoint is rolled back and
`service.store_many` (insert-or-ignore) stores the file instead.
The ``COPY`` is written in slices of orders through psycopg's queued writer: while PostgreSQL inserts one
slice (its three indexes are most of its work), this process computes the next slice's digests and text.
`streaming` keeps such a ``COPY`` open while the caller checks the rest of its file, part after part (an
exception inside, such as a bad row found later, rolls back the whole of it).
Elsewhere (SQLite) `service.store_many` does it with executemany.
A file whose every order was accepted is remembered by the SHA-256 of its bytes (`order_files`): the same bytes
again are known from one look-up (`accepted_file`), and only its orders still waiting are looked for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import polars as pl
from psycopg import Copy
from psycopg.copy import QueuedLibpqWriter
from psycopg.errors import UniqueViolation
from sqlalchemy import ColumnElement, String, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from clearline.ingest import service
from clearline.kit.clock import utcnow
from clearline.kit.db import insert_ignore
from clearline.models import InboxEvent, OrderFile

log = logging.getLogger(__name__)

_KNOWN = text("""
SELECT e.external_id
FROM unnest(:ids) AS i(external_id)
JOIN inbox_events e
  ON e.brand_id = :brand_id AND e.source = :source AND e.kind = :kind AND e.external_id = i.external_id
""").bindparams(bindparam("ids", type_=ARRAY(String)))
# Known orders are compared on the server: only what is not a processed duplicate with the same body comes back
# (a file of duplicates sends its ids and digests, and reads back one row of empty lists).
_SORT = text("""
SELECT
  coalesce(array_agg(i.external_id) FILTER (WHERE e.id IS NULL), '{}'),
  coalesce(array_agg(i.external_id) FILTER (WHERE e.body_sha256 = i.digest AND e.handled_at IS NULL), '{}'),
  coalesce(array_agg(i.external_id) FILTER (WHERE e.body_sha256 <> i.digest), '{}')
FROM unnest(string_to_array(:ids, :separator), string_to_array(:digests, :separator)) AS i(external_id, digest)
LEFT JOIN inbox_events e
  ON e.brand_id = :brand_id AND e.source = :source AND e.kind = :kind AND e.external_id = i.external_id
""")
# Which of a file's orders are stored with the same body: only the others come back, in two lists (the rest of
# the file was stored and processed before), so a file of processed duplicates reads back two empty lists.
_SAME = text("""
SELECT
  coalesce(array_agg(i.external_id) FILTER (WHERE e.id IS NULL), '{}'),
  coalesce(array_agg(i.external_id) FILTER (WHERE e.id IS NOT NULL AND e.handled_at IS NULL), '{}')
FROM unnest(string_to_array(:ids, :separator), string_to_array(:digests, :separator)) AS i(external_id, digest)
LEFT JOIN inbox_events e
  ON e.brand_id = :brand_id AND e.source = :source AND e.kind = :kind AND e.external_id = i.external_id
  AND e.body_sha256 = i.digest
""")
# The orders of a file still waiting to be processed: one join from the file's ids, in one text.
_WAITING = text("""
SELECT i.external_id
FROM unnest(string_to_array(:ids, :separator)) AS i(external_id)
JOIN inbox_events e
  ON e.brand_id = :brand_id AND e.source = :source AND e.kind = :kind AND e.external_id = i.external_id
WHERE e.handled_at IS NULL
""")
_COPY = (
    "COPY inbox_events (brand_id, source, kind, external_id, delivery_id, body, body_sha256, received_at, error)"
    " FROM STDIN"
)
_SLICE = 8192  # orders per slice of the COPY: PostgreSQL starts on the first while the next is prepared
_PROBE = 64  # ids looked up before trusting a file to be new


@dataclass(frozen=True)
class Stored:
    """One order's answer: stored now, or already there (``handled``: processed) with the same body or not."""

    duplicate: bool = False
    handled: bool = False
    conflict: bool = False


NEW = Stored()  # every order of a new file gets this one answer
DONE = Stored(duplicate=True, handled=True)  # and every order of a file stored and processed before, this one


def digests_of(bodies: Sequence[str]) -> list[str]:
    """The bodies' SHA-256 in hex: `service.body_digest` of a canonical JSON body is the digest of its text."""
    return [hashlib.sha256(body.encode()).hexdigest() for body in bodies]


def store_orders(
    session: Session,
    *,
    brand_id: int,
    orders: pl.DataFrame,
    digests: Sequence[str] | None = None,
    delivery_id: str = "",
    source: str = "csv",
) -> list[Stored]:
    """Store checked orders (``orders``: order_id, body; one row per order id) with their bodies' digests
    (`digests_of` the bodies when not given); one answer per order in the same order (`NEW` for each order
    stored now). The new events' ids are not read back: the orders are found again by their ids when they
    are processed."""
    ids: list[str] = orders["order_id"].to_list()
    if not ids:
        return []
    if session.get_bind().dialect.name != "postgresql":
        digests = digests if digests is not None else digests_of(orders["body"].to_list())
        items = list(zip(ids, orders["body"].to_list(), digests, strict=True))
        stored = service.store_many(
            session, brand_id=brand_id, source=source, kind="order", items=items, delivery_id=delivery_id
        )
        return [Stored(s.duplicate, s.handled, s.conflict) for s in stored]
    where = {"brand_id": brand_id, "source": source, "kind": "order"}
    # A new file is the common case: when none of a sample of its ids is known, it goes in by one COPY with no
    # look-up at all; the unique key still refuses any known one, and then every id is looked up.
    if looks_new(session, brand_id=brand_id, ids=ids, source=source):
        try:
            with streaming(session, brand_id=brand_id, delivery_id=delivery_id, source=source) as send:
                send(orders, digests)
            return [NEW] * len(ids)
        except UniqueViolation:
            pass
    digests = digests if digests is not None else digests_of(orders["body"].to_list())
    # The body is canonical JSON, so its digest is `service.body_digest` of it, as the stored ones are.
    # Two texts, split on the server: binding 2 × 80,000 list items cost more than the look-up itself.
    separator = _separator(ids)
    lists = {"ids": separator.join(ids), "digests": separator.join(digests), "separator": separator}
    new, waiting, conflicting = session.execute(_SORT, {**where, **lists}).one()
    if not (new or waiting or conflicting):
        return [DONE] * len(ids)
    new_ids, waiting_ids, conflicting_ids = set(new), set(waiting), set(conflicting)
    answers: list[Stored] = []
    fresh: list[int] = []
    for position, external_id in enumerate(ids):
        if external_id in new_ids:
            fresh.append(position)
            answers.append(NEW)
        elif external_id in waiting_ids:
            answers.append(Stored(duplicate=True))
        elif external_id in conflicting_ids:
            answers.append(Stored(duplicate=True, conflict=True))
        else:
            answers.append(DONE)
    if fresh:
        try:
            with streaming(session, brand_id=brand_id, delivery_id=delivery_id, source=source) as send:
                send(orders[fresh], [digests[i] for i in fresh])
        except UniqueViolation:  # another session stored some of them meanwhile: insert-or-ignore sorts it out
            log.warning("COPY into the inbox refused; storing the %d orders by insert-or-ignore", len(ids))
            items = list(zip(ids, orders["body"].to_list(), digests, strict=True))
            stored = service.store_many(
                session, brand_id=brand_id, source=source, kind="order", items=items, delivery_id=delivery_id
            )
            return [Stored(s.duplicate, s.handled, s.conflict) for s in stored]
    return answers


def stored_same(
    session: Session, *, brand_id: int, ids: list[str], digests: Sequence[str], source: str = "csv"
) -> tuple[set[str], set[str]]:
    """Of these orders (ids, one each, with their bodies' digests), those stored with the same body: (processed,
    still waiting). Any other is new or differs, and is left to the check and `store_orders`."""
    if not ids:
        return set(), set()
    where = {"brand_id": brand_id, "source": source, "kind": "order"}
    if session.get_bind().dialect.name == "postgresql":
        separator = _separator(ids)
        lists = {"ids": separator.join(ids), "digests": separator.join(digests), "separator": separator}
        others, waiting = session.execute(_SAME, {**where, **lists}).one()
        if not others and not waiting:
            return set(ids), set()
        return set(ids) - set(others) - set(waiting), set(waiting)
    digest_of = dict(zip(ids, digests, strict=True))
    done: set[str] = set()
    pending: set[str] = set()
    for start in range(0, len(ids), service.STORE_CHUNK):
        chunk = ids[start : start + service.STORE_CHUNK]
        found = session.execute(
            select(InboxEvent.external_id, InboxEvent.body_sha256, InboxEvent.handled_at).where(
                InboxEvent.brand_id == brand_id,
                InboxEvent.source == source,
                InboxEvent.kind == "order",
                InboxEvent.external_id.in_(chunk),
            )
        )
        for external_id, digest, handled_at in found:
            if digest == digest_of[external_id]:
                (done if handled_at is not None else pending).add(external_id)
    return done, pending


@dataclass(frozen=True)
class KnownFile:
    """An order file accepted whole before (`order_files`)."""

    accepted_at: dt.datetime
    filename: str
    orders: int
    rows: int


class FileDigest:
    """The SHA-256 (hex) of a file's bytes (of a text's UTF-8), computed in a thread from the start: hashlib lets go
    of the GIL while it hashes, so a new file's digest (about 15 ms for 19 MB) is made while the file is checked."""

    def __init__(self, data: bytes | str) -> None:
        self._data = data if isinstance(data, bytes) else data.encode()
        self.size = len(self._data)
        self._hex = ""
        self._thread = threading.Thread(target=self._hash, name="order-file-digest", daemon=True)
        self._thread.start()

    def _hash(self) -> None:
        self._hex = hashlib.sha256(self._data).hexdigest()

    def hex(self) -> str:
        self._thread.join()
        return self._hex


def accepted_file(session: Session, *, brand_id: int, digest: FileDigest) -> KnownFile | None:
    """The brand's file with these bytes, when every order of it was accepted before. Files of the same size are
    looked up first: none (a new file, as a rule) and the answer needs no digest."""
    found = session.execute(
        select(OrderFile.sha256, OrderFile.accepted_at, OrderFile.filename, OrderFile.orders, OrderFile.rows).where(
            OrderFile.brand_id == brand_id, OrderFile.size == digest.size
        )
    ).all()
    if not found:
        return None
    sha256 = digest.hex()
    return next((KnownFile(*row[1:]) for row in found if row[0] == sha256), None)


def record_file(session: Session, *, brand_id: int, digest: FileDigest, filename: str, orders: int, rows: int) -> None:
    """Remember a file whose every order is now stored (in the unit of work that stores them). The same bytes
    accepted by two sessions at once keep the first one's row (insert-or-ignore)."""
    statement = insert_ignore(OrderFile.__table__, session.get_bind().dialect.name, conflict=["brand_id", "sha256"])
    values = {"brand_id": brand_id, "sha256": digest.hex(), "size": digest.size, "filename": filename[:255]}
    session.execute(statement.values(**values, accepted_at=utcnow(), orders=orders, rows=rows))


def any_waiting(session: Session, *, brand_id: int, source: str = "csv") -> bool:
    """Whether any of the brand's orders from this source is stored and not processed yet (an index probe on
    the unhandled events: usually none, and then no file of the brand has an order waiting)."""
    probe = select(InboxEvent.id).where(*_waiting_orders(brand_id, source))
    return session.execute(probe.limit(1)).first() is not None


def _waiting_orders(brand_id: int, source: str) -> tuple[ColumnElement[bool], ...]:
    """The conditions of a brand's stored, unprocessed orders from one source."""
    return (
        InboxEvent.handled_at.is_(None),
        InboxEvent.brand_id == brand_id,
        InboxEvent.source == source,
        InboxEvent.kind == "order",
    )


def waiting_among(session: Session, *, brand_id: int, ids: Sequence[str], source: str = "csv") -> set[str]:
    """Of these orders, those stored and not processed yet (one query on PostgreSQL; per chunk of ids on SQLite)."""
    if not ids:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        separator = _separator(ids)
        where = {"brand_id": brand_id, "source": source, "kind": "order"}
        return set(session.scalars(_WAITING, {**where, "ids": separator.join(ids), "separator": separator}))
    waiting: set[str] = set()
    for start in range(0, len(ids), service.STORE_CHUNK):
        waiting.update(
            session.scalars(
                select(InboxEvent.external_id).where(
                    *_waiting_orders(brand_id, source),
                    InboxEvent.external_id.in_(ids[start : start + service.STORE_CHUNK]),
                )
            )
        )
    return waiting


def _separator(ids: Sequence[str]) -> str:
    """A separator of the ids in one text that none of them holds (an id with a line break is possible)."""
    separator = "\n"
    while any(separator in external_id for external_id in ids):
        separator = "\x1f" + secrets.token_hex(8)
    return separator


def streams(session: Session) -> bool:
    """Whether `streaming` works on this session's database (PostgreSQL's COPY)."""
    return session.get_bind().dialect.name == "postgresql"


def looks_new(session: Session, *, brand_id: int, ids: Sequence[str], source: str = "csv") -> bool:
    """Whether none of a sample of these order ids is in the brand's inbox yet (then a file is stored by COPY
    without looking its ids up; the unique key refuses the COPY should one of the others be known)."""
    if not ids:
        return True
    probe = list(ids[:: max(1, len(ids) // _PROBE)])
    if session.get_bind().dialect.name != "postgresql":
        known = select(InboxEvent.id).where(
            InboxEvent.brand_id == brand_id,
            InboxEvent.source == source,
            InboxEvent.kind == "order",
            InboxEvent.external_id.in_(probe),
        )
        return session.execute(known.limit(1)).first() is None
    where = {"brand_id": brand_id, "source": source, "kind": "order", "ids": probe}
    return session.execute(_KNOWN, where).first() is None


Send = Callable[[pl.DataFrame, Sequence[str] | None], None]


@contextmanager
def streaming(session: Session, *, brand_id: int, delivery_id: str = "", source: str = "csv") -> Iterator[Send]:
    """One ``COPY`` of new orders into the inbox, in a savepoint, fed by the function it yields: each call
    sends checked orders (order_id, body) with their bodies' digests (`digests_of` them when None). An
    exception inside ends the COPY and rolls all of it back, as does the unique key's refusal of a known
    order (`UniqueViolation` out of the block). PostgreSQL only (`streams`)."""
    received = utcnow().isoformat()
    head = f"{brand_id}\t{_escape(source)}\torder"
    delivery = _escape(delivery_id[:128])
    with session.begin_nested():
        driver = session.connection().connection.driver_connection
        cursor = driver.cursor()  # type: ignore[union-attr]
        # The queued writer sends from its own thread: the next slice is prepared while the server inserts.
        with cursor, cursor.copy(_COPY, writer=QueuedLibpqWriter(cursor)) as copy:

            def send(orders: pl.DataFrame, digests: Sequence[str] | None = None) -> None:
                _send(copy, orders, digests, head, delivery, received)

            yield send


def _send(copy: Copy, orders: pl.DataFrame, digests: Sequence[str] | None, head: str, delivery: str, at: str) -> None:
    # COPY's text format: a tab between columns, a backslash doubled. JSON bodies have no raw tab or line
    # break, nor a backslash unless a value had one; an order id might, and is escaped then.
    body = pl.col("body")
    if orders.select(body.str.contains("\\", literal=True).any()).item():
        body = _escaped(body)
    order_id = pl.col("order_id")
    if orders.select(order_id.str.contains(r"[\\\t\n\r]").any()).item():
        order_id = _escaped(order_id)
    for start in range(0, orders.height, _SLICE):
        part = orders.slice(start, _SLICE)
        sums = digests[start : start + _SLICE] if digests is not None else digests_of(part["body"].to_list())
        fields = [pl.lit(head), order_id, pl.lit(delivery), body, pl.Series("digest", sums, dtype=pl.String)]
        lines = part.select(pl.concat_str([*fields, pl.lit(f"{at}\t")], separator="\t")).to_series()
        copy.write((lines.str.join("\n").item() + "\n").encode())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _escaped(value: pl.Expr) -> pl.Expr:
    return (
        value.str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all("\t", "\\t", literal=True)
        .str.replace_all("\n", "\\n", literal=True)
        .str.replace_all("\r", "\\r", literal=True)
    )

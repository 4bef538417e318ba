"""Group commit for the postback fast path: many requests' inbox rows, one INSERT, one COMMIT.

Every request hands its row to one writer thread and waits on a future. The thread takes whatever is
queued (the requests that arrived while the previous batch was committing), inserts it in one
insert-or-ignore statement on the inbox's unique key, commits, and only then resolves the futures: a
sender never gets its 200 for a row that is not committed, and a failed commit answers every request of
the batch with an error (it sends again) with nothing half-written.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.engine import Connection, Engine

from clearline.ingest import service
from clearline.kit.errors import ConflictError
from clearline.models import InboxEvent

log = logging.getLogger("clearline.ingest.writer")

INBOX: Table = InboxEvent.__table__  # type: ignore[assignment]
KEY = ("brand_id", "source", "kind", "external_id")
# Rows per statement: well under SQLite's 32,766 bound parameters at nine columns a row.
MAX_BATCH = 500


@dataclass(frozen=True, slots=True)
class Stored:
    event_id: int
    duplicate: bool


Outcome = Stored | ConflictError
Key = tuple[int, str, str, str]


def _key(row: Any) -> Key:
    if isinstance(row, dict):
        return (row["brand_id"], row["source"], row["kind"], row["external_id"])
    return (row.brand_id, row.source, row.kind, row.external_id)


COLUMNS = ("brand_id", "source", "kind", "external_id", "delivery_id", "body", "body_sha256", "received_at", "error")
PLACEHOLDER = {"sqlite": "?", "postgresql": "%s"}


@functools.cache
def _insert_sql(dialect_name: str, rows: int) -> str:
    """One multi-row insert-or-ignore returning the rows it inserted, as the driver's own SQL (SQLAlchemy's
    statement costs twice the database's work per row on a small batch: parameter processing, result rows)."""
    mark = PLACEHOLDER[dialect_name]
    values = "(" + ", ".join([mark] * len(COLUMNS)) + ")"
    return (
        f"INSERT INTO {INBOX.name} ({', '.join(COLUMNS)}) VALUES {', '.join([values] * rows)} "  # noqa: S608 - no values
        f"ON CONFLICT ({', '.join(KEY)}) DO NOTHING RETURNING id, {', '.join(KEY)}"
    )


def _stored_time(value: dt.datetime, dialect_name: str) -> Any:
    """A `UTCDateTime` bind value as the driver takes it (SQLite: naive UTC text in SQLAlchemy's format)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    if dialect_name == "sqlite":
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _insert(conn: Connection, rows: list[dict[str, Any]]) -> dict[Key, int]:
    """Insert-or-ignore ``rows``; the id of each one inserted, by key."""
    dialect_name = conn.dialect.name
    inserted: dict[Key, int] = {}
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for at in range(0, len(rows), MAX_BATCH):
            chunk = rows[at : at + MAX_BATCH]
            params: list[Any] = []
            for row in chunk:
                params.extend(row[name] for name in COLUMNS)
                params[-2] = _stored_time(row["received_at"], dialect_name)
            cursor.execute(_insert_sql(dialect_name, len(chunk)), params)
            for event_id, *key in cursor.fetchall():
                inserted[tuple(key)] = event_id  # type: ignore[index]
    finally:
        cursor.close()
    return inserted


def same_content(row: dict[str, Any], digest: str, body: str) -> bool:
    """Whether ``row`` carries the same event as a stored body: the same digest (of the raw text on the
    postback path, of the canonical JSON elsewhere), or else the same JSON once parsed, so a sender that
    re-serialises a retry (other spacing, other key order) still sends a duplicate. Only a repeated key
    pays for the comparison."""
    if row["body_sha256"] == digest or row["body"] == body:
        return True
    return service.body_digest(row["body"]) == service.body_digest(body)


def write_batch(conn: Connection, rows: list[dict[str, Any]]) -> list[Outcome]:
    """Insert-or-ignore ``rows`` (complete inbox rows) in one statement; one outcome per row, in order.

    A row whose key is already stored (earlier, or by an earlier row of this batch) is a duplicate when its
    body is the same JSON (`same_content`), else a ConflictError (409) and nothing of it is written. The
    caller commits."""
    firsts: dict[Key, dict[str, Any]] = {}
    for row in rows:
        firsts.setdefault(_key(row), row)
    inserted = _insert(conn, list(firsts.values()))
    earlier = [k for k in firsts if k not in inserted]
    existing: dict[Key, Any] = {}
    if earlier:
        found = conn.execute(
            select(
                INBOX.c.id,
                *(INBOX.c[n] for n in KEY),
                INBOX.c.body_sha256,
                INBOX.c.body,
                INBOX.c.handled_at,
                INBOX.c.error,
            ).where(
                INBOX.c.external_id.in_({k[3] for k in earlier}),
                INBOX.c.brand_id.in_({k[0] for k in earlier}),
            )
        )
        existing = {k: r for r in found if (k := _key(r)) in firsts}
    outcomes: list[Outcome] = []
    retry: list[int] = []
    for row in rows:
        key = _key(row)
        if key in inserted:
            first = firsts[key]
            if row is first:
                outcomes.append(Stored(inserted[key], False))
                continue
            same, event_id = same_content(row, first["body_sha256"], first["body"]), inserted[key]
        else:
            stored = existing.get(key)
            if stored is None:  # ignored by the insert yet not there: deleted meanwhile; fail the batch
                raise RuntimeError(f"inbox row {key} neither inserted nor found")
            same, event_id = same_content(row, stored.body_sha256, stored.body), stored.id
            if same and stored.handled_at is None and stored.error:
                retry.append(stored.id)
        if same:
            outcomes.append(Stored(event_id, True))
        else:
            kind, external_id = key[2], key[3]
            outcomes.append(ConflictError(f"{kind} {external_id} was already received with a different body"))
    if retry:
        # A sender resending an event that failed asks for another try (receive() used to process it again);
        # a cleared error puts it back in the drainer's queue.
        conn.execute(update(INBOX).where(INBOX.c.id.in_(retry), INBOX.c.handled_at.is_(None)).values(error=""))
    return outcomes


@dataclass(frozen=True, slots=True)
class Callback:
    """A waiter that is a plain function called on its event loop (the HTTP protocol's postbacks): no
    future, no task."""

    loop: asyncio.AbstractEventLoop
    call: Callable[[Stored | BaseException], None]

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self.loop


Waiter = asyncio.Future[Stored] | Callback


def _settle(pairs: list[tuple[Waiter, Stored | BaseException]]) -> None:
    """On the event loop: answer the waiting requests of one batch."""
    for waiter, outcome in pairs:
        if isinstance(waiter, Callback):
            try:
                waiter.call(outcome)
            except Exception:  # one broken connection must not keep the rest of the batch unanswered
                log.exception("a postback answer could not be sent")
            continue
        if waiter.done():  # the request was cancelled (client gone); the row is stored all the same
            continue
        if isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)


def _answer(waiters: list[Waiter], outcomes: list[Stored | BaseException]) -> None:
    """One wake-up of each event loop per batch, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Waiter, Stored | BaseException]]] = {}
    for waiter, outcome in zip(waiters, outcomes, strict=True):
        by_loop.setdefault(waiter.get_loop(), []).append((waiter, outcome))
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, pairs)


_STOP = object()


class GroupCommitWriter:
    """One thread writing the inbox rows of all concurrent requests, a batch per commit."""

    def __init__(
        self, engine: Engine, *, max_batch: int = MAX_BATCH, on_commit: Callable[[int], None] | None = None
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.on_commit = on_commit
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self._conn: Connection | None = None
        self.written = 0
        self.batches = 0

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
                self._thread.start()

    def submit(self, row: dict[str, Any]) -> asyncio.Future[Stored]:
        """Queue one inbox row (from a coroutine); the future resolves once its batch is committed."""
        if self._thread is None:
            self.start()
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._put(row, future)
        return future

    def submit_callback(
        self, row: dict[str, Any], loop: asyncio.AbstractEventLoop, call: Callable[[Stored | BaseException], None]
    ) -> None:
        """Queue one inbox row; ``call`` runs on ``loop`` with its outcome once its batch is committed."""
        if self._thread is None:
            self.start()
        self._put(row, Callback(loop, call))

    def _put(self, row: dict[str, Any], waiter: Waiter) -> None:
        with self._lock:  # checked and queued at once: a row queued after stop()'s _STOP would never be answered
            if self._stopped:
                raise RuntimeError("the inbox writer is stopped")
            self._queue.put((row, waiter))

    def stop(self) -> None:
        """Write everything already queued, then end the thread."""
        with self._lock:
            self._stopped = True
            thread = self._thread
            if thread is not None:
                self._queue.put(_STOP)
        if thread is not None:
            thread.join(timeout=30)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                break
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._write(batch)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _write(self, batch: list[tuple[dict[str, Any], Waiter]]) -> None:
        try:
            # The thread keeps its connection: a pool checkout and its reset (a ROLLBACK round trip on
            # PostgreSQL) per batch would cost more than the insert of a small one.
            if self._conn is None:
                self._conn = self.engine.connect()
            with self._conn.begin():
                outcomes = write_batch(self._conn, [row for row, _ in batch])
        except Exception as exc:
            if self._conn is not None:  # it may be broken; the next batch takes a fresh one
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
            if len(batch) > 1:
                # One bad row must not fail its neighbours: write each alone (all fail alike if the database
                # is down, and each request answers 500 so its sender tries again).
                for item in batch:
                    self._write([item])
                return
            log.exception("inbox row could not be stored")
            _answer([batch[0][1]], [exc])
            return
        self.batches += 1
        new = sum(1 for o in outcomes if isinstance(o, Stored) and not o.duplicate)
        self.written += new
        _answer([waiter for _, waiter in batch], list(outcomes))
        if self.on_commit is not None and new:
            self.on_commit(new)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

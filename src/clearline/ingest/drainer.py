"""Processing after storing: a background thread applies new inbox events in batches, each in its own unit
of work, with the existing `service.process_batch` (attribution, commission, ledger; orders set-wise, each
event's outcome exactly as `service.process` gives it).

It takes events never tried (`handled_at` and `error` empty): one that fails keeps its error and waits for
`clearline events replay` (or a resend by its sender), so a broken event is not retried in a loop. Orders go
before refunds, as in `service.replay`. On PostgreSQL the rows are claimed with `FOR UPDATE SKIP LOCKED`, so
several server processes drain side by side without applying an event twice. While the intake is busy
the drainer takes at most `busy_share` of the time, in small batches (`busy_batch` events a transaction):
in one process the interpreter lock, and on SQLite the single writer, would otherwise hold up the answers.
Under a sustained overload the backlog grows and is worked off at full speed once the intake is quiet.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from clearline.ingest import service
from clearline.models import InboxEvent

log = logging.getLogger("clearline.ingest.drainer")


def drain_once(session: Session, *, limit: int | None = None) -> dict[str, int]:
    """Process up to ``limit`` untried inbox events in ``session`` (the caller commits); the counts."""
    events: list[InboxEvent] = []
    # Orders, then refunds, each in id order: two walks of the (handled_at, id) index. One ORDER BY on the kind
    # would sort the whole backlog for every batch.
    for kind in ("order", "refund"):
        stmt = (
            select(InboxEvent)
            .where(InboxEvent.handled_at.is_(None), InboxEvent.error == "", InboxEvent.kind == kind)
            .order_by(InboxEvent.handled_at, InboxEvent.id)
            .with_for_update(skip_locked=True)
        )
        if limit is not None:
            if len(events) >= limit:
                break
            stmt = stmt.limit(limit - len(events))
        events.extend(session.scalars(stmt).all())
    counts = {"processed": 0, "failed": 0}
    for error in service.process_batch(session, events).values():
        counts["failed" if error else "processed"] += 1
    return counts


class Drainer:
    """The background thread: woken after each inbox commit, and every ``poll_interval`` seconds."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 50,
        poll_interval: float = 1.0,
        busy: Callable[[], bool] = lambda: False,
        busy_batch: int = 5,
        busy_share: float = 0.1,
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.busy = busy
        self.busy_batch = busy_batch
        self.busy_share = busy_share
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.processed = 0
        self.failed = 0

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="inbox-drainer", daemon=True)
            self._thread.start()

    def wake(self, _count: int = 0) -> None:
        self._wake.set()

    def stop(self, timeout: float = 60) -> None:
        """Graceful: the batch in progress is finished and committed, no new one is started."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def run_batch(self, limit: int | None = None) -> int:
        """One batch in its own unit of work; how many events it tried."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                counts = drain_once(session, limit=limit or self.batch_size)
                session.commit()
            except BaseException:
                session.rollback()
                raise
        self.processed += counts["processed"]
        self.failed += counts["failed"]
        return counts["processed"] + counts["failed"]

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            while not self._stop.is_set():
                busy = self.busy()
                if busy and self.busy_share <= 0:
                    self._stop.wait(0.05)
                    continue
                started = time.monotonic()
                try:
                    tried = self.run_batch(self.busy_batch if busy else self.batch_size)
                except Exception:
                    log.exception("inbox drain failed; retrying")
                    self._stop.wait(min(5.0, self.poll_interval * 5))
                    break
                if tried == 0:
                    break
                if busy and self.busy_share < 1:
                    spent = time.monotonic() - started
                    self._stop.wait(spent * (1 - self.busy_share) / self.busy_share)

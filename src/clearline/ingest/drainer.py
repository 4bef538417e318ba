"""Processing after storing: a background thread applies new inbox events in batches, each in its own unit
of work, with `service.process_batch` (orders and refunds set-wise, each event's outcome exactly as
`service.process` gives it).

It takes events never tried (`handled_at` and `error` empty): one that fails keeps its error and waits for
`clearline events replay` (or a resend by its sender), so a broken event is not retried in a loop. Orders go
before refunds, as in `service.replay`. On PostgreSQL the rows are claimed with `FOR UPDATE SKIP LOCKED`, so
several server processes drain side by side without applying an event twice.

How much room the drainer takes while the intake is busy. In one process the drainer and the intake share
the interpreter lock (and on SQLite the single writer), so each drainer transaction holds up the intake's
answers for about as long as it runs. The drainer therefore adapts to its lag, the age of the oldest event it
has just claimed (how far processing is behind the intake):
- intake quiet: batches of ``batch_size`` back to back, as fast as processing goes;
- intake busy and the lag at most ``lag_target`` (2 s): small transactions (about ``busy_hold`` seconds of work,
  sized from the time an event took in the last batch, at least ``busy_batch`` events) taking at most
  ``busy_share`` (10 %) of the time: the intake keeps its latency;
- intake busy and the lag above ``lag_target``: a backlog is building, and at 10 % it could only grow. The
  pressure rises with the lag, linearly up to ``lag_limit`` (30 s): the share of time goes from ``busy_share`` to
  ``max_busy_share`` (90 %) and the transaction from ``busy_hold`` to ``max_hold`` seconds of work (up to
  ``batch_size`` events). The intake then answers more slowly (each transaction holds it up to ``max_hold``,
  250 ms) and, sharing the process, accepts less, while processing gets nine tenths of the time: the lag settles
  where both rates meet instead of growing without bound, and falls back as soon as the backlog shrinks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from clearline.ingest import service
from clearline.kit.clock import ensure_utc
from clearline.models import InboxEvent

log = logging.getLogger("clearline.ingest.drainer")


def drain_once(session: Session, *, limit: int | None = None, stats: dict[str, float] | None = None) -> dict[str, int]:
    """Process up to ``limit`` untried inbox events in ``session`` (the caller commits); the counts. With
    ``stats``, the received time of the oldest event claimed is put there (``oldest``, epoch seconds)."""
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
    if stats is not None and events:
        stats["oldest"] = min(event.received_at for event in events).timestamp()
    counts = {"processed": 0, "failed": 0}
    for error in service.process_batch(session, events).values():
        counts["failed" if error else "processed"] += 1
    return counts


class ArrivalWatch:
    """``busy`` for a drainer in a process of its own (`clearline worker`): the intake counts as busy while the
    newest inbox event arrived less than ``gap`` seconds ago. It asks the database at most every ``every`` seconds
    (one row by primary key), so a worker beside a busy intake keeps to small, rare batches until the lag says
    processing must catch up, as the drainer inside `serve` does."""

    def __init__(self, engine: Engine, *, gap: float = 0.25, every: float = 0.1) -> None:
        self.engine = engine
        self.gap = gap
        self.every = every
        self._asked = float("-inf")
        self._busy = False
        self._newest = select(InboxEvent.received_at).order_by(InboxEvent.id.desc()).limit(1)

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self._asked >= self.every:
            with self.engine.connect() as conn:
                newest = conn.scalar(self._newest)
            self._asked = now
            self._busy = newest is not None and time.time() - ensure_utc(newest).timestamp() < self.gap
        return self._busy


@dataclass(frozen=True)
class Step:
    """What the next batch may take: events in its transaction, and the share of time the drainer may use."""

    limit: int
    share: float


def pressure(lag: float, *, lag_target: float, lag_limit: float) -> float:
    """0 while processing is at most ``lag_target`` seconds behind, rising linearly to 1 at ``lag_limit``."""
    if lag <= lag_target:
        return 0.0
    if lag >= lag_limit or lag_limit <= lag_target:
        return 1.0
    return (lag - lag_target) / (lag_limit - lag_target)


class Drainer:
    """The background thread: woken after each inbox commit, and every ``poll_interval`` seconds."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        busy: Callable[[], bool] = lambda: False,
        busy_batch: int = 5,
        busy_share: float = 0.1,
        busy_hold: float = 0.02,
        max_busy_share: float = 0.9,
        max_hold: float = 0.25,
        lag_target: float = 2.0,
        lag_limit: float = 30.0,
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.busy = busy
        self.busy_batch = busy_batch
        self.busy_share = busy_share
        self.busy_hold = busy_hold
        self.max_busy_share = max(max_busy_share, busy_share)
        self.max_hold = max(max_hold, busy_hold)
        self.lag_target = lag_target
        self.lag_limit = lag_limit
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.processed = 0
        self.failed = 0
        self.lag = 0.0  # seconds between the oldest event of the last batch being received and its claim
        self.per_event = 0.002  # seconds of processing an event took in the last batch (a first guess)

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
        """One batch in its own unit of work; how many events it tried. Keeps the lag and the time an event took."""
        stats: dict[str, float] = {}
        started = time.monotonic()
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                counts = drain_once(session, limit=limit or self.batch_size, stats=stats)
                session.commit()
            except BaseException:
                session.rollback()
                raise
        tried = counts["processed"] + counts["failed"]
        self.processed += counts["processed"]
        self.failed += counts["failed"]
        if tried:
            self.lag = max(0.0, time.time() - stats["oldest"]) if "oldest" in stats else 0.0
            self.per_event = max((time.monotonic() - started) / tried, 1e-5)
        else:
            self.lag = 0.0
        return tried

    def step(self, busy: bool) -> Step:
        """The next batch's size and share of time (see the module docstring)."""
        if not busy:
            return Step(self.batch_size, 1.0)
        level = pressure(self.lag, lag_target=self.lag_target, lag_limit=self.lag_limit)
        share = self.busy_share + (self.max_busy_share - self.busy_share) * level
        hold = self.busy_hold + (self.max_hold - self.busy_hold) * level
        limit = min(self.batch_size, max(self.busy_batch, int(hold / self.per_event)))
        return Step(limit, share)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    # Inside the try: `busy` may ask the database (`ArrivalWatch`), and a failed query must
                    # not end the thread, which would leave the inbox undrained without a word.
                    step = self.step(self.busy())
                    if step.share <= 0:
                        self._stop.wait(0.05)
                        continue
                    tried = self.run_batch(step.limit)
                except Exception:
                    log.exception("inbox drain failed; retrying")
                    self._stop.wait(min(5.0, self.poll_interval * 5))
                    break
                if tried == 0:
                    break
                if step.share < 1:
                    spent = time.monotonic() - started
                    self._stop.wait(spent * (1 - step.share) / step.share)

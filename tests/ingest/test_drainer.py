"""The drainer's share of a busy server: small and rare while processing keeps up, growing with the lag until the
backlog stops growing, everything at once while the intake is quiet."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy.orm import Session

from clearline.ingest import drainer, service
from clearline.models import InboxEvent
from tests.ingest.conftest import Shop, order_body


def _drainer(**options: float) -> drainer.Drainer:
    return drainer.Drainer(None, batch_size=200, **options)  # type: ignore[arg-type]  # step() needs no engine


class TestPressure:
    def test_none_while_processing_keeps_up(self):
        assert drainer.pressure(1.5, lag_target=2, lag_limit=30) == 0

    def test_it_rises_with_the_lag_to_the_limit(self):
        assert drainer.pressure(16, lag_target=2, lag_limit=30) == pytest.approx(0.5)
        assert drainer.pressure(30, lag_target=2, lag_limit=30) == 1
        assert drainer.pressure(600, lag_target=2, lag_limit=30) == 1


class TestStep:
    def test_a_quiet_intake_gets_full_batches_back_to_back(self):
        worker = _drainer()
        worker.lag = 0

        assert worker.step(busy=False) == drainer.Step(200, 1.0)

    def test_a_busy_intake_that_processing_keeps_up_with_gets_small_rare_batches(self):
        worker = _drainer()
        worker.lag, worker.per_event = 0.5, 0.001

        step = worker.step(busy=True)

        assert step == drainer.Step(20, pytest.approx(0.1))  # 20 ms of work, 10 % of the time

    def test_a_slow_event_still_makes_the_smallest_batch(self):
        worker = _drainer()
        worker.lag, worker.per_event = 0.5, 0.1

        assert worker.step(busy=True).limit == 5

    def test_a_growing_backlog_gets_more_time_and_bigger_batches(self):
        worker = _drainer()
        worker.per_event = 0.001
        steps = []
        for lag in (1, 9, 16, 30, 120):
            worker.lag = lag
            steps.append(worker.step(busy=True))

        shares = [s.share for s in steps]
        limits = [s.limit for s in steps]
        assert shares == sorted(shares) and shares[0] == pytest.approx(0.1) and shares[-1] == pytest.approx(0.9)
        assert limits == sorted(limits) and limits[0] == 20 and limits[-1] == 200  # 250 ms of work, capped
        assert steps[2].share == pytest.approx(0.5)

    def test_at_full_pressure_processing_outruns_an_intake_that_outran_it_at_ten_percent(self):
        # One process: an event takes the intake 0.2 ms and processing 1 ms. At 10 % processing does 100/s while
        # the intake can take 4,500/s; at 90 % processing does 900/s and the intake only 500/s.
        worker = _drainer()
        intake_s, process_s = 0.0002, 0.001
        worker.lag = 0.5
        low = worker.step(busy=True).share
        worker.lag = 60
        high = worker.step(busy=True).share

        assert low / process_s < (1 - low) / intake_s
        assert high / process_s > (1 - high) / intake_s


class TestRunBatch:
    def test_it_measures_the_lag_of_what_it_claimed_and_the_time_an_event_took(self, db: Session, shop: Shop):
        event, _ = service.store(
            db, brand_id=shop.brand_id, source="postback", kind="order", external_id="L-1", body=order_body("L-1")
        )
        event.received_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=40)
        db.flush()
        stats: dict[str, float] = {}

        counts = drainer.drain_once(db, limit=10, stats=stats)

        assert counts == {"processed": 1, "failed": 0}
        assert dt.datetime.now(dt.UTC).timestamp() - stats["oldest"] == pytest.approx(40, abs=5)
        assert db.get(InboxEvent, event.id).handled_at is not None  # type: ignore[union-attr]

    def test_nothing_waiting_leaves_no_lag(self, db: Session, shop: Shop):
        stats: dict[str, float] = {}

        assert drainer.drain_once(db, limit=10, stats=stats) == {"processed": 0, "failed": 0}
        assert stats == {}


class TestThread:
    def test_a_busy_check_that_fails_is_retried_and_the_thread_lives_on(self):
        # `ArrivalWatch` asks the database; a query that fails (a restart, a dropped connection) must not end the
        # thread: it would leave the inbox undrained with the worker still running.
        answers = iter([RuntimeError("connection lost"), RuntimeError("connection lost")])
        drained = threading.Event()

        def busy() -> bool:
            failure = next(answers, None)
            if failure is not None:
                raise failure
            return False

        class Counting(drainer.Drainer):
            def run_batch(self, limit: int | None = None) -> int:
                drained.set()
                return 0

        worker = Counting(None, busy=busy, poll_interval=0.01)  # type: ignore[arg-type]  # run_batch needs none
        worker.start()
        try:
            assert drained.wait(5), "the drainer thread died on a failed busy check"
            assert worker._thread is not None and worker._thread.is_alive()
        finally:
            worker.stop(timeout=5)

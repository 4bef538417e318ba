"""`clearline worker` drains the inbox in a process of its own (serve with CLEARLINE_DRAIN_IN_SERVE=false): an
order stored by the intake is processed there, and a SIGTERM stops it gracefully."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.app import create_app
from clearline.config import get_settings
from clearline.ingest import drainer
from clearline.ingest import service as ingest
from clearline.kit.db import engine_for
from clearline.models import CommissionLine, InboxEvent, Order
from tests.cli import test_orders_cli
from tests.cli.test_orders_cli import Program

CLEARLINE = Path(sys.executable).with_name("clearline")
database, program = test_orders_cli.database, test_orders_cli.program  # the fixtures: a committed program


def _store_order(program: Program, order_id: str) -> int:
    body = {
        "order_id": order_id,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "currency": "USD",
        "customer": {"id": "c-9", "new_customer": True},
        "coupon_codes": [program.coupon_code],
        "lines": [{"sku": "SKU-A1", "quantity": 2, "unit_price": "49.00", "discount": "4.00"}],
    }
    with Session(engine_for(program.url), expire_on_commit=False) as session:
        event, duplicate = ingest.store(
            session,
            brand_id=program.brand_id,
            source="postback",
            kind="order",
            external_id=order_id,
            body=json.dumps(body),
        )
        session.commit()
    assert not duplicate and event.handled_at is None
    return event.id


def _wait_for(check, timeout: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


class TestWorkerDrains:
    def test_a_stored_order_is_processed_by_the_worker_which_stops_on_sigterm(self, program: Program) -> None:
        event_id = _store_order(program, "W-1")
        env = {**os.environ, "CLEARLINE_DATABASE_URL": program.url, "CLEARLINE_DRAIN_IN_SERVE": "false"}
        worker = subprocess.Popen(
            [str(CLEARLINE), "worker", "--no-jobs", "--poll", "0.05"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:

            def processed() -> bool:
                with Session(engine_for(program.url)) as session:
                    return session.get(InboxEvent, event_id).handled_at is not None  # type: ignore[union-attr]

            assert _wait_for(processed), "the worker did not process the stored order"
        finally:
            worker.send_signal(signal.SIGTERM)
            output, _ = worker.communicate(timeout=60)

        assert worker.returncode == 0, output
        assert "drainer stopped: 1 processed, 0 failed" in output
        with Session(engine_for(program.url)) as session:
            order = session.scalars(
                select(Order).where(Order.brand_id == program.brand_id, Order.external_id == "W-1")
            ).one()
            earned = session.scalars(select(CommissionLine.amount).where(CommissionLine.order_id == order.id)).all()
        assert earned and all(amount > 0 for amount in earned)  # attributed by its coupon and commissioned

    @pytest.mark.parametrize(
        "args, drain_in_serve",
        [(["--no-jobs", "--no-drain"], "false"), (["--no-jobs"], "true")],  # serve drains: the worker does not
    )
    def test_nothing_to_run_is_refused(self, program: Program, args: list[str], drain_in_serve: str) -> None:
        env = {**os.environ, "CLEARLINE_DATABASE_URL": program.url, "CLEARLINE_DRAIN_IN_SERVE": drain_in_serve}
        done = subprocess.run([str(CLEARLINE), "worker", *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0
        assert "nothing to run" in done.stdout + done.stderr

    def test_a_second_drainer_beside_serve_is_refused_on_sqlite(self, program: Program) -> None:
        if not program.url.startswith("sqlite"):
            pytest.skip("PostgreSQL: drainers claim with SKIP LOCKED, a second one is allowed")
        env = {**os.environ, "CLEARLINE_DATABASE_URL": program.url, "CLEARLINE_DRAIN_IN_SERVE": "true"}
        done = subprocess.run(
            [str(CLEARLINE), "worker", "--no-jobs", "--drain"], env=env, capture_output=True, text=True, timeout=60
        )
        said = " ".join((done.stdout + done.stderr).split())
        assert done.returncode != 0 and "needs CLEARLINE_DRAIN_IN_SERVE=false" in said


class TestArrivalWatch:
    """Beside a busy intake the worker keeps to small, rare batches: it sees the intake busy from the inbox."""

    def test_an_event_that_just_arrived_makes_the_intake_busy_and_an_older_one_not(self, program: Program) -> None:
        engine = engine_for(program.url)
        assert drainer.ArrivalWatch(engine)() is False  # an empty inbox

        event_id = _store_order(program, "W-2")
        assert drainer.ArrivalWatch(engine, gap=5.0)() is True

        with Session(engine) as session:
            event = session.get(InboxEvent, event_id)
            assert event is not None
            event.received_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=10)
            session.commit()
        assert drainer.ArrivalWatch(engine, gap=5.0)() is False

    def test_it_asks_the_database_at_most_every_interval(self, program: Program) -> None:
        watch = drainer.ArrivalWatch(engine_for(program.url), gap=5.0, every=60.0)
        assert watch() is False
        _store_order(program, "W-3")
        assert watch() is False  # the answer of a moment ago, not a query per step
        watch.every = 0.0
        assert watch() is True


class TestServeWithoutDrain:
    @pytest.mark.parametrize("setting, drains", [("true", True), ("false", False)])
    def test_the_setting_decides_whether_serve_drains(self, monkeypatch, setting: str, drains: bool) -> None:
        monkeypatch.setenv("CLEARLINE_DRAIN_IN_SERVE", setting)
        get_settings.cache_clear()
        try:
            assert create_app(jobs=False).state.postbacks.drain is drains
        finally:
            monkeypatch.delenv("CLEARLINE_DRAIN_IN_SERVE")
            get_settings.cache_clear()

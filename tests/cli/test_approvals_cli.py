"""`clearline approvals check` against a committed database: exit 2 when a step is newly overdue, 0 otherwise."""

from __future__ import annotations

import datetime as dt

from click.testing import Result
from sqlalchemy import func, select
from typer.testing import CliRunner

from clearline.brief import approval
from clearline.cli.main import app as cli
from clearline.models import ApprovalStep, AuditEvent, Notification
from tests import factories
from tests.committed import session_on

runner = CliRunner()
LONG_AGO = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def check() -> Result:
    return runner.invoke(cli, ["approvals", "check"])


def open_step(url: str, *, opened_at: dt.datetime) -> int:
    with session_on(url) as session:
        brand = factories.brand(session)
        step = approval.open_step(
            session,
            brand_id=brand.id,
            subject_type="brief",
            subject_id=1,
            kind="content_check",
            role="legal",
            now=opened_at,
        )
        session.commit()
        return step.id


class TestApprovalsCheck:
    def test_a_newly_overdue_step_exits_2_and_is_named(self, committed):
        step_id = open_step(committed, opened_at=LONG_AGO)
        result = check()
        assert result.exit_code == 2, result.output
        assert f"step {step_id}: content_check of brief 1 (legal)" in result.output
        assert "1 newly overdue step(s) escalated" in result.output

    def test_the_breach_and_escalation_are_committed(self, committed):
        step_id = open_step(committed, opened_at=LONG_AGO)
        check()
        with session_on(committed) as session:
            step = session.get(ApprovalStep, step_id)
            assert step.breached_at is not None and step.escalated_at is not None
            kinds = sorted(session.scalars(select(Notification.kind)))
            assert kinds == ["approval.escalated", "approval.overdue"]
            actors = list(
                session.scalars(select(AuditEvent.actor_label).where(AuditEvent.action == "approval.escalated"))
            )
            assert actors == ["cli:approvals check"]

    def test_a_second_run_finds_nothing_new_and_exits_0(self, committed):
        open_step(committed, opened_at=LONG_AGO)
        assert check().exit_code == 2
        again = check()
        assert again.exit_code == 0, again.output
        assert "0 newly overdue step(s) escalated" in again.output
        with session_on(committed) as session:
            assert session.scalar(select(func.count()).select_from(Notification)) == 2

    def test_nothing_due_yet_exits_0(self, committed):
        open_step(committed, opened_at=dt.datetime.now(dt.UTC))
        result = check()
        assert result.exit_code == 0, result.output
        with session_on(committed) as session:
            assert session.scalar(select(func.count()).select_from(Notification)) == 0

    def test_an_empty_database_exits_0(self, committed):
        assert check().exit_code == 0

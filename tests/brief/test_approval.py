"""Approval steps: who decides, what a decision records, the queue, and SLA breaches with their escalation."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from clearline.brief import approval, service
from clearline.kit.errors import ConflictError, ForbiddenError, NotFoundError, ValidationFailedError
from clearline.models import AuditEvent, Notification
from tests import factories
from tests.brief.conftest import brief_in, open_steps, pin_clock, pin_settings

UTC = dt.UTC
MONDAY_10AM = dt.datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # 10:00 in Berlin


def submitted(db, program):  # type: ignore[no-untyped-def]
    brand, campaign, _, actors = program
    brief = service.create_brief(db, actors["marketing"], brand_id=brand.id, data=brief_in(campaign.id))
    service.submit_brief(db, actors["marketing"], brief_id=brief.id)
    [step] = open_steps(db, brief)
    return brief, step


def events(db, action: str, step) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    return list(
        db.scalars(
            select(AuditEvent).where(
                AuditEvent.action == action,
                AuditEvent.entity_type == "approval_steps",
                AuditEvent.entity_id == str(step.id),
            )
        )
    )


class TestOpenStep:
    def test_the_due_time_counts_business_hours_only(self, db, program):
        brand, _, _, _ = program
        step = approval.open_step(
            db,
            brand_id=brand.id,
            subject_type="brief",
            subject_id=1,
            kind="content_check",
            role="legal",
            now=dt.datetime(2026, 12, 5, 12, 0, tzinfo=UTC),  # a Saturday
        )
        assert step.due_at == dt.datetime(2026, 12, 9, 16, 0, tzinfo=UTC)  # Monday–Wednesday, 17:00 Berlin

    def test_claims_rework_takes_72_business_hours(self, db, program):
        brand, _, _, _ = program
        step = approval.open_step(
            db,
            brand_id=brand.id,
            subject_type="creative",
            subject_id=1,
            kind="claims_rework",
            role="legal",
            now=MONDAY_10AM,
        )
        assert step.due_at == dt.datetime(2026, 12, 18, 9, 0, tzinfo=UTC)  # nine working days later, Friday

    def test_another_time_zone_moves_the_working_day(self, db, program, monkeypatch):
        brand, _, _, _ = program
        pin_settings(monkeypatch, timezone="America/New_York")
        step = approval.open_step(
            db,
            brand_id=brand.id,
            subject_type="brief",
            subject_id=1,
            kind="content_check",
            role="legal",
            now=MONDAY_10AM,  # 04:00 in New York: the clock starts at 09:00 there
        )
        assert step.due_at == dt.datetime(2026, 12, 9, 22, 0, tzinfo=UTC)  # Wednesday 17:00 New York


class TestQueue:
    def test_a_reviewer_sees_only_its_roles_steps_due_first(self, db, program):
        brand, _, _, actors = program
        late = approval.open_step(
            db,
            brand_id=brand.id,
            subject_type="brief",
            subject_id=1,
            kind="legal_clearance",
            role="legal",
            now=MONDAY_10AM,
        )
        early = approval.open_step(
            db,
            brand_id=brand.id,
            subject_type="brief",
            subject_id=2,
            kind="content_check",
            role="legal",
            now=MONDAY_10AM,
        )
        approval.open_step(
            db, brand_id=brand.id, subject_type="creative", subject_id=3, kind="content_check", role="marketing"
        )
        assert approval.queue(db, actors["legal"]) == [early, late]
        assert [s.role for s in approval.queue(db, actors["marketing"])] == ["marketing"]
        assert approval.queue(db, actors["social_ops"]) == []

    def test_another_brands_steps_are_not_in_the_queue(self, db, program):
        brand, _, _, _ = program
        approval.open_step(
            db, brand_id=brand.id, subject_type="brief", subject_id=1, kind="content_check", role="legal"
        )
        outsider = factories.actor(db, ("legal", factories.brand(db).id))
        assert approval.queue(db, outsider) == []

    def test_decided_steps_leave_the_queue_unless_asked_for(self, db, program):
        _, _, _, actors = program
        _, step = submitted(db, program)
        approval.decide(db, actors["legal"], step_id=step.id, decision="approved")
        assert approval.queue(db, actors["legal"]) == []
        assert approval.queue(db, actors["legal"], include_decided=True) == [step]


class TestDecide:
    def test_the_decision_records_approver_time_and_comment(self, db, program, monkeypatch):
        _, _, _, actors = program
        brief, step = submitted(db, program)
        pin_clock(monkeypatch, MONDAY_10AM)
        approval.decide(db, actors["legal"], step_id=step.id, decision="approved", comment="claims substantiated")
        assert (step.decision, step.decided_at, step.approver_id, step.comment) == (
            "approved",
            MONDAY_10AM,
            actors["legal"].user_id,
            "claims substantiated",
        )
        assert brief.status == "approved"

    def test_the_decision_is_audited_with_whether_it_met_its_sla(self, db, program, monkeypatch):
        _, _, _, actors = program
        _, step = submitted(db, program)
        pin_clock(monkeypatch, step.due_at + dt.timedelta(hours=1))
        approval.decide(db, actors["legal"], step_id=step.id, decision="changes_requested", comment="unclear")
        [event] = events(db, "approval.changes_requested", step)
        assert event.after["within_sla"] is False and event.reason == "unclear"
        assert event.actor_id == actors["legal"].user_id

    @pytest.mark.parametrize("role", ["marketing", "social_ops", "finance", "brand_ops"])
    def test_only_the_steps_role_decides(self, db, program, role):
        brand, _, _, _ = program
        brief, step = submitted(db, program)
        with pytest.raises(ForbiddenError):
            approval.decide(db, factories.actor(db, (role, brand.id)), step_id=step.id, decision="approved")
        assert step.decided_at is None and brief.status == "in_review"

    def test_an_admin_may_decide(self, db, program):
        brand, _, _, _ = program
        _, step = submitted(db, program)
        approval.decide(db, factories.actor(db, ("admin", brand.id)), step_id=step.id, decision="approved")
        assert step.decision == "approved"

    def test_another_brands_reviewer_does_not_find_the_step(self, db, program):
        _, step = submitted(db, program)
        outsider = factories.actor(db, ("legal", factories.brand(db).id))
        with pytest.raises(NotFoundError):
            approval.decide(db, outsider, step_id=step.id, decision="approved")

    def test_a_decided_step_cannot_be_decided_again(self, db, program):
        _, _, _, actors = program
        brief, step = submitted(db, program)
        approval.decide(db, actors["legal"], step_id=step.id, decision="changes_requested", comment="first")
        with pytest.raises(ConflictError):
            approval.decide(db, actors["legal"], step_id=step.id, decision="approved", comment="second")
        assert (step.decision, step.comment, brief.status, brief.legal_rounds) == (
            "changes_requested",
            "first",
            "changes_requested",
            1,
        )

    def test_an_unknown_decision_is_refused(self, db, program):
        _, _, _, actors = program
        brief, step = submitted(db, program)
        with pytest.raises(ValidationFailedError):
            approval.decide(db, actors["legal"], step_id=step.id, decision="approve")
        assert step.decided_at is None and brief.status == "in_review" and brief.legal_rounds == 0


class TestCheckBreaches:
    def test_nothing_is_overdue_before_its_due_time(self, db, program):
        _, step = submitted(db, program)
        assert approval.check_breaches(db, factories.SYSTEM, now=step.due_at - dt.timedelta(seconds=1)) == []
        assert step.breached_at is None and step.escalated_at is None

    def test_an_overdue_step_is_marked_breached_and_escalated(self, db, program):
        _, step = submitted(db, program)
        now = step.due_at + dt.timedelta(minutes=5)
        assert approval.check_breaches(db, factories.SYSTEM, now=now) == [step]
        assert step.breached_at == now and step.escalated_at == now

    def test_it_escalates_exactly_once(self, db, program):
        brand, _, _, _ = program
        _, step = submitted(db, program)
        first = step.due_at + dt.timedelta(minutes=5)
        approval.check_breaches(db, factories.SYSTEM, now=first)
        assert approval.check_breaches(db, factories.SYSTEM, now=first + dt.timedelta(days=3)) == []
        assert step.escalated_at == first
        kinds = db.scalars(select(Notification.kind).where(Notification.brand_id == brand.id))
        assert sorted(kinds) == ["approval.escalated", "approval.overdue"]
        assert len(events(db, "approval.escalated", step)) == 1

    def test_the_role_is_told_and_the_admins_get_the_escalation(self, db, program):
        brand, _, _, _ = program
        brief, step = submitted(db, program)
        approval.check_breaches(db, factories.SYSTEM, now=step.due_at + dt.timedelta(minutes=5))
        notes = {n.kind: n for n in db.scalars(select(Notification).where(Notification.brand_id == brand.id))}
        overdue, escalated = notes["approval.overdue"], notes["approval.escalated"]
        assert (overdue.role, overdue.level, overdue.subject_type, overdue.subject_id) == (
            "legal",
            1,
            "brief",
            brief.id,
        )
        assert (escalated.role, escalated.level, escalated.subject_id) == ("admin", 2, brief.id)
        assert "overdue" in overdue.message and "legal" in escalated.message

    def test_the_escalation_is_audited(self, db, program):
        _, step = submitted(db, program)
        approval.check_breaches(db, factories.SYSTEM, now=step.due_at + dt.timedelta(minutes=5))
        [event] = events(db, "approval.escalated", step)
        assert event.actor_label == "tests"
        assert event.after["due_at"] is not None

    def test_a_decided_step_never_breaches(self, db, program):
        _, _, _, actors = program
        _, step = submitted(db, program)
        approval.decide(db, actors["legal"], step_id=step.id, decision="approved")
        assert approval.check_breaches(db, factories.SYSTEM, now=step.due_at + dt.timedelta(days=30)) == []

    def test_every_brands_overdue_steps_are_found(self, db, program):
        brand, _, _, _ = program
        other = factories.brand(db)
        opened = dt.datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        steps = [
            approval.open_step(
                db, brand_id=b, subject_type="brief", subject_id=1, kind="content_check", role="legal", now=opened
            )
            for b in (brand.id, other.id)
        ]
        found = approval.check_breaches(db, factories.SYSTEM, now=opened + dt.timedelta(days=10))
        assert set(found) >= set(steps)


class TestBreaches:
    def test_late_decisions_and_open_overdue_steps_are_listed(self, db, program, monkeypatch):
        brand, _, _, actors = program
        long_ago = dt.datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        overdue = approval.open_step(
            db,
            brand_id=brand.id,
            subject_type="creative",
            subject_id=999_999,
            kind="content_check",
            role="legal",
            now=long_ago,
        )
        _, on_time = submitted(db, program)
        approval.decide(db, actors["legal"], step_id=on_time.id, decision="approved")
        assert approval.breaches(db, actors["legal"], brand_id=brand.id) == [overdue]

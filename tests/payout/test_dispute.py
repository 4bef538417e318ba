"""Disputes: the payee disputes a line, the line pauses, finance upholds (an adjustment in the next run)
or rejects (the line is paid in the next run) — and every step is audited."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from clearline.kit.errors import ConflictError, ForbiddenError, NotFoundError, ValidationFailedError
from clearline.ledger import service as ledger
from clearline.models import AuditEvent, Dispute, LedgerEntry
from clearline.payout import dispute as dispute_service
from tests import factories
from tests.payout.program import Program


def disputed_line(program: Program, handle: str = "anna", units: int = 1) -> int:
    """``handle`` sells twice (units × 8.00, then a 4.00 cleanser); returns the first commission line."""
    if handle not in program.payees:
        program.creator(handle)
    sold = program.order(handle, day=5, lines=[("SKU-A1", units, "49.00")])
    program.order(handle, day=6, lines=[("SKU-B1", 1, "24.00")])
    return program.commission_lines(sold)[0].id


def audit_actions(program: Program, dispute_id: int) -> list[str]:
    return list(
        program.db.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.entity_type == "disputes", AuditEvent.entity_id == str(dispute_id))
            .order_by(AuditEvent.id)
        )
    )


class TestOpenDispute:
    def test_the_creator_disputes_a_line_and_the_line_pauses(self, program: Program):
        line_id = disputed_line(program)
        opened = dispute_service.open_dispute(
            program.db, program.actor("anna"), commission_line_id=line_id, reason="the order had two units, not one"
        )
        assert (opened.status, opened.commission_line_id) == ("open", line_id)
        run = program.run()
        assert program.line_of(run, "anna").commission_amount == 400  # only the undisputed line
        assert line_id not in {i.commission_line_id for i in program.items(run)}
        assert audit_actions(program, opened.id) == ["dispute.opened"]

    def test_the_agency_disputes_a_line_it_is_paid_for(self, program: Program):
        _, agency_user = program.agency("Glow Agency", ["cara"])
        line_id = disputed_line(program, "cara")
        from clearline.auth import service as auth_service

        agency = auth_service.actor_for(program.db, agency_user)
        opened = dispute_service.open_dispute(
            program.db, agency, commission_line_id=line_id, reason="cara's code was used twice"
        )
        assert opened.opened_by_id == agency_user.id
        run = program.run()
        assert program.line_of(run, "cara").commission_amount == 400

    def test_someone_who_is_not_the_payee_cannot_dispute(self, program: Program):
        line_id = disputed_line(program)
        program.creator("ben")
        with pytest.raises(NotFoundError):  # another creator does not even see the line
            dispute_service.open_dispute(
                program.db, program.actor("ben"), commission_line_id=line_id, reason="mine, surely"
            )
        for staff in (program.finance, factories.actor(program.db, ("marketing", program.brand.id))):
            with pytest.raises(ForbiddenError, match="only the creator or agency"):
                dispute_service.open_dispute(program.db, staff, commission_line_id=line_id, reason="on behalf")
        assert program.db.scalar(select(Dispute.id)) is None

    def test_a_reason_is_required_and_one_open_dispute_per_line(self, program: Program):
        line_id = disputed_line(program)
        with pytest.raises(ValidationFailedError, match="reason"):
            dispute_service.open_dispute(program.db, program.actor("anna"), commission_line_id=line_id, reason=" ")
        dispute_service.open_dispute(program.db, program.actor("anna"), commission_line_id=line_id, reason="wrong tier")
        with pytest.raises(ConflictError, match="already has an open dispute"):
            dispute_service.open_dispute(
                program.db, program.actor("anna"), commission_line_id=line_id, reason="wrong tier, again"
            )


class TestResolve:
    def _open(self, program: Program, line_id: int) -> Dispute:
        return dispute_service.open_dispute(
            program.db,
            program.actor("anna"),
            commission_line_id=line_id,
            reason="the rate should include the launch bonus",
        )

    def test_upheld_with_a_positive_adjustment_is_paid_in_the_next_run(self, program: Program):
        line_id = disputed_line(program)
        opened = self._open(program, line_id)
        first = program.run_and_approve()
        assert program.line_of(first, "anna").adjustment_amount == 0

        dispute_service.resolve(
            program.db,
            program.finance,
            dispute_id=opened.id,
            decision="upheld",
            reason="bonus agreed",
            adjustment=Decimal("2.50"),
        )
        assert (opened.status, opened.adjustment_amount, opened.resolution) == ("upheld", 250, "bonus agreed")
        second = program.run_and_approve()
        line = program.line_of(second, "anna")
        assert (line.commission_amount, line.adjustment_amount, line.total_amount) == (800, 250, 1050)
        assert program.available("anna") == 0
        assert ledger.imbalances(program.db) == []
        assert audit_actions(program, opened.id) == ["dispute.opened", "dispute.upheld"]

    def test_upheld_with_a_negative_adjustment_takes_money_back_in_the_next_run(self, program: Program):
        line_id = disputed_line(program, units=2)
        opened = self._open(program, line_id)
        program.run_and_approve()
        dispute_service.resolve(
            program.db,
            program.finance,
            dispute_id=opened.id,
            decision="upheld",
            reason="one unit was a gift",
            adjustment=Decimal("-8.00"),
        )
        second = program.run_and_approve()
        line = program.line_of(second, "anna")
        assert (line.commission_amount, line.adjustment_amount, line.total_amount) == (1600, -800, 800)
        entry = program.db.scalar(select(LedgerEntry).where(LedgerEntry.kind == "adjustment.posted"))
        assert entry is not None and entry.commission_line_id == line_id
        assert program.available("anna") == 0

    def test_an_adjustment_on_a_line_already_paid_comes_in_the_next_run(self, program: Program):
        line_id = disputed_line(program)
        program.run_and_approve()
        opened = self._open(program, line_id)
        dispute_service.resolve(
            program.db,
            program.finance,
            dispute_id=opened.id,
            decision="upheld",
            reason="launch bonus",
            adjustment=Decimal("1.25"),
        )
        second = program.run_and_approve()
        line = program.line_of(second, "anna")
        assert (line.commission_amount, line.adjustment_amount, line.total_amount) == (0, 125, 125)

    def test_rejected_with_a_reason_the_line_is_paid_in_the_next_run(self, program: Program):
        line_id = disputed_line(program)
        opened = self._open(program, line_id)
        program.run_and_approve()
        dispute_service.resolve(
            program.db,
            program.finance,
            dispute_id=opened.id,
            decision="rejected",
            reason="the contract has no launch bonus",
        )
        assert (opened.status, opened.adjustment_amount) == ("rejected", 0)
        second = program.run_and_approve()
        line = program.line_of(second, "anna")
        assert (line.commission_amount, line.adjustment_amount) == (800, 0)
        assert [i.commission_line_id for i in program.items(second)] == [line_id]
        event = program.db.scalar(select(AuditEvent).where(AuditEvent.action == "dispute.rejected"))
        assert event is not None and event.reason == "the contract has no launch bonus"
        assert event.actor_id == program.finance.user_id

    def test_an_adjustment_cannot_take_back_more_than_the_line_earned(self, program: Program):
        opened = self._open(program, disputed_line(program))
        with pytest.raises(ValidationFailedError, match="more than the line earned"):
            dispute_service.resolve(
                program.db,
                program.finance,
                dispute_id=opened.id,
                decision="upheld",
                reason="claw it all",
                adjustment=Decimal("-8.01"),
            )
        assert opened.status == "open"

    def test_a_reason_is_required_to_resolve(self, program: Program):
        opened = self._open(program, disputed_line(program))
        with pytest.raises(ValidationFailedError, match="reason"):
            dispute_service.resolve(program.db, program.finance, dispute_id=opened.id, decision="rejected", reason="")

    def test_only_finance_on_the_brand_resolves(self, program: Program):
        opened = self._open(program, disputed_line(program))
        outsider = factories.actor(program.db, ("finance", factories.brand(program.db).id))
        marketing = factories.actor(program.db, ("marketing", program.brand.id))
        for actor in (program.actor("anna"), marketing, outsider):
            with pytest.raises(NotFoundError):
                dispute_service.resolve(
                    program.db,
                    actor,
                    dispute_id=opened.id,
                    decision="upheld",
                    reason="self-service",
                    adjustment=Decimal("100"),
                )
        assert opened.status == "open"

    def test_a_resolved_dispute_cannot_be_resolved_again(self, program: Program):
        opened = self._open(program, disputed_line(program))
        dispute_service.resolve(program.db, program.finance, dispute_id=opened.id, decision="rejected", reason="no")
        with pytest.raises(ConflictError, match="already rejected"):
            dispute_service.resolve(
                program.db,
                program.finance2,
                dispute_id=opened.id,
                decision="upheld",
                reason="yes",
                adjustment=Decimal("1"),
            )


class TestListDisputes:
    def test_each_sees_only_the_disputes_it_may(self, program: Program):
        line_id = disputed_line(program)
        program.creator("ben")
        mine = dispute_service.open_dispute(
            program.db, program.actor("anna"), commission_line_id=line_id, reason="wrong tier"
        )
        assert [d.id for d in dispute_service.list_disputes(program.db, program.actor("anna"))] == [mine.id]
        assert [d.id for d in dispute_service.list_disputes(program.db, program.finance, status="open")] == [mine.id]
        assert dispute_service.list_disputes(program.db, program.actor("ben")) == []
        assert dispute_service.list_disputes(program.db, program.finance, status="upheld") == []

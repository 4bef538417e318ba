"""Payout runs (C8): what a run pays, the minimum and carry-forward, retainers, clawbacks, agencies,
currencies, idempotency and four eyes — all on money that came in through the real intake path."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from clearline.commission import period as period_service
from clearline.kit.errors import ConflictError, ForbiddenError, NotFoundError, ValidationFailedError
from clearline.ledger import service as ledger
from clearline.models import AuditEvent, CommissionLine, PayoutItem, PayoutLine, PayoutRun
from clearline.payout import service as payout_service
from tests import factories
from tests.payout.program import Program, cpa


def _hold(program: Program, line_id: int, reason: str) -> None:
    program.db.execute(update(CommissionLine).where(CommissionLine.id == line_id).values(hold_reason=reason))


class TestCreateRun:
    def test_pays_only_what_cleared_its_window_by_the_as_of_date(self, program: Program):
        program.creator("anna")
        early = program.order("anna", day=5, lines=[("SKU-A1", 2, "49.00")])  # clears day 15
        late = program.order("anna", day=30, lines=[("SKU-B1", 1, "24.00")])  # clears day 40

        first = program.run_and_approve(day=20)
        line = program.line_of(first, "anna")
        assert (line.commission_amount, line.total_amount, line.commission_line_count) == (1600, 1600, 1)
        assert {i.commission_line_id for i in program.items(first)} == {program.commission_lines(early)[0].id}

        second = program.run_and_approve(day=45)
        assert program.line_of(second, "anna").commission_amount == 400
        assert {i.commission_line_id for i in program.items(second)} == {program.commission_lines(late)[0].id}

    def test_a_line_still_inside_its_window_is_not_paid(self, program: Program):
        program.creator("anna")
        program.order("anna", day=15)  # clears day 25
        with pytest.raises(ConflictError, match="nothing to pay"):
            program.run(day=24)

    def test_a_line_on_hold_is_paid_only_after_the_hold_is_lifted(self, program: Program):
        program.creator("anna")
        held = program.order("anna", day=5, lines=[("SKU-A1", 1, "49.00")])
        program.order("anna", day=6, lines=[("SKU-B1", 1, "24.00")])
        held_line = program.commission_lines(held)[0]
        _hold(program, held_line.id, "fraud review: coupon leakage")

        first = program.run_and_approve(day=30)
        assert program.line_of(first, "anna").commission_amount == 400
        assert held_line.id not in {i.commission_line_id for i in program.items(first)}

        _hold(program, held_line.id, "")
        second = program.run_and_approve(day=40)
        assert program.line_of(second, "anna").commission_amount == 800
        assert [i.commission_line_id for i in program.items(second)] == [held_line.id]

    def test_a_payee_below_the_minimum_is_carried_forward_and_paid_once_above_it(self, program: Program):
        program.creator("anna")
        program.creator("ben")
        program.order("anna", day=5, lines=[("SKU-A1", 2, "49.00")])  # 16.00
        program.order("ben", day=5, lines=[("SKU-A1", 7, "49.00")])  # 56.00

        first = program.run_and_approve(day=20, minimum="50.00")
        assert list(program.payout_lines(first)) == [program.payees["ben"].key]
        anna = program.payees["anna"]
        assert first.carried_forward == [
            {"payee_type": "creator", "payee_id": anna.payee_id, "currency": "USD", "amount": "16.00"}
        ]
        assert program.available("anna") == 1600

        program.order("anna", day=25, lines=[("SKU-A1", 5, "49.00")])  # 40.00 more: 56.00 in all
        second = program.run_and_approve(day=40, minimum="50.00")
        line = program.line_of(second, "anna")
        assert (line.commission_amount, line.commission_line_count, line.order_count) == (5600, 2, 2)
        assert second.carried_forward == []
        assert program.available("anna") == 0

    def test_everyone_below_the_minimum_means_nothing_to_pay(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        with pytest.raises(ConflictError, match=r"below the minimum \(1 payee\(s\) carried forward\)"):
            program.run(minimum="50.00")
        assert program.db.scalar(select(PayoutRun.id).where(PayoutRun.brand_id == program.brand.id)) is None

    def test_the_minimum_is_counted_in_each_payees_own_currency(self, program: Program):
        program.fx("USD", "JPY", "150")
        program.creator("kenji", terms=cpa("JPY", a="800", b="400", c="100"))
        program.order("kenji", day=5)  # 800 JPY: above a 50 minimum, whatever the brand's currency
        run = program.run(minimum="50")
        assert program.line_of(run, "kenji").total_amount == 800
        assert run.carried_forward == []

    def test_retainers_are_paid_as_retainer_amount(self, program: Program):
        terms = cpa(model="hybrid", retainer={"amount": "100.00"})
        program.creator("anna", terms=terms)
        program.order("anna", day=5)
        period = program.at(0).strftime("%Y-%m")
        period_service.close_period(program.db, program.finance, brand_id=program.brand.id, period=period)

        run = program.run()
        line = program.line_of(run, "anna")
        assert (line.commission_amount, line.retainer_amount, line.total_amount) == (800, 10000, 10800)
        assert line.commission_line_count == 1  # the retainer is not a commission line of the detail file

    def test_a_chargeback_after_payout_nets_off_as_a_clawback_in_the_next_run(self, program: Program):
        program.creator("anna")
        sold = program.order("anna", day=5, lines=[("SKU-A1", 2, "49.00")])
        program.run_and_approve(day=20)
        program.refund(sold, day=30, lines=[("SKU-A1", "98.00")], kind="chargeback")
        program.order("anna", day=25, lines=[("SKU-A1", 3, "49.00")])

        second = program.run_and_approve(day=50)
        line = program.line_of(second, "anna")
        assert (line.commission_amount, line.clawback_amount, line.total_amount) == (2400, -1600, 800)
        assert program.available("anna") == 0

    def test_a_payee_whose_clawback_exceeds_new_earnings_is_carried_until_covered(self, program: Program):
        program.creator("anna")
        program.creator("ben")
        sold = program.order("anna", day=5, lines=[("SKU-A1", 2, "49.00")])
        program.run_and_approve(day=20)
        program.refund(sold, day=30, lines=[("SKU-A1", "98.00")], kind="chargeback")
        program.order("anna", day=31)  # 8.00 against a 16.00 clawback
        program.order("ben", day=31)

        second = program.run_and_approve(day=50)
        assert list(program.payout_lines(second)) == [program.payees["ben"].key]
        anna = program.payees["anna"]
        assert second.carried_forward == [
            {"payee_type": "creator", "payee_id": anna.payee_id, "currency": "USD", "amount": "-8.00"}
        ]
        assert program.available("anna") == -800

        program.order("anna", day=52, lines=[("SKU-A1", 2, "49.00")])
        third = program.run_and_approve(day=70)
        line = program.line_of(third, "anna")
        assert (line.commission_amount, line.clawback_amount, line.total_amount) == (2400, -1600, 800)
        assert program.available("anna") == 0

    def test_a_clawback_on_a_cleared_unpaid_line_is_inside_the_unpaid_remainder(self, program: Program):
        program.creator("anna")
        sold = program.order("anna", day=5, lines=[("SKU-A1", 2, "49.00")])
        with pytest.raises(ConflictError):
            program.run(day=20, minimum="50.00")  # cleared, but below the minimum
        program.refund(sold, day=25, lines=[("SKU-A1", "49.00")])  # after the window: a clawback of 8.00

        run = program.run_and_approve(day=40)
        line = program.line_of(run, "anna")
        assert (line.commission_amount, line.clawback_amount, line.total_amount) == (800, 0, 800)
        kinds = sorted((i.kind, i.amount) for i in program.items(run))
        assert kinds == [("clawback", 0), ("commission", 800)]  # the clawback is taken, at zero
        assert program.available("anna") == 0
        with pytest.raises(ConflictError, match="nothing to pay"):
            program.run(day=60)

    def test_a_refund_recorded_before_an_earlier_dated_run_is_not_netted_twice(self, program: Program):
        program.creator("anna")
        sold = program.order("anna", day=5, lines=[("SKU-A1", 2, "49.00")])
        program.refund(sold, day=40, lines=[("SKU-A1", "49.00")], kind="chargeback")  # known before the run
        first = program.run_and_approve(day=30)  # as of a date before the chargeback
        assert program.line_of(first, "anna").total_amount == 800  # what is left of the line

        program.order("anna", day=35, lines=[("SKU-A1", 2, "49.00")])
        second = program.run_and_approve(day=60)
        line = program.line_of(second, "anna")
        assert (line.commission_amount, line.clawback_amount, line.total_amount) == (1600, 0, 1600)
        assert program.available("anna") == 0

    def test_a_full_chargeback_on_a_line_with_a_reserve_never_pays_the_released_reserve(self, program: Program):
        program.creator("anna", terms=cpa(reserve_pct="10", reserve_release_days=30))
        program.creator("ben")
        sold = program.order("anna", day=5, lines=[("SKU-A1", 2, "49.00")])  # 16.00: 1.60 held until day 45
        program.refund(sold, day=20, lines=[("SKU-A1", "98.00")], kind="chargeback")
        program.order("ben", day=5)
        program.order("ben", day=50)

        first = program.run_and_approve(day=25)
        assert program.payees["anna"].key not in program.payout_lines(first)
        second = program.run_and_approve(day=70)  # the reserve was released on day 45
        assert program.payees["anna"].key not in program.payout_lines(second)
        assert program.available("anna") == 0

    def test_a_reserve_is_paid_once_released(self, program: Program):
        program.creator("anna", terms=cpa(reserve_pct="10", reserve_release_days=30))
        program.order("anna", day=5, lines=[("SKU-A1", 2, "49.00")])
        first = program.run_and_approve(day=20)
        assert program.line_of(first, "anna").commission_amount == 1440
        second = program.run_and_approve(day=50)
        line = program.line_of(second, "anna")
        assert (line.commission_amount, line.commission_line_count) == (160, 1)
        assert [i.kind for i in program.items(second)] == ["reserve"]

    def test_creators_under_an_agency_contract_are_paid_to_the_agency(self, program: Program):
        agency_id, _ = program.agency("Glow Agency", ["cara", "dina"])
        program.order("cara", day=5, lines=[("SKU-A1", 1, "49.00")])
        program.order("dina", day=6, lines=[("SKU-B1", 2, "24.00")])

        run = program.run()
        (line,) = program.payout_lines(run).values()
        assert (line.payee_type, line.payee_id, line.payee_name) == ("agency", agency_id, "Glow Agency")
        assert (line.commission_amount, line.order_count, line.commission_line_count) == (1600, 2, 2)

    def test_one_line_per_payee_brand_and_currency(self, program: Program):
        program.fx("USD", "EUR", "0.9")
        anna = program.creator("anna")
        program.order("anna", day=5, lines=[("SKU-A1", 1, "49.00")])  # 8.00 USD on the USD contract
        euro = program._contract(
            {
                "model": "revshare",
                "currency": "EUR",
                "verification_window_days": 10,
                "revshare": {"basis": "net_revenue", "rates": {"new": {"a": "10", "b": "10", "c": "10"}}},
            },
            creator_id=anna.creator_id,
        )
        from clearline.auth import service as auth_service
        from clearline.contract import service as contract_service

        contract_service.accept_contract(program.db, auth_service.actor_for(program.db, anna.user), contract_id=euro.id)
        program.order("anna", day=6, lines=[("SKU-A1", 1, "49.00")])  # 10 % of 49.00 USD × 0.9 = 4.41 EUR
        program.order("anna", day=7, lines=[("SKU-A1", 2, "49.00")])  # 8.82 EUR

        run = program.run()
        lines = program.payout_lines(run)
        assert {k: v.total_amount for k, v in lines.items()} == {
            ("creator", anna.creator_id, "USD"): 800,
            ("creator", anna.creator_id, "EUR"): 1323,
        }
        assert lines[("creator", anna.creator_id, "EUR")].contract_id == euro.id
        assert lines[("creator", anna.creator_id, "USD")].contract_id == anna.contract_id
        assert payout_service.totals(program.db, run.id) == {"EUR": "13.23", "USD": "8.00"}

    def test_a_second_run_is_refused_while_a_draft_is_waiting(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        draft = program.run(day=20)
        program.order("anna", day=21)
        with pytest.raises(ConflictError, match=f"run {draft.id} is still a draft"):
            program.run(day=40)

    def test_an_as_of_date_in_the_future_is_refused(self, program: Program):
        program.creator("anna")
        program.order("anna", day=100)  # its window ends in ten days' time, after now
        with pytest.raises(ValidationFailedError, match="in the future"):
            program.run_and_approve(day=130)

    def test_only_finance_on_the_brand_can_create_a_run(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        marketing = factories.actor(program.db, ("marketing", program.brand.id))
        other_brand = factories.brand(program.db)
        outsider = factories.actor(program.db, ("finance", other_brand.id))
        with pytest.raises(ForbiddenError):
            program.run(actor=marketing)
        with pytest.raises(NotFoundError):
            program.run(actor=outsider)

    def test_the_run_is_audited_with_its_totals(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        run = program.run()
        event = program.db.scalar(
            select(AuditEvent).where(AuditEvent.action == "payout_run.created", AuditEvent.entity_id == str(run.id))
        )
        assert event is not None and event.actor_id == program.finance.user_id
        assert event.after["totals"] == {"USD": "8.00"}


class TestIdempotency:
    def test_running_the_same_brand_and_date_again_pays_nothing(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        first = program.run_and_approve(day=40)
        with pytest.raises(ConflictError, match="nothing to pay as of") as caught:
            program.run(day=40)
        assert caught.value.status_code == 409
        runs = program.db.scalars(select(PayoutRun.id).where(PayoutRun.brand_id == program.brand.id)).all()
        assert runs == [first.id]

    def test_a_rerun_after_an_interrupted_run_pays_everything_exactly_once(
        self, program: Program, monkeypatch: pytest.MonkeyPatch
    ):
        for handle in ("anna", "ben", "cara"):
            program.creator(handle)
            program.order(handle, day=5, lines=[("SKU-A1", 2, "49.00")])
        real = payout_service._write_items
        written = []

        def flaky(session, rows):  # type: ignore[no-untyped-def]
            if written:  # the payout lines and the first payee's items are already written
                raise ConnectionError("database went away")
            written.extend(rows)
            real(session, rows)

        monkeypatch.setattr(payout_service, "ITEM_CHUNK", 1)
        monkeypatch.setattr(payout_service, "_write_items", flaky)
        with pytest.raises(ConnectionError), program.db.begin_nested():
            program.run()
        assert len(written) == 1
        assert program.db.scalar(select(PayoutRun.id).where(PayoutRun.brand_id == program.brand.id)) is None
        assert program.db.scalar(select(PayoutItem.id)) is None
        monkeypatch.setattr(payout_service, "_write_items", real)

        run = program.run_and_approve()
        items = program.items(run)
        line_ids = [i.commission_line_id for i in items]
        assert len(line_ids) == len(set(line_ids)) == 3
        assert (
            program.db.scalar(
                select(PayoutItem.id).where(PayoutItem.run_id != run.id, PayoutItem.commission_line_id.in_(line_ids))
            )
            is None
        )
        assert sum(x.total_amount for x in program.payout_lines(run).values()) == 4800
        assert program.paid_out_of_available() == {"USD": 4800}

    def test_discarding_a_draft_makes_its_lines_payable_again(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        draft = program.run(day=20)
        payout_service.discard_run(program.db, program.finance, run_id=draft.id, reason="wrong date")
        assert program.items(draft) == []
        again = program.run_and_approve(day=30)
        assert program.line_of(again, "anna").total_amount == 800


class TestApproveRun:
    def test_whoever_created_a_run_cannot_approve_it(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        run = program.run()
        with pytest.raises(ForbiddenError, match="four eyes") as caught:
            payout_service.approve_run(program.db, program.finance, run_id=run.id)
        assert caught.value.status_code == 403
        assert run.status == "draft" and program.paid_out_of_available() == {}

    def test_a_second_finance_user_approves_and_the_money_leaves_available(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5, lines=[("SKU-A1", 2, "49.00")])
        run = program.run()
        assert program.available("anna") == 1600
        approved = program.approve(run)
        assert approved.status == "approved"
        assert approved.approved_by_id == program.finance2.user_id
        assert approved.approved_by_label == program.finance2.label
        assert approved.approved_at is not None
        assert program.available("anna") == 0
        payouts = ledger.Account(program.brand.id, "brand", program.brand.id, ledger.PAYOUTS, "USD")
        assert ledger.balance(program.db, payouts) == 1600
        assert ledger.imbalances(program.db) == []
        event = program.db.scalar(select(AuditEvent).where(AuditEvent.action == "payout_run.approved"))
        assert event is not None and event.actor_id == program.finance2.user_id

    def test_a_line_disputed_or_held_after_the_run_was_created_blocks_approval(self, program: Program):
        from clearline.payout import dispute as dispute_service

        program.creator("anna")
        disputed = program.commission_lines(program.order("anna", day=5, lines=[("SKU-A1", 1, "49.00")]))[0]
        held = program.commission_lines(program.order("anna", day=6, lines=[("SKU-B1", 1, "24.00")]))[0]
        run = program.run()
        dispute_service.open_dispute(
            program.db, program.actor("anna"), commission_line_id=disputed.id, reason="wrong rate"
        )
        _hold(program, held.id, "fraud review")
        with pytest.raises(ConflictError, match="discard it and run again") as caught:
            program.approve(run)
        assert caught.value.details == [
            {"loc": ["commission_line", str(disputed.id)], "msg": "open dispute"},
            {"loc": ["commission_line", str(held.id)], "msg": "on hold: fraud review"},
        ]
        assert run.status == "draft" and program.available("anna") == 1200  # nothing left available

        payout_service.discard_run(program.db, program.finance, run_id=run.id, reason="lines paused")
        _hold(program, held.id, "")
        again = program.run_and_approve()
        assert [i.commission_line_id for i in program.items(again)] == [held.id]

    def test_an_operator_who_is_not_a_named_user_cannot_approve(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        run = program.run()
        with pytest.raises(ForbiddenError, match="named finance user"):
            payout_service.approve_run(program.db, factories.SYSTEM, run_id=run.id)

    def test_a_run_created_by_the_operator_is_approved_by_a_finance_user(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        run = program.run(actor=factories.SYSTEM)
        assert program.approve(run).status == "approved"

    def test_someone_without_finance_on_the_brand_cannot_approve(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        run = program.run()
        marketing = factories.actor(program.db, ("marketing", program.brand.id))
        creator = factories.actor(
            program.db, ("creator", program.brand.id), creator_id=program.payees["anna"].creator_id
        )
        outsider = factories.actor(program.db, ("finance", factories.brand(program.db).id))
        for actor in (marketing, creator):
            with pytest.raises(ForbiddenError):
                payout_service.approve_run(program.db, actor, run_id=run.id)
        with pytest.raises(NotFoundError):
            payout_service.approve_run(program.db, outsider, run_id=run.id)

    def test_an_approved_run_cannot_be_approved_again(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        run = program.run_and_approve()
        with pytest.raises(ConflictError, match="not draft"):
            program.approve(run)
        assert program.paid_out_of_available() == {"USD": 800}


class TestDiscardRun:
    def test_only_a_draft_can_be_discarded(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        run = program.run_and_approve()
        with pytest.raises(ConflictError, match="only a draft"):
            payout_service.discard_run(program.db, program.finance, run_id=run.id, reason="oops")

    def test_a_discarded_run_keeps_its_record_and_its_reason(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        run = program.run()
        payout_service.discard_run(program.db, program.finance2, run_id=run.id, reason="wrong minimum")
        assert run.status == "discarded"
        assert program.db.scalar(select(PayoutLine.id).where(PayoutLine.run_id == run.id)) is None
        event = program.db.scalar(select(AuditEvent).where(AuditEvent.action == "payout_run.discarded"))
        assert event is not None and event.reason == "wrong minimum"


class TestMarkPaid:
    def test_an_approved_run_is_marked_paid_and_the_cash_leaves(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        run = program.run_and_approve()
        paid = payout_service.mark_paid(program.db, program.finance, run_id=run.id, reference="BATCH-1")
        assert paid.status == "paid" and paid.paid_at is not None
        cash = ledger.Account(program.brand.id, "brand", program.brand.id, "cash", "USD")
        payouts = ledger.Account(program.brand.id, "brand", program.brand.id, ledger.PAYOUTS, "USD")
        assert (ledger.balance(program.db, cash), ledger.balance(program.db, payouts)) == (800, 0)

    def test_a_draft_cannot_be_marked_paid(self, program: Program):
        program.creator("anna")
        program.order("anna", day=5)
        run = program.run()
        with pytest.raises(ConflictError, match="only an approved run"):
            payout_service.mark_paid(program.db, program.finance, run_id=run.id)


class TestPayeeLines:
    def test_a_creator_sees_only_its_own_approved_lines(self, program: Program):
        from clearline.auth import service as auth_service

        program.creator("anna")
        program.creator("ben")
        program.order("anna", day=5)
        program.order("ben", day=5)
        run = program.run()
        anna = auth_service.actor_for(program.db, program.payees["anna"].user)
        assert payout_service.payee_lines(program.db, anna) == []  # a draft is not shown
        program.approve(run)
        seen = payout_service.payee_lines(program.db, anna)
        assert [(line.payee_id, r.id) for line, r in seen] == [(program.payees["anna"].payee_id, run.id)]

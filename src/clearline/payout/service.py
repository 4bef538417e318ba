"""Payout runs (C8): pay what has cleared its window and is on no hold or open dispute, net of clawbacks,
above the minimum (else carried forward), one line per payee × brand × currency; four eyes to approve.

Idempotency is structural: every payable thing (a commission line, a reserve release, a clawback, an
adjustment) becomes at most one `payout_items` row (unique `source`), so a second run — or a rerun after an
interrupted one, whose transaction rolled back — can never pay anything twice.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import String, and_, cast, delete, exists, func, insert, literal, select, update
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.commission import service as commission_service
from clearline.kit import money
from clearline.kit.clock import utcnow
from clearline.kit.errors import ConflictError, ForbiddenError, NotFoundError, ValidationFailedError
from clearline.ledger import service as ledger
from clearline.models import (
    Agency,
    Brand,
    CommissionLine,
    Contract,
    ContractAcceptance,
    ContractTemplateVersion,
    Creator,
    Dispute,
    LedgerAccount,
    LedgerEntry,
    LedgerPosting,
    Link,
    PayoutItem,
    PayoutLine,
    PayoutRun,
    RosterEntry,
)

DEFAULT_MINIMUM = Decimal("50.00")
CLAWBACK_KINDS = ("commission.clawed_back", "commission.reattributed")


ITEM_CHUNK = 10_000  # payout items written per statement (or COPY batch)


@dataclass(slots=True)
class Candidate:
    """One payable thing; a run over a million lines holds a million of these, hence slots and no source
    string until it is written (``source`` is built from ``prefix`` and ``ref``)."""

    prefix: str  # commission, reserve, clawback or adjustment: what ``ref`` is the id of
    ref: int
    kind: str
    payee: tuple[str, int, str]  # payee_type, payee_id, currency (one shared tuple per payee)
    amount: int
    commission_line_id: int | None = None
    order_id: int | None = None

    @property
    def source(self) -> str:
        return f"{self.prefix}:{self.ref}"


@dataclass
class RunPlan:
    candidates: list[Candidate] = field(default_factory=list)
    absorbed: list[Candidate] = field(default_factory=list)  # clawbacks already inside a line's unpaid remainder


def _not_taken(prefix: str, column):  # type: ignore[no-untyped-def]
    """No payout item exists for '<prefix>:<id>' (string concatenation compiles to || on both databases)."""
    source = literal(f"{prefix}:", String) + cast(column, String)
    return ~exists().where(PayoutItem.source == source)


def _open_disputes():  # type: ignore[no-untyped-def]
    return exists().where(Dispute.commission_line_id == CommissionLine.id, Dispute.status == "open")


def _taken_lines(session: Session, line_ids: set[int | None], chunk: int = 5000) -> set[int]:
    """The lines among ``line_ids`` that an earlier run already took (their 'commission:<id>' item exists,
    whatever its kind: a line taken at a negative remainder is a clawback item, and still taken)."""
    wanted = sorted(i for i in line_ids if i is not None)
    taken: set[int] = set()
    for start in range(0, len(wanted), chunk):
        sources = [f"commission:{i}" for i in wanted[start:start + chunk]]
        found = session.scalars(select(PayoutItem.commission_line_id).where(PayoutItem.source.in_(sources)))
        taken.update(i for i in found if i is not None)
    return taken


def plan(session: Session, *, brand_id: int, as_of: dt.datetime) -> RunPlan:
    """Everything payable as of ``as_of`` that no run has taken yet (set-based queries)."""
    result = RunPlan()
    payees: dict[tuple[str, int, str], tuple[str, int, str]] = {}
    # Core, not ORM, execution: this is the one query that returns a row per commission line (a million in a
    # large run), and ORM row handling cost more than the query itself. Core does not autoflush: flush first.
    session.flush()
    lines = session.connection().execute(
        select(CommissionLine.id, CommissionLine.payee_type, CommissionLine.payee_id, CommissionLine.currency,
               CommissionLine.amount - CommissionLine.reversed_amount - CommissionLine.reserve_amount,
               CommissionLine.reserve_amount, CommissionLine.rule, CommissionLine.order_id)
        .where(CommissionLine.brand_id == brand_id, CommissionLine.cleared_at.is_not(None),
               CommissionLine.eligible_at <= as_of, CommissionLine.hold_reason == "", ~_open_disputes(),
               _not_taken("commission", CommissionLine.id))
        .execution_options(stream_results=True, yield_per=50_000))
    for line_id, payee_type, payee_id, currency, amount, reserve, rule, order_id in lines:
        if amount > 0:
            kind = "retainer" if rule == "retainer" else "commission"
        elif amount < 0 or reserve > 0:
            # A clawback took more than the share that was not held in reserve: the line is taken at what it
            # owes (a clawback, never a negative commission), so its released reserve nets against it and
            # any later clawback on it nets off like one on a paid line.
            kind = "clawback"
        else:
            continue
        payee = payees.setdefault((payee_type, payee_id, currency), (payee_type, payee_id, currency))
        result.candidates.append(Candidate("commission", line_id, kind, payee, amount, line_id, order_id))
    releases = session.execute(
        select(CommissionLine.id, CommissionLine.payee_type, CommissionLine.payee_id, CommissionLine.currency,
               CommissionLine.reserve_amount, CommissionLine.order_id)
        .where(CommissionLine.brand_id == brand_id, CommissionLine.reserve_amount > 0,
               CommissionLine.reserve_released_at.is_not(None), CommissionLine.reserve_released_at <= as_of,
               CommissionLine.hold_reason == "", ~_open_disputes(),
               _not_taken("reserve", CommissionLine.id))).all()
    for line_id, payee_type, payee_id, currency, amount, order_id in releases:
        result.candidates.append(Candidate("reserve", line_id, "reserve", (payee_type, payee_id, currency),
                                           amount, line_id, order_id))
    # Clawbacks debit the payee's available balance. One on a line not yet paid is already inside the
    # line's unpaid remainder (amount − reversed), so it is absorbed; on a paid line it nets off now.
    # Every clawback recorded so far counts, whatever its date: the remainder above already reflects it,
    # so one dated after ``as_of`` and left for a later run would be taken back a second time there.
    clawbacks = session.execute(
        select(LedgerEntry.id, LedgerEntry.commission_line_id, LedgerAccount.owner_type, LedgerAccount.owner_id,
               LedgerAccount.currency, LedgerPosting.amount)
        .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerEntry.brand_id == brand_id, LedgerEntry.kind.in_(CLAWBACK_KINDS),
               LedgerAccount.kind == ledger.AVAILABLE, LedgerPosting.amount < 0,
               _not_taken("clawback", LedgerEntry.id))).all()
    paid_ids = _taken_lines(session, {clawed for _, clawed, *_ in clawbacks})
    for entry_id, clawed, owner_type, owner_id, currency, amount in clawbacks:
        candidate = Candidate("clawback", entry_id, "clawback", (owner_type, owner_id, currency), int(amount),
                              clawed)
        (result.candidates if clawed in paid_ids else result.absorbed).append(candidate)
    adjustments = session.execute(
        select(Dispute.id, CommissionLine.payee_type, CommissionLine.payee_id, CommissionLine.currency,
               Dispute.adjustment_amount, CommissionLine.id)
        .join(CommissionLine, CommissionLine.id == Dispute.commission_line_id)
        .where(Dispute.brand_id == brand_id, Dispute.status == "upheld", Dispute.adjustment_amount != 0,
               _not_taken("adjustment", Dispute.id))).all()
    for dispute_id, payee_type, payee_id, currency, amount, line_id in adjustments:
        result.candidates.append(Candidate("adjustment", dispute_id, "adjustment", (payee_type, payee_id, currency),
                                           int(amount), line_id))
    return result


def _payee_names(session: Session, payees: set[tuple[str, int]], chunk: int = 5000
                 ) -> dict[tuple[str, int], tuple[str, str]]:
    """Name and vendor id per payee, in chunks (SQLite takes at most 32,766 parameters, PostgreSQL 65,535)."""
    names: dict[tuple[str, int], tuple[str, str]] = {}
    for payee_type, model in (("creator", Creator), ("agency", Agency)):
        ids = sorted(i for t, i in payees if t == payee_type)
        for start in range(0, len(ids), chunk):
            rows = session.execute(select(model.id, model.name, model.vendor_id)
                                   .where(model.id.in_(ids[start:start + chunk])))
            names.update({(payee_type, i): (name, vendor) for i, name, vendor in rows})
    return names


def _contract_facts(session: Session, brand_id: int
                    ) -> dict[tuple[str, int, str], tuple[int, int, dt.datetime]]:
    """Per payee and currency: its latest accepted contract on the brand (id, template version, accepted at);
    a payee paid in two currencies has a contract for each. One query for the whole run."""
    rows = session.execute(
        select(Contract.creator_id, Contract.agency_id, Contract.currency, Contract.id, ContractTemplateVersion.version,
               ContractAcceptance.accepted_at)
        .join(ContractTemplateVersion, ContractTemplateVersion.id == Contract.template_version_id)
        .join(ContractAcceptance, ContractAcceptance.contract_id == Contract.id)
        .where(Contract.brand_id == brand_id)
        .order_by(ContractAcceptance.accepted_at, Contract.id))
    facts: dict[tuple[str, int, str], tuple[int, int, dt.datetime]] = {}
    for creator_id, agency_id, currency, contract_id, version, accepted_at in rows:
        owner = agency_id or creator_id
        if owner is not None:  # ordered by acceptance: the latest wins
            facts[("agency" if agency_id else "creator", owner, currency)] = (contract_id, version, accepted_at)
    return facts


def _signed_off_at(session: Session, brand_id: int, until: dt.datetime) -> dict[tuple[str, int], dt.datetime]:
    """Per payee: the latest sign-off of one of its links on the brand up to ``until`` (an agency's are its roster
    creators' links). Two grouped queries for the whole run."""
    found: dict[tuple[str, int], dt.datetime] = {}
    latest = func.max(Link.signed_off_at)
    mine = select(Link.creator_id, latest).where(Link.brand_id == brand_id, Link.signed_off_at <= until)
    roster = (select(RosterEntry.agency_id, latest).join(Link, Link.creator_id == RosterEntry.creator_id)
              .where(Link.brand_id == brand_id, Link.signed_off_at <= until))
    for payee_type, stmt, owner in (("creator", mine, Link.creator_id), ("agency", roster, RosterEntry.agency_id)):
        found.update({(payee_type, i): at for i, at in session.execute(stmt.group_by(owner)) if at is not None})
    return found


def _brief_approved_at(session: Session, brand_id: int, until: dt.datetime) -> dict[tuple[str, int], dt.datetime]:
    """Per payee: the latest approval, up to ``until``, of a brief on the brand that the payee's creators made
    content for (an agency's: its roster creators'). Two grouped queries for the whole run."""
    from clearline.models import Brief, Creative

    found: dict[tuple[str, int], dt.datetime] = {}
    latest = func.max(Brief.approved_at)
    mine = (select(Creative.creator_id, latest).join(Brief, Brief.id == Creative.brief_id)
            .where(Brief.brand_id == brand_id, Brief.approved_at <= until))
    roster = (select(RosterEntry.agency_id, latest).join(Creative, Creative.creator_id == RosterEntry.creator_id)
              .join(Brief, Brief.id == Creative.brief_id).where(Brief.brand_id == brand_id, Brief.approved_at <= until))
    for payee_type, stmt, owner in (("creator", mine, Creative.creator_id), ("agency", roster, RosterEntry.agency_id)):
        found.update({(payee_type, i): at for i, at in session.execute(stmt.group_by(owner)) if at is not None})
    return found


def _write_items(session: Session, rows: list[tuple[int, int, str, str, int | None, int]]) -> None:
    """Append payout items (run_id, payout_line_id, source, kind, commission_line_id, amount). PostgreSQL takes
    them by COPY — a run over a million lines writes a million items, and row-by-row INSERTs cost minutes."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor, cursor.copy("COPY payout_items (run_id, payout_line_id, source, kind, commission_line_id, amount)"
                                 " FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    columns = ("run_id", "payout_line_id", "source", "kind", "commission_line_id", "amount")
    session.execute(insert(PayoutItem.__table__), [dict(zip(columns, row, strict=True)) for row in rows])  # type: ignore[arg-type]


def create_run(session: Session, actor: Actor, *, brand_id: int, as_of: dt.datetime,
               period_start: dt.datetime | None = None, minimum: Decimal = DEFAULT_MINIMUM) -> PayoutRun:
    """Create a draft run as of a date (not in the future): pays what has cleared its window by then and is on
    no hold or open dispute, net of clawbacks, where a payee's net reaches ``minimum`` in its currency (else it
    is carried forward). Clears due commissions first; pays nothing already taken by a run. One draft at a
    time per brand: a clawback netted in a later run must not come back when an earlier draft is discarded."""
    brand = brand_repository.get(session, actor, brand_id)
    actor.require("finance", brand_id=brand.id)
    if as_of.tzinfo is None:
        raise ValidationFailedError("as_of needs a UTC offset", details=[{"loc": ["as_of"], "msg": "naive time"}])
    if as_of > utcnow():
        raise ValidationFailedError(
            f"as_of {as_of:%Y-%m-%d %H:%M} UTC is in the future: a run pays only what has already cleared",
            details=[{"loc": ["as_of"], "msg": "in the future"}])
    # Serialise runs per brand (a row lock on PostgreSQL; SQLite has one writer anyway), so two finance users
    # pressing "run" at once get a draft and a 409 rather than a unique-violation on payout_items.source.
    session.execute(select(Brand.id).where(Brand.id == brand.id).with_for_update())
    draft = session.scalar(select(PayoutRun.id).where(PayoutRun.brand_id == brand.id, PayoutRun.status == "draft")
                           .order_by(PayoutRun.id).limit(1))
    if draft is not None:
        raise ConflictError(f"run {draft} is still a draft: approve or discard it before the next run")
    commission_service.clear_due(session, now=as_of, brand_id=brand.id)
    commission_service.release_reserves(session, now=as_of, brand_id=brand.id)
    found = plan(session, brand_id=brand.id, as_of=as_of)
    grouped: dict[tuple[str, int, str], list[Candidate]] = defaultdict(list)
    for candidate in found.candidates:
        grouped[candidate.payee].append(candidate)
    del found.candidates
    minimum_minor = money.to_minor(minimum, brand.default_currency)
    net = {payee: sum(c.amount for c in candidates) for payee, candidates in grouped.items()}
    payable = sorted(k for k in grouped if net[k] >= max(money.to_minor(minimum, k[2]), 1))
    carried = [{"payee_type": t, "payee_id": i, "currency": cur, "amount": money.format_minor(net[(t, i, cur)], cur)}
               for (t, i, cur) in sorted(set(grouped) - set(payable))]
    if not payable:
        raise ConflictError(f"nothing to pay as of {as_of:%Y-%m-%d}: every cleared amount is already in a run"
                            + (f" or below the minimum ({len(carried)} payee(s) carried forward)" if carried else ""))
    start = period_start or session.scalar(select(func.max(PayoutRun.as_of)).where(
        PayoutRun.brand_id == brand.id, PayoutRun.status != "discarded"))
    run = PayoutRun(brand_id=brand.id, as_of=as_of, period_start=start or as_of, period_end=as_of, status="draft",
                    minimum_amount=minimum_minor, created_by_id=actor.user_id, created_by_label=actor.label,
                    carried_forward=carried)
    session.add(run)
    session.flush()
    lines = _write_lines(session, brand, run, {k: grouped[k] for k in payable})
    absorbed: dict[tuple[str, int, str], list[Candidate]] = defaultdict(list)
    for clawback in found.absorbed:
        absorbed[clawback.payee].append(clawback)
    rows: list[tuple[int, int, str, str, int | None, int]] = []
    for payee in payable:
        line_id, candidates = lines[payee], grouped.pop(payee)
        rows.extend((run.id, line_id, c.source, c.kind, c.commission_line_id, c.amount) for c in candidates)
        taken = {c.commission_line_id for c in candidates}
        # A clawback already inside a taken line's remainder is taken too, at zero, so no later run nets it.
        rows.extend((run.id, line_id, a.source, a.kind, a.commission_line_id, 0)
                    for a in absorbed.get(payee, ()) if a.commission_line_id in taken)
        if len(rows) >= ITEM_CHUNK:
            _write_items(session, rows)
            rows = []
    _write_items(session, rows)
    if start is None:  # the brand's first run: its period starts with the earliest line it pays
        run.period_start = session.scalar(
            select(func.min(CommissionLine.earned_at))
            .join(PayoutItem, PayoutItem.commission_line_id == CommissionLine.id)
            .where(PayoutItem.run_id == run.id)) or as_of
    audit.record(session, actor, "payout_run.created", run, after={
        "as_of": as_of, "lines": len(payable), "totals": totals(session, run.id), "carried_forward": carried})
    return run


def _write_lines(session: Session, brand: Brand, run: PayoutRun,
                 payable: dict[tuple[str, int, str], list[Candidate]]) -> dict[tuple[str, int, str], int]:
    """One payout line per payee × currency, with its sums and the facts finance files need; returns their ids."""
    names = _payee_names(session, {(t, i) for t, i, _ in payable})
    contracts = _contract_facts(session, brand.id)
    signed_off = _signed_off_at(session, brand.id, run.as_of)
    briefs = _brief_approved_at(session, brand.id, run.as_of)
    rows = []
    for (payee_type, payee_id, currency), candidates in payable.items():
        sums: dict[str, int] = defaultdict(int)
        for c in candidates:
            sums[c.kind] += c.amount
        paid = [c for c in candidates if c.kind in ("commission", "reserve")]
        contract_id, version, accepted_at = contracts.get((payee_type, payee_id, currency), (None, None, None))
        name, vendor = names.get((payee_type, payee_id), (f"{payee_type} {payee_id}", ""))
        rows.append(dict(
            run_id=run.id, brand_id=brand.id, payee_type=payee_type, payee_id=payee_id, payee_name=name,
            payee_vendor_id=vendor, currency=currency, commission_amount=sums["commission"] + sums["reserve"],
            retainer_amount=sums["retainer"], adjustment_amount=sums["adjustment"], clawback_amount=sums["clawback"],
            total_amount=sum(sums.values()), order_count=len({c.order_id for c in paid if c.order_id}),
            commission_line_count=len({c.commission_line_id for c in paid}), contract_id=contract_id,
            contract_version=version, contract_accepted_at=accepted_at,
            link_signed_off_at=signed_off.get((payee_type, payee_id)),
            brief_approved_at=briefs.get((payee_type, payee_id)), invoice_reference=""))
    table = PayoutLine.__table__
    # RETURNING makes SQLAlchemy batch the rows into multi-row INSERTs (insertmanyvalues) instead of one
    # statement per line; ten thousand ORM objects flushed one by one took seconds.
    statement = insert(table).returning(  # type: ignore[arg-type]
        table.c.id, table.c.payee_type, table.c.payee_id, table.c.currency)
    inserted = session.execute(statement, rows)
    ids = {(payee_type, payee_id, currency): line_id for line_id, payee_type, payee_id, currency in inserted}
    prefix = f"CL-{brand.slug.upper()}-{run.id}-"
    session.execute(update(PayoutLine).where(PayoutLine.run_id == run.id)
                    .values(invoice_reference=literal(prefix, String) + cast(PayoutLine.id, String))
                    .execution_options(synchronize_session=False))
    return ids


def totals(session: Session, run_id: int) -> dict[str, str]:
    rows = session.execute(select(PayoutLine.currency, func.sum(PayoutLine.total_amount))
                           .where(PayoutLine.run_id == run_id).group_by(PayoutLine.currency)).all()
    return {currency: money.format_minor(int(total), currency) for currency, total in rows}


def get_run(session: Session, actor: Actor, run_id: int) -> PayoutRun:
    run = session.get(PayoutRun, run_id)
    if run is None:
        raise NotFoundError(f"no payout run {run_id}")
    brand_repository.get(session, actor, run.brand_id)
    actor.require("finance", brand_id=run.brand_id)
    return run


def approve_run(session: Session, actor: Actor, *, run_id: int) -> PayoutRun:
    """A second finance user approves; the creator of the run cannot. Money moves available → payouts."""
    run = get_run(session, actor, run_id)
    if run.status != "draft":
        raise ConflictError(f"run {run.id} is {run.status}, not draft")
    if actor.user_id is None:
        raise ForbiddenError("four eyes: approval needs a named finance user, not the operator")
    if actor.user_id == run.created_by_id:
        raise ForbiddenError("four eyes: whoever created a run cannot approve it")
    paused = _paused_since_planned(session, run.id)
    if paused:
        raise ConflictError(
            f"run {run.id} holds {len(paused)} commission line(s) put on hold or disputed since it was created: "
            "discard it and run again",
            details=[{"loc": ["commission_line", str(line_id)], "msg": why} for line_id, why in paused],
        )
    now = utcnow()
    lines = list(session.scalars(select(PayoutLine).where(PayoutLine.run_id == run.id)))
    ledger.post(session, [ledger.Transfer(
        key=f"payout.approved:{line.id}", kind="payout.approved",
        debit=ledger.Account(run.brand_id, line.payee_type, line.payee_id, ledger.AVAILABLE, line.currency),
        credit=ledger.Account(run.brand_id, "brand", run.brand_id, ledger.PAYOUTS, line.currency),
        amount=line.total_amount, effective_at=now, memo=f"payout run {run.id}, {line.invoice_reference}")
        for line in lines])
    run.status, run.approved_by_id, run.approved_by_label, run.approved_at = "approved", actor.user_id, actor.label, now
    audit.record(session, actor, "payout_run.approved", run, before={"status": "draft"},
                 after={"status": "approved", "totals": totals(session, run.id)})
    return run


def _paused_since_planned(session: Session, run_id: int, limit: int = 50) -> list[tuple[int, str]]:
    """Lines of a draft run that a hold or an open dispute has paused since the run was planned."""
    disputed = _open_disputes()
    stmt = (
        select(CommissionLine.id, CommissionLine.hold_reason, disputed)
        .join(PayoutItem, PayoutItem.commission_line_id == CommissionLine.id)
        .where(PayoutItem.run_id == run_id, PayoutItem.kind == "commission",
               (CommissionLine.hold_reason != "") | disputed)
        .order_by(CommissionLine.id)
        .limit(limit)
    )
    return [(line_id, f"on hold: {hold}" if hold else "open dispute") for line_id, hold, _ in session.execute(stmt)]


def discard_run(session: Session, actor: Actor, *, run_id: int, reason: str) -> PayoutRun:
    """Drop a draft run; everything in it becomes payable again."""
    run = get_run(session, actor, run_id)
    if run.status != "draft":
        raise ConflictError(f"run {run.id} is {run.status}; only a draft can be discarded")
    session.execute(delete(PayoutItem).where(PayoutItem.run_id == run.id))
    session.execute(delete(PayoutLine).where(PayoutLine.run_id == run.id))
    run.status = "discarded"
    audit.record(session, actor, "payout_run.discarded", run, before={"status": "draft"},
                 after={"status": "discarded"}, reason=reason)
    return run


def mark_paid(session: Session, actor: Actor, *, run_id: int, reference: str = "") -> PayoutRun:
    run = get_run(session, actor, run_id)
    if run.status != "approved":
        raise ConflictError(f"run {run.id} is {run.status}; only an approved run can be marked paid")
    run.status, run.paid_at = "paid", utcnow()
    lines = list(session.scalars(select(PayoutLine).where(PayoutLine.run_id == run.id)))
    ledger.post(session, [ledger.Transfer(
        key=f"payout.paid:{line.id}", kind="payout.paid",
        debit=ledger.Account(run.brand_id, "brand", run.brand_id, ledger.PAYOUTS, line.currency),
        credit=ledger.Account(run.brand_id, "brand", run.brand_id, "cash", line.currency),
        amount=line.total_amount, effective_at=run.paid_at, memo=reference or f"run {run.id} paid") for line in lines])
    audit.record(session, actor, "payout_run.paid", run, before={"status": "approved"}, after={"status": "paid"},
                 reason=reference)
    return run


def list_runs(session: Session, actor: Actor, *, brand_id: int) -> list[PayoutRun]:
    brand = brand_repository.get(session, actor, brand_id)
    actor.require("finance", brand_id=brand.id)
    return list(session.scalars(select(PayoutRun).where(PayoutRun.brand_id == brand.id)
                                .order_by(PayoutRun.id.desc())))


def run_lines(session: Session, run_id: int) -> list[PayoutLine]:
    return list(session.scalars(select(PayoutLine).where(PayoutLine.run_id == run_id).order_by(PayoutLine.id)))


def payee_lines(session: Session, actor: Actor) -> list[tuple[PayoutLine, PayoutRun]]:
    """A creator's or agency's own payout lines (approved runs only)."""
    clauses = []
    if actor.creator_id is not None:
        clauses.append(and_(PayoutLine.payee_type == "creator", PayoutLine.payee_id == actor.creator_id))
    if actor.agency_id is not None:
        clauses.append(and_(PayoutLine.payee_type == "agency", PayoutLine.payee_id == actor.agency_id))
    if not clauses:
        return []
    from sqlalchemy import or_

    stmt = (select(PayoutLine, PayoutRun).join(PayoutRun, PayoutRun.id == PayoutLine.run_id)
            .where(or_(*clauses), PayoutRun.status.in_(("approved", "paid", "reconciled")))
            .order_by(PayoutRun.id.desc()))
    return [(line, run) for line, run in session.execute(stmt)]

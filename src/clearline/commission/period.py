"""Period close: retainers and volume-tier bonuses, posted once per contract and month (idempotent)."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.brand import repository as brand_repository
from clearline.commission import calc
from clearline.commission.service import PERFORMANCE_RULES, account, payee_of
from clearline.contract.terms import ContractTerms
from clearline.kit import money
from clearline.kit.errors import ValidationFailedError
from clearline.ledger import service as ledger
from clearline.models import CommissionLine, Contract, ContractTemplateVersion, OrderLine


@dataclass
class CloseReport:
    period: str
    lines: list[tuple[str, int, str, int]] = field(default_factory=list)  # (rule, contract id, currency, amount)


def period_bounds(period: str) -> tuple[dt.datetime, dt.datetime]:
    try:
        year, month = (int(part) for part in period.split("-"))
        start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    except (ValueError, TypeError):
        raise ValidationFailedError("period must be YYYY-MM", details=[{"loc": ["period"], "msg": period}]) from None
    end = start + dt.timedelta(days=calendar.monthrange(year, month)[1])
    return start, end


def _line(contract: Contract, version: int, *, key: str, rule: str, period: str, amount: int, currency: str,
          at: dt.datetime, eligible_at: dt.datetime, note: str, rate: str = "") -> CommissionLine:
    payee_type, payee_id = payee_of(contract)
    return CommissionLine(
        key=key, brand_id=contract.brand_id, contract_id=contract.id, contract_version=version,
        creator_id=contract.creator_id, payee_type=payee_type, payee_id=payee_id, rule=rule, period=period,
        rate=rate or money.format_minor(amount, currency), order_currency=currency, currency=currency, amount=amount,
        note=note, earned_at=at, eligible_at=eligible_at)


def close_period(session: Session, actor: Actor, *, brand_id: int, period: str) -> CloseReport:
    """Post the month's retainers (hybrid), onboarding retainers (their first month) and marginal volume
    bonuses. Running it again posts nothing twice: every line has a period key."""
    brand = brand_repository.get(session, actor, brand_id)
    actor.require("finance", brand_id=brand.id)
    start, end = period_bounds(period)
    report = CloseReport(period)
    contracts = session.scalars(select(Contract).where(
        Contract.brand_id == brand.id, Contract.status.in_(("accepted", "terminated")), Contract.starts_at < end,
        (Contract.ends_at.is_(None)) | (Contract.ends_at > start)))
    existing = set(session.scalars(select(CommissionLine.key).where(CommissionLine.brand_id == brand.id,
                                                                    CommissionLine.period == period)))
    created: list[CommissionLine] = []
    for contract in contracts:
        terms = ContractTerms.model_validate(contract.terms)
        version = session.scalar(select(ContractTemplateVersion.version).where(
            ContractTemplateVersion.id == contract.template_version_id)) or 0
        currency = terms.currency
        if terms.retainer is not None:
            key = f"retainer:{contract.id}:{period}"
            amount = money.to_minor(terms.retainer.amount, currency)
            created.append(_line(contract, version, key=key, rule="retainer", period=period, amount=amount,
                                 currency=currency, at=end, eligible_at=end, note=f"monthly retainer {period}"))
        onboarding = terms.onboarding_retainer
        if onboarding is not None and start <= contract.starts_at < end:
            key = f"onboarding_retainer:{contract.id}"
            created.append(_line(contract, version, key=key, rule="retainer", period=period,
                                 amount=money.to_minor(onboarding.amount, currency), currency=currency,
                                 at=contract.starts_at, eligible_at=end,
                                 note=f"onboarding retainer for the first {onboarding.days} days"))
        if terms.volume_tiers:
            performance = list(session.scalars(select(CommissionLine).where(
                CommissionLine.contract_id == contract.id, CommissionLine.period == period,
                CommissionLine.rule.in_(PERFORMANCE_RULES))))
            kept = dict(session.execute(select(OrderLine.id, OrderLine.net_amount - OrderLine.refunded_amount).where(
                OrderLine.id.in_({c.order_line_id for c in performance if c.order_line_id}))).all())
            revenue = Decimal(0)
            for line_id, net in kept.items():  # each order line once, net of refunds, in contract currency
                sample = next(c for c in performance if c.order_line_id == line_id)
                revenue += money.from_minor(net, sample.order_currency) * Decimal(sample.fx_rate)
            bonus = calc.volume_bonus(revenue, [(t.from_revenue, t.bonus_pct) for t in terms.volume_tiers], currency)
            if bonus > 0:
                latest = max(c.eligible_at for c in performance)
                created.append(_line(contract, version, key=f"volume_bonus:{contract.id}:{period}", rule="volume_bonus",
                                     period=period, amount=bonus, currency=currency, at=end, eligible_at=latest,
                                     note=f"marginal volume bonus on {revenue:.2f} {currency} net revenue"))
    fresh = [c for c in created if c.key not in existing and c.amount > 0]
    session.add_all(fresh)
    session.flush()
    ledger.post(session, [ledger.Transfer(
        key=f"commission.accrued:{c.id}", kind="commission.accrued", debit=account(c, ledger.EXPENSE),
        credit=account(c, ledger.PENDING), amount=c.amount, commission_line_id=c.id, effective_at=c.earned_at,
        memo=c.note) for c in fresh])
    report.lines = [(c.rule, c.contract_id, c.currency, c.amount) for c in fresh]
    audit.record(session, actor, "period.closed", ("commission_lines", f"period:{period}", brand.id),
                 after={"period": period, "lines": [list(x) for x in report.lines]})
    return report

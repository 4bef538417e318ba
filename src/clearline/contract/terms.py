"""The structured terms of a contract (C2), validated on input and stored as JSON with decimal strings."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from clearline.kit.money import MINOR_UNITS

Rate = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=4)]
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=7, decimal_places=4)]
Amount = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=4)]

# Return rate (fraction) -> verification window in days, the C2 default; the last bucket has no bound.
DEFAULT_VERIFICATION_BUCKETS: tuple[tuple[Decimal, int], ...] = ((Decimal("0.05"), 30), (Decimal("0.15"), 60))
DEFAULT_VERIFICATION_MAX_DAYS = 90


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TierRates(_Strict):
    """Rates by SKU tier; ``returning`` rates apply to returning customers where the contract says so."""

    new: dict[str, Rate]
    returning: dict[str, Rate] | None = None

    @field_validator("new")
    @classmethod
    def _some_tier(cls, new: dict[str, Decimal]) -> dict[str, Decimal]:
        if not new:
            raise ValueError("at least one tier rate is required")
        return new

    @field_validator("returning")
    @classmethod
    def _returning_covers_tiers(
        cls, returning: dict[str, Decimal] | None, info: ValidationInfo
    ) -> dict[str, Decimal] | None:
        # A field validator (not a model one) so that the error names ``returning``.
        new = info.data.get("new")
        if returning is not None and new is not None and set(returning) != set(new):
            raise ValueError("returning rates must name the same tiers as new-customer rates")
        return returning


class CpaTerms(_Strict):
    per: Literal["unit", "order"]
    rates: TierRates


class RevshareTerms(_Strict):
    basis: Literal["net_revenue", "gross_margin"]
    rates: TierRates

    @field_validator("rates")
    @classmethod
    def _percentages(cls, rates: TierRates) -> TierRates:
        for table in (rates.new, rates.returning or {}):
            for tier, pct in table.items():
                if pct > 100:
                    raise ValueError(f"rev-share for tier {tier!r} is above 100 %")
        return rates


class VolumeTier(_Strict):
    """Marginal: the bonus % applies to the period's attributed net revenue above ``from_revenue``."""

    from_revenue: Amount
    bonus_pct: Percent


class Retainer(_Strict):
    amount: Amount
    period: Literal["month"] = "month"


class OnboardingRetainer(_Strict):
    amount: Amount
    days: int = Field(ge=1, le=365)


class ContractTerms(_Strict):
    model: Literal["cpa", "revshare", "hybrid"]
    currency: str = Field(min_length=3, max_length=3)
    cpa: CpaTerms | None = None
    revshare: RevshareTerms | None = None
    volume_tiers: list[VolumeTier] = Field(default_factory=list)
    cap_per_order: Amount | None = None
    cap_per_period: Amount | None = None
    reserve_pct: Percent = Decimal(0)
    reserve_release_days: int = Field(default=90, ge=0, le=730)
    retainer: Retainer | None = None
    onboarding_retainer: OnboardingRetainer | None = None
    attribution_window_days: int = Field(default=30, ge=1, le=365)
    verification_window_days: int | None = Field(default=None, ge=0, le=365)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        code = value.upper()
        if code not in MINOR_UNITS:
            raise ValueError(f"unknown currency {value!r}")
        return code

    @model_validator(mode="after")
    def _model_has_its_terms(self) -> ContractTerms:
        performance = self.cpa is not None or self.revshare is not None
        if self.model == "cpa" and (self.cpa is None or self.revshare is not None):
            raise ValueError("model 'cpa' needs cpa terms and no revshare terms")
        if self.model == "revshare" and (self.revshare is None or self.cpa is not None):
            raise ValueError("model 'revshare' needs revshare terms and no cpa terms")
        if self.model == "hybrid":
            if not performance:
                raise ValueError("model 'hybrid' needs cpa or revshare terms")
            if self.retainer is None and self.onboarding_retainer is None:
                raise ValueError("model 'hybrid' needs a retainer or an onboarding_retainer")
        elif self.retainer is not None or self.onboarding_retainer is not None:
            raise ValueError("retainers belong to the 'hybrid' model")
        return self

    @field_validator("volume_tiers")
    @classmethod
    def _increasing(cls, tiers: list[VolumeTier]) -> list[VolumeTier]:
        thresholds = [tier.from_revenue for tier in tiers]
        if thresholds != sorted(thresholds) or len(set(thresholds)) != len(thresholds):
            raise ValueError("volume_tiers must have strictly increasing from_revenue")
        return tiers

    def tiers(self) -> set[str]:
        named: set[str] = set()
        for plan in (self.cpa, self.revshare):
            if plan is not None:
                named |= set(plan.rates.new)
        return named

    def to_json(self) -> dict:  # type: ignore[type-arg]
        return self.model_dump(mode="json", exclude_none=True)


def default_verification_days(return_rate: Decimal) -> int:
    """C2: ≤5 % returns → 30 days, ≤15 % → 60, above → 90."""
    for bound, days in DEFAULT_VERIFICATION_BUCKETS:
        if return_rate <= bound:
            return days
    return DEFAULT_VERIFICATION_MAX_DAYS

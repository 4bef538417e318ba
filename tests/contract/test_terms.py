"""Contract terms (C2): every structured term is validated, and a bad one is named in a 422."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.orm import Session

from clearline.contract.terms import ContractTerms, default_verification_days
from tests import factories

CPA = {"model": "cpa", "currency": "USD", "cpa": {"per": "unit", "rates": {"new": {"a": "8.00", "b": "4.00"}}}}
REVSHARE = {
    "model": "revshare",
    "currency": "EUR",
    "revshare": {"basis": "net_revenue", "rates": {"new": {"a": "10", "b": "7.5"}}},
}
HYBRID = {
    "model": "hybrid",
    "currency": "USD",
    "cpa": {"per": "order", "rates": {"new": {"a": "5.00"}}},
    "retainer": {"amount": "500.00"},
}


def terms(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(base)
    result.update(changes)
    return result


def refused(payload: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        ContractTerms.model_validate(payload)
    return caught.value.errors()


def locs(errors: list[dict[str, Any]]) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) for e in errors]


class TestCpaTerms:
    @pytest.mark.parametrize("per", ["unit", "order"])
    def test_a_cpa_is_paid_per_unit_or_per_order(self, per: str) -> None:
        parsed = ContractTerms.model_validate(terms(CPA, cpa={"per": per, "rates": {"new": {"a": "8.00"}}}))
        assert parsed.cpa is not None and parsed.cpa.per == per

    def test_any_other_cpa_basis_is_refused_naming_the_field(self) -> None:
        errors = refused(terms(CPA, cpa={"per": "line", "rates": {"new": {"a": "8.00"}}}))
        assert locs(errors) == ["cpa.per"]

    def test_rates_are_kept_as_exact_decimals(self) -> None:
        parsed = ContractTerms.model_validate(CPA)
        assert parsed.cpa is not None and parsed.cpa.rates.new["a"] == Decimal("8.00")
        assert parsed.to_json()["cpa"]["rates"]["new"] == {"a": "8.00", "b": "4.00"}

    def test_a_negative_rate_is_refused(self) -> None:
        errors = refused(terms(CPA, cpa={"per": "unit", "rates": {"new": {"a": "-1"}}}))
        assert locs(errors) == ["cpa.rates.new.a"]

    def test_a_float_rate_with_more_than_four_decimals_is_refused(self) -> None:
        assert locs(refused(terms(CPA, cpa={"per": "unit", "rates": {"new": {"a": "1.00001"}}}))) == ["cpa.rates.new.a"]

    def test_no_tier_at_all_is_refused(self) -> None:
        errors = refused(terms(CPA, cpa={"per": "unit", "rates": {"new": {}}}))
        assert "at least one tier rate" in errors[0]["msg"]

    def test_the_cpa_model_needs_cpa_terms(self) -> None:
        errors = refused({"model": "cpa", "currency": "USD"})
        assert "model 'cpa' needs cpa terms" in errors[0]["msg"]

    def test_the_cpa_model_refuses_revshare_terms_as_well(self) -> None:
        errors = refused(terms(CPA, revshare=REVSHARE["revshare"]))
        assert "no revshare terms" in errors[0]["msg"]


class TestRevshareTerms:
    @pytest.mark.parametrize("basis", ["net_revenue", "gross_margin"])
    def test_revshare_is_a_share_of_net_revenue_or_gross_margin(self, basis: str) -> None:
        parsed = ContractTerms.model_validate(terms(REVSHARE, revshare={"basis": basis, "rates": {"new": {"a": "10"}}}))
        assert parsed.revshare is not None and parsed.revshare.basis == basis

    def test_any_other_basis_is_refused_naming_the_field(self) -> None:
        errors = refused(terms(REVSHARE, revshare={"basis": "gross_revenue", "rates": {"new": {"a": "10"}}}))
        assert locs(errors) == ["revshare.basis"]

    def test_a_percentage_of_exactly_100_is_allowed(self) -> None:
        ContractTerms.model_validate(terms(REVSHARE, revshare={"basis": "net_revenue", "rates": {"new": {"a": "100"}}}))

    def test_a_percentage_above_100_is_refused_naming_the_tier(self) -> None:
        errors = refused(terms(REVSHARE, revshare={"basis": "net_revenue", "rates": {"new": {"a": "100.01"}}}))
        assert locs(errors) == ["revshare.rates"]
        assert "tier 'a' is above 100 %" in errors[0]["msg"]

    def test_a_returning_percentage_above_100_is_refused(self) -> None:
        rates = {"new": {"a": "10"}, "returning": {"a": "150"}}
        errors = refused(terms(REVSHARE, revshare={"basis": "net_revenue", "rates": rates}))
        assert "above 100 %" in errors[0]["msg"]


class TestReturningRates:
    def test_returning_rates_naming_the_same_tiers_are_kept(self) -> None:
        rates = {"new": {"a": "8.00", "b": "4.00"}, "returning": {"a": "4.00", "b": "2.00"}}
        parsed = ContractTerms.model_validate(terms(CPA, cpa={"per": "unit", "rates": rates}))
        assert parsed.cpa is not None and parsed.cpa.rates.returning == {"a": Decimal("4.00"), "b": Decimal("2.00")}

    @pytest.mark.parametrize("returning", [{"a": "4.00"}, {"a": "4.00", "b": "2.00", "c": "1.00"}])
    def test_returning_rates_for_other_tiers_are_refused_naming_the_field(self, returning: dict[str, str]) -> None:
        rates = {"new": {"a": "8.00", "b": "4.00"}, "returning": returning}
        errors = refused(terms(CPA, cpa={"per": "unit", "rates": rates}))
        assert locs(errors) == ["cpa.rates.returning"]
        assert "same tiers" in errors[0]["msg"]


class TestHybridAndRetainers:
    def test_a_hybrid_with_a_retainer_is_accepted(self) -> None:
        parsed = ContractTerms.model_validate(HYBRID)
        assert parsed.retainer is not None and parsed.retainer.amount == Decimal("500.00")

    def test_a_hybrid_with_only_an_onboarding_retainer_is_accepted(self) -> None:
        payload = terms(HYBRID, onboarding_retainer={"amount": "300.00", "days": 30})
        del payload["retainer"]
        parsed = ContractTerms.model_validate(payload)
        assert parsed.onboarding_retainer is not None and parsed.onboarding_retainer.days == 30

    def test_a_hybrid_without_any_retainer_is_refused(self) -> None:
        payload = terms(HYBRID)
        del payload["retainer"]
        assert "needs a retainer" in refused(payload)[0]["msg"]

    def test_a_hybrid_without_performance_terms_is_refused(self) -> None:
        payload = terms(HYBRID)
        del payload["cpa"]
        assert "needs cpa or revshare terms" in refused(payload)[0]["msg"]

    def test_a_retainer_on_a_pure_performance_model_is_refused(self) -> None:
        assert "retainers belong to the 'hybrid' model" in refused(terms(CPA, retainer={"amount": "100"}))[0]["msg"]

    def test_an_onboarding_period_longer_than_a_year_is_refused(self) -> None:
        payload = terms(HYBRID, onboarding_retainer={"amount": "300.00", "days": 400})
        assert locs(refused(payload)) == ["onboarding_retainer.days"]

    def test_a_negative_retainer_is_refused(self) -> None:
        assert locs(refused(terms(HYBRID, retainer={"amount": "-5"}))) == ["retainer.amount"]


class TestVolumeTiers:
    def test_strictly_increasing_thresholds_are_accepted(self) -> None:
        tiers = [{"from_revenue": "1000", "bonus_pct": "1"}, {"from_revenue": "5000", "bonus_pct": "2"}]
        assert len(ContractTerms.model_validate(terms(CPA, volume_tiers=tiers)).volume_tiers) == 2

    @pytest.mark.parametrize("thresholds", [["5000", "1000"], ["1000", "1000"]], ids=["decreasing", "repeated"])
    def test_thresholds_that_do_not_increase_are_refused_naming_the_field(self, thresholds: list[str]) -> None:
        tiers = [{"from_revenue": t, "bonus_pct": "1"} for t in thresholds]
        errors = refused(terms(CPA, volume_tiers=tiers))
        assert locs(errors) == ["volume_tiers"]
        assert "strictly increasing" in errors[0]["msg"]

    def test_a_bonus_above_100_percent_is_refused(self) -> None:
        errors = refused(terms(CPA, volume_tiers=[{"from_revenue": "1000", "bonus_pct": "101"}]))
        assert locs(errors) == ["volume_tiers.0.bonus_pct"]


class TestOtherTerms:
    def test_the_currency_is_normalised_to_upper_case(self) -> None:
        assert ContractTerms.model_validate(terms(CPA, currency="eur")).currency == "EUR"

    def test_an_unknown_currency_is_refused_naming_the_field(self) -> None:
        errors = refused(terms(CPA, currency="XYZ"))
        assert locs(errors) == ["currency"]
        assert "unknown currency 'XYZ'" in errors[0]["msg"]

    def test_a_reserve_above_100_percent_is_refused(self) -> None:
        assert locs(refused(terms(CPA, reserve_pct="100.5"))) == ["reserve_pct"]

    @pytest.mark.parametrize(("field", "value"), [("attribution_window_days", 0), ("verification_window_days", 366)])
    def test_windows_outside_their_range_are_refused(self, field: str, value: int) -> None:
        assert locs(refused(terms(CPA, **{field: value}))) == [field]

    def test_caps_are_kept(self) -> None:
        parsed = ContractTerms.model_validate(terms(CPA, cap_per_order="50.00", cap_per_period="1000.00"))
        assert (parsed.cap_per_order, parsed.cap_per_period) == (Decimal("50.00"), Decimal("1000.00"))

    def test_an_unknown_term_is_refused(self) -> None:
        assert locs(refused(terms(CPA, bonus="yes"))) == ["bonus"]

    def test_tiers_lists_every_tier_a_plan_names(self) -> None:
        assert ContractTerms.model_validate(CPA).tiers() == {"a", "b"}


class TestDefaultVerificationDays:
    @pytest.mark.parametrize(
        ("rate", "days"),
        [("0", 30), ("0.05", 30), ("0.0501", 60), ("0.15", 60), ("0.1501", 90), ("0.9", 90)],
    )
    def test_the_window_follows_the_skus_return_rate(self, rate: str, days: int) -> None:
        assert default_verification_days(Decimal(rate)) == days


class TestTermsThroughTheApi:
    """A bad term sent to POST /brands/{id}/contracts is a 422 whose errors name the field."""

    def _offer(self, client: TestClient, db: Session, payload: dict[str, Any]) -> Any:
        brand = factories.brand(db)
        factories.skus(db, brand.id)
        creator = factories.creator(db, brand.id)
        version_id = factories.template_version_id(db, brand.id)
        key = factories.api_key(db, factories.user(db, ("legal", brand.id), password=None))
        return client.post(
            f"/api/v1/brands/{brand.id}/contracts",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "creator_id": creator.id,
                "template_version_id": version_id,
                "terms": payload,
                "starts_at": "2026-11-01T00:00:00Z",
            },
        )

    def test_good_terms_are_stored_with_decimal_strings(self, client: TestClient, db: Session) -> None:
        answer = self._offer(client, db, factories.CPA_TERMS)
        assert answer.status_code == 201, answer.text
        assert answer.json()["terms"]["cpa"]["rates"]["new"]["a"] == "8.00"
        assert answer.json()["status"] == "offered"

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            (terms(factories.CPA_TERMS, currency="XYZ"), "terms.currency"),
            (terms(factories.CPA_TERMS, cpa={"per": "line", "rates": {"new": {"a": "1"}}}), "terms.cpa.per"),
            (
                terms(
                    factories.CPA_TERMS,
                    volume_tiers=[{"from_revenue": "9", "bonus_pct": "1"}, {"from_revenue": "1", "bonus_pct": "1"}],
                ),
                "terms.volume_tiers",
            ),
            (
                terms(
                    factories.CPA_TERMS,
                    cpa={"per": "unit", "rates": {"new": {"a": "1"}, "returning": {"b": "1"}}},
                ),
                "terms.cpa.rates.returning",
            ),
            (terms(factories.CPA_TERMS, reserve_pct="120"), "terms.reserve_pct"),
        ],
        ids=["currency", "cpa-per", "volume-tiers", "returning", "reserve"],
    )
    def test_a_bad_term_is_a_422_naming_the_field(
        self, client: TestClient, db: Session, payload: dict[str, Any], field: str
    ) -> None:
        answer = self._offer(client, db, payload)
        assert answer.status_code == 422
        body = answer.json()
        assert field in body["detail"]
        assert any(".".join(e["loc"][1:]) == field for e in body["errors"])

    def test_a_hybrid_without_a_retainer_is_a_422_saying_so(self, client: TestClient, db: Session) -> None:
        payload = terms(factories.CPA_TERMS, model="hybrid")
        answer = self._offer(client, db, payload)
        assert answer.status_code == 422
        assert "needs a retainer" in answer.json()["errors"][0]["msg"]

    def test_a_tier_the_catalog_does_not_have_is_a_422_naming_the_rate(self, client: TestClient, db: Session) -> None:
        payload = terms(factories.CPA_TERMS, cpa={"per": "unit", "rates": {"new": {"a": "8.00", "z": "1.00"}}})
        answer = self._offer(client, db, payload)
        assert answer.status_code == 422
        body = answer.json()
        assert body["errors"] == [{"loc": ["terms", "cpa", "rates", "new", "z"], "msg": "unknown tier 'z'"}]

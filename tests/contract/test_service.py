"""Contract templates (legal only, versioned), contracts on a template version, and their acceptance."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.contract import repository
from clearline.contract import service as contract_service
from clearline.contract.schemas import ContractCreate, TemplateCreate
from clearline.contract.terms import ContractTerms
from clearline.kit.clock import utcnow
from clearline.kit.errors import ConflictError, ForbiddenError, NotFoundError, ValidationFailedError
from clearline.models import AuditEvent, Contract, ContractAcceptance
from tests import factories


def _last_event(db: Session) -> AuditEvent:
    event = db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).first()
    assert event is not None
    return event


def _contract_data(db: Session, brand_id: int, **overrides: object) -> ContractCreate:
    values: dict[str, object] = {
        "creator_id": factories.creator(db, brand_id).id,
        "template_version_id": factories.template_version_id(db, brand_id),
        "terms": ContractTerms.model_validate(factories.CPA_TERMS),
        "starts_at": dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    }
    values.update(overrides)
    return ContractCreate(**values)  # type: ignore[arg-type]


class TestCreateTemplate:
    def test_legal_creates_a_template_at_version_1(self, db: Session) -> None:
        brand = factories.brand(db)
        legal = factories.actor(db, ("legal", brand.id))
        template = contract_service.create_template(
            db, legal, data=TemplateCreate(name="CPA", brand_id=brand.id, body="Body v1")
        )
        versions = repository.versions(db, template.id)
        assert [(v.version, v.body, v.created_by_id) for v in versions] == [(1, "Body v1", legal.user_id)]
        assert _last_event(db).action == "contract_template.created"

    @pytest.mark.parametrize("role", ["marketing", "finance", "brand_ops", "social_ops", "brand_steward"])
    def test_other_staff_may_not_create_templates(self, db: Session, role: str) -> None:
        brand = factories.brand(db)
        with pytest.raises(ForbiddenError, match="requires role legal"):
            contract_service.create_template(
                db,
                factories.actor(db, (role, brand.id)),
                data=TemplateCreate(name="CPA", brand_id=brand.id, body="Body"),
            )

    def test_a_template_for_every_brand_needs_legal_on_every_brand(self, db: Session) -> None:
        brand = factories.brand(db)
        with pytest.raises(ForbiddenError, match="on all brands"):
            contract_service.create_template(
                db, factories.actor(db, ("legal", brand.id)), data=TemplateCreate(name="Global", body="Body")
            )
        template = contract_service.create_template(
            db, factories.actor(db, ("legal", None)), data=TemplateCreate(name="Global", body="Body")
        )
        assert template.brand_id is None

    def test_legal_on_another_brand_cannot_find_the_brand(self, db: Session) -> None:
        brand, other = factories.brand(db), factories.brand(db)
        with pytest.raises(NotFoundError):
            contract_service.create_template(
                db,
                factories.actor(db, ("legal", other.id)),
                data=TemplateCreate(name="CPA", brand_id=brand.id, body="Body"),
            )


class TestAddTemplateVersion:
    def test_each_change_is_a_new_numbered_version(self, db: Session) -> None:
        brand = factories.brand(db)
        legal = factories.actor(db, ("legal", brand.id))
        template = contract_service.create_template(
            db, legal, data=TemplateCreate(name="CPA", brand_id=brand.id, body="v1")
        )
        second = contract_service.add_template_version(db, legal, template_id=template.id, body="v2", reason="redline")
        third = contract_service.add_template_version(db, legal, template_id=template.id, body="v3")
        assert (second.version, third.version) == (2, 3)
        assert [v.body for v in repository.versions(db, template.id)] == ["v1", "v2", "v3"]

    def test_a_new_version_is_audited_with_the_reason(self, db: Session) -> None:
        brand = factories.brand(db)
        legal = factories.actor(db, ("legal", brand.id))
        template = contract_service.create_template(
            db, legal, data=TemplateCreate(name="T", brand_id=brand.id, body="v1")
        )
        contract_service.add_template_version(db, legal, template_id=template.id, body="v2", reason="new clause")
        event = _last_event(db)
        assert (event.action, event.before, event.after, event.reason) == (
            "contract_template.versioned",
            {"version": 1},
            {"version": 2},
            "new clause",
        )

    def test_a_contract_keeps_the_version_it_was_offered_on(self, db: Session) -> None:
        brand = factories.brand(db)
        factories.skus(db, brand.id)
        version_id = factories.template_version_id(db, brand.id)
        contract = factories.contract(
            db, brand.id, creator_id=factories.creator(db, brand.id).id, version_id=version_id
        )
        template_id = repository.get_version(db, version_id).template_id  # type: ignore[union-attr]
        contract_service.add_template_version(db, factories.SYSTEM, template_id=template_id, body="v2")
        db.refresh(contract)
        assert contract.template_version_id == version_id

    @pytest.mark.parametrize("role", ["marketing", "finance", "admin_elsewhere"])
    def test_only_legal_publishes_a_version(self, db: Session, role: str) -> None:
        brand = factories.brand(db)
        version_id = factories.template_version_id(db, brand.id)
        template_id = repository.get_version(db, version_id).template_id  # type: ignore[union-attr]
        if role == "admin_elsewhere":
            who = factories.actor(db, ("admin", factories.brand(db).id))
            expected: type[Exception] = NotFoundError
        else:
            who = factories.actor(db, (role, brand.id))
            expected = ForbiddenError
        with pytest.raises(expected):
            contract_service.add_template_version(db, who, template_id=template_id, body="v2")

    def test_a_creator_cannot_even_find_a_template(self, db: Session) -> None:
        brand = factories.brand(db)
        creator = factories.creator(db, brand.id)
        version_id = factories.template_version_id(db, brand.id)
        template_id = repository.get_version(db, version_id).template_id  # type: ignore[union-attr]
        with pytest.raises(NotFoundError):
            contract_service.add_template_version(
                db, factories.actor(db, ("creator", brand.id), creator_id=creator.id), template_id=template_id, body="x"
            )


class TestCreateContract:
    def test_legal_offers_a_contract_on_a_template_version(self, db: Session) -> None:
        brand = factories.brand(db)
        factories.skus(db, brand.id)
        legal = factories.actor(db, ("legal", brand.id))
        data = _contract_data(db, brand.id)
        contract = contract_service.create_contract(db, legal, brand_id=brand.id, data=data)
        assert (contract.status, contract.model, contract.currency) == ("offered", "cpa", "USD")
        assert contract.template_version_id == data.template_version_id
        assert contract.terms == {
            **factories.CPA_TERMS,
            "volume_tiers": [],
            "reserve_pct": "0",
            "reserve_release_days": 90,
            "attribution_window_days": 30,
        }
        event = _last_event(db)
        assert event.action == "contract.created"
        assert event.after is not None and event.after["terms"] == contract.terms

    def test_an_unknown_template_version_is_a_422_naming_the_field(self, db: Session) -> None:
        brand = factories.brand(db)
        with pytest.raises(ValidationFailedError) as caught:
            contract_service.create_contract(
                db, factories.SYSTEM, brand_id=brand.id, data=_contract_data(db, brand.id, template_version_id=999_999)
            )
        assert caught.value.details == [{"loc": ["template_version_id"], "msg": "no such version"}]

    def test_another_brands_template_cannot_be_used(self, db: Session) -> None:
        brand, other = factories.brand(db), factories.brand(db)
        data = _contract_data(db, brand.id, template_version_id=factories.template_version_id(db, other.id))
        with pytest.raises(ValidationFailedError, match="another brand"):
            contract_service.create_contract(db, factories.SYSTEM, brand_id=brand.id, data=data)

    def test_a_template_for_every_brand_can_be_used_by_any_brand(self, db: Session) -> None:
        brand = factories.brand(db)
        data = _contract_data(db, brand.id, template_version_id=factories.template_version_id(db, None))
        assert contract_service.create_contract(db, factories.SYSTEM, brand_id=brand.id, data=data).id

    def test_a_creator_legal_cannot_see_is_not_found(self, db: Session) -> None:
        brand, other = factories.brand(db), factories.brand(db)
        stranger = factories.creator(db, other.id)
        data = _contract_data(db, brand.id, creator_id=stranger.id)
        with pytest.raises(NotFoundError):
            contract_service.create_contract(db, factories.actor(db, ("legal", brand.id)), brand_id=brand.id, data=data)

    def test_a_tier_missing_from_the_catalog_is_named(self, db: Session) -> None:
        brand = factories.brand(db)
        factories.skus(db, brand.id)
        terms = {**factories.CPA_TERMS, "cpa": {"per": "unit", "rates": {"new": {"a": "1", "gold": "2"}}}}
        data = _contract_data(db, brand.id, terms=ContractTerms.model_validate(terms))
        with pytest.raises(ValidationFailedError) as caught:
            contract_service.create_contract(db, factories.SYSTEM, brand_id=brand.id, data=data)
        assert caught.value.details == [{"loc": ["terms", "cpa", "rates", "new", "gold"], "msg": "unknown tier 'gold'"}]

    def test_marketing_may_not_offer_contracts(self, db: Session) -> None:
        brand = factories.brand(db)
        with pytest.raises(ForbiddenError):
            contract_service.create_contract(
                db, factories.actor(db, ("marketing", brand.id)), brand_id=brand.id, data=_contract_data(db, brand.id)
            )


def _offered(db: Session, *, to_agency: bool = False) -> tuple[Contract, int]:
    """A contract offered to a creator (or an agency), and the id of the party it is offered to."""
    brand = factories.brand(db)
    factories.skus(db, brand.id)
    if to_agency:
        agency = factories.agency(db, brand.id)
        return factories.contract(db, brand.id, agency_id=agency.id), agency.id
    creator = factories.creator(db, brand.id)
    return factories.contract(db, brand.id, creator_id=creator.id), creator.id


class TestAcceptContract:
    def test_the_creator_accepts_and_who_when_and_which_version_are_recorded(self, db: Session) -> None:
        contract, creator_id = _offered(db)
        creator = factories.actor(db, ("creator", contract.brand_id), creator_id=creator_id)
        before = utcnow()
        acceptance = contract_service.accept_contract(db, creator, contract_id=contract.id)
        assert contract.status == "accepted"
        assert acceptance.accepted_by_id == creator.user_id
        assert before <= acceptance.accepted_at <= utcnow()
        assert acceptance.template_version_id == contract.template_version_id
        assert acceptance.terms_sha256 == contract_service.terms_digest(contract.terms)

    def test_the_agency_accepts_its_own_contract(self, db: Session) -> None:
        contract, agency_id = _offered(db, to_agency=True)
        agency = factories.actor(db, ("agency", contract.brand_id), agency_id=agency_id)
        assert contract_service.accept_contract(db, agency, contract_id=contract.id).accepted_by_id == agency.user_id

    def test_accepting_twice_is_a_conflict(self, db: Session) -> None:
        contract, creator_id = _offered(db)
        creator = factories.actor(db, ("creator", contract.brand_id), creator_id=creator_id)
        contract_service.accept_contract(db, creator, contract_id=contract.id)
        with pytest.raises(ConflictError, match="contract is accepted, not offered"):
            contract_service.accept_contract(db, creator, contract_id=contract.id)
        assert (
            len(list(db.scalars(select(ContractAcceptance).where(ContractAcceptance.contract_id == contract.id)))) == 1
        )

    @pytest.mark.parametrize("role", ["legal", "admin"])
    def test_staff_cannot_accept_on_the_partys_behalf(self, db: Session, role: str) -> None:
        contract, _ = _offered(db)
        with pytest.raises(ForbiddenError, match="only the contract's creator or agency"):
            contract_service.accept_contract(db, factories.actor(db, (role, None)), contract_id=contract.id)

    def test_another_creator_cannot_find_the_contract(self, db: Session) -> None:
        contract, _ = _offered(db)
        other = factories.creator(db, contract.brand_id)
        with pytest.raises(NotFoundError):
            contract_service.accept_contract(
                db, factories.actor(db, ("creator", contract.brand_id), creator_id=other.id), contract_id=contract.id
            )

    def test_an_agency_cannot_accept_for_a_creator_on_its_roster(self, db: Session) -> None:
        contract, creator_id = _offered(db)
        agency = factories.agency(db, contract.brand_id)
        from clearline.creator import service as creator_service

        handle = db.get(factories.Creator, creator_id).handle  # type: ignore[union-attr]
        creator_service.import_roster(db, factories.SYSTEM, agency_id=agency.id, data=f"handle\n{handle}\n")
        with pytest.raises(ForbiddenError):
            contract_service.accept_contract(
                db, factories.actor(db, ("agency", contract.brand_id), agency_id=agency.id), contract_id=contract.id
            )

    def test_a_terminated_contract_cannot_be_accepted(self, db: Session) -> None:
        contract, creator_id = _offered(db)
        contract_service.terminate_contract(db, factories.SYSTEM, contract_id=contract.id, reason="withdrawn")
        with pytest.raises(ConflictError, match="terminated"):
            contract_service.accept_contract(
                db, factories.actor(db, ("creator", None), creator_id=creator_id), contract_id=contract.id
            )

    def test_an_ended_contract_cannot_be_accepted(self, db: Session) -> None:
        contract, creator_id = _offered(db)
        contract.ends_at = utcnow() - dt.timedelta(days=1)
        db.flush()
        with pytest.raises(ConflictError, match="ended"):
            contract_service.accept_contract(
                db, factories.actor(db, ("creator", None), creator_id=creator_id), contract_id=contract.id
            )

    def test_the_acceptance_is_audited(self, db: Session) -> None:
        contract, creator_id = _offered(db)
        creator = factories.actor(db, ("creator", None), creator_id=creator_id)
        contract_service.accept_contract(db, creator, contract_id=contract.id)
        event = _last_event(db)
        assert (event.action, event.actor_id, event.before) == (
            "contract.accepted",
            creator.user_id,
            {"status": "offered"},
        )
        assert event.after is not None and event.after["template_version_id"] == contract.template_version_id

    def test_the_api_answers_with_who_accepted_when_and_the_version_number(
        self, client: TestClient, db: Session
    ) -> None:
        contract, creator_id = _offered(db)
        user = factories.user(db, ("creator", contract.brand_id), creator_id=creator_id, password=None)
        key = factories.api_key(db, user)
        answer = client.post(f"/api/v1/contracts/{contract.id}/accept", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["status"], body["accepted_by_id"], body["template_version"]) == ("accepted", user.id, 1)
        assert body["accepted_at"] is not None
        again = client.post(f"/api/v1/contracts/{contract.id}/accept", headers={"Authorization": f"Bearer {key}"})
        assert again.status_code == 409


class TestTerminateContract:
    def test_legal_terminates_with_a_reason(self, db: Session) -> None:
        contract, _ = _offered(db)
        legal = factories.actor(db, ("legal", contract.brand_id))
        contract_service.terminate_contract(db, legal, contract_id=contract.id, reason="brand safety")
        assert contract.status == "terminated"
        assert contract.ends_at is not None
        event = _last_event(db)
        assert (event.action, event.reason, event.before) == (
            "contract.terminated",
            "brand safety",
            {"status": "offered"},
        )

    def test_a_reason_is_required(self, db: Session) -> None:
        contract, _ = _offered(db)
        with pytest.raises(ValidationFailedError, match="reason"):
            contract_service.terminate_contract(db, factories.SYSTEM, contract_id=contract.id, reason="")

    def test_terminating_twice_is_a_conflict(self, db: Session) -> None:
        contract, _ = _offered(db)
        contract_service.terminate_contract(db, factories.SYSTEM, contract_id=contract.id, reason="one")
        with pytest.raises(ConflictError):
            contract_service.terminate_contract(db, factories.SYSTEM, contract_id=contract.id, reason="two")

    def test_finance_can_read_but_not_terminate(self, db: Session) -> None:
        contract, _ = _offered(db)
        with pytest.raises(ForbiddenError):
            contract_service.terminate_contract(
                db, factories.actor(db, ("finance", contract.brand_id)), contract_id=contract.id, reason="x"
            )

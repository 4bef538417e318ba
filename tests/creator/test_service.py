"""Creators, agencies and rosters, and their CSV imports (all rows or none)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.creator import repository
from clearline.creator import service as creator_service
from clearline.creator.schemas import CreatorCreate
from clearline.kit.errors import ConflictError, ForbiddenError, NotFoundError, ValidationFailedError
from clearline.models import AuditEvent, Creator
from tests import factories

HEADER = "handle,name,email,channels,country,vendor_id,payout_reference\n"


def _handles(db: Session) -> list[str]:
    return list(db.scalars(select(Creator.handle).order_by(Creator.handle)))


def _last_event(db: Session) -> AuditEvent:
    return db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()


class TestCreateCreator:
    def test_social_ops_onboards_a_creator_for_the_brand(self, db: Session) -> None:
        brand = factories.brand(db)
        creator = creator_service.create_creator(
            db,
            factories.actor(db, ("social_ops", brand.id)),
            brand_id=brand.id,
            data=CreatorCreate(handle="anna.style", name="Anna", channels=["instagram", "tiktok"], country="DE"),
        )
        assert (creator.brand_id, creator.handle, creator.channels) == (brand.id, "anna.style", ["instagram", "tiktok"])
        assert _last_event(db).after == {
            "handle": "anna.style",
            "name": "Anna",
            "channels": ["instagram", "tiktok"],
            "country": "DE",
            "vendor_id": "",
        }

    def test_payout_details_stay_out_of_the_audit_trail(self, db: Session) -> None:
        brand = factories.brand(db)
        creator_service.create_creator(
            db,
            factories.SYSTEM,
            brand_id=brand.id,
            data=CreatorCreate(handle="anna", name="Anna", payout_reference="DE89 3704 0044 0532 0130 00"),
        )
        assert "DE89" not in str(_last_event(db).after)

    def test_a_taken_handle_is_a_conflict(self, db: Session) -> None:
        brand, other = factories.brand(db), factories.brand(db)
        factories.creator(db, other.id, handle="anna")
        with pytest.raises(ConflictError, match="'anna' is taken"):
            creator_service.create_creator(
                db, factories.SYSTEM, brand_id=brand.id, data=CreatorCreate(handle="anna", name="A")
            )

    @pytest.mark.parametrize("role", ["finance", "legal", "brand_ops"])
    def test_roles_outside_social_ops_and_marketing_may_not_onboard(self, db: Session, role: str) -> None:
        brand = factories.brand(db)
        with pytest.raises(ForbiddenError):
            creator_service.create_creator(
                db,
                factories.actor(db, (role, brand.id)),
                brand_id=brand.id,
                data=CreatorCreate(handle="anna", name="A"),
            )


class TestImportCreators:
    def test_a_good_file_creates_every_creator_normalising_handles_channels_and_country(self, db: Session) -> None:
        brand = factories.brand(db)
        report = creator_service.import_creators(
            db,
            factories.SYSTEM,
            brand_id=brand.id,
            data=HEADER + "Anna.Style,Anna,anna@example.com,Instagram; TikTok,de,V-1,IBAN-1\nben,Ben,,,,,\n",
        )
        assert report.created == 2
        anna = repository.creators_by_handle(db, ["anna.style"])["anna.style"]
        assert (anna.channels, anna.country, anna.vendor_id, anna.payout_reference) == (
            ["instagram", "tiktok"],
            "DE",
            "V-1",
            "IBAN-1",
        )
        assert _handles(db) == ["anna.style", "ben"]

    def test_only_handle_and_name_are_required(self, db: Session) -> None:
        brand = factories.brand(db)
        creator_service.import_creators(db, factories.SYSTEM, brand_id=brand.id, data="handle,name\ncara,Cara\n")
        assert _handles(db) == ["cara"]

    def test_a_file_with_several_bad_rows_names_each_by_line_and_column_and_imports_nothing(self, db: Session) -> None:
        brand = factories.brand(db)
        text = (
            HEADER
            + "good,Good,,,,,\n"  # line 2
            + "x,Too short,,,,,\n"  # line 3
            + "fine,,,,,,\n"  # line 4
            + "okay,Okay,,,DEU,,\n"  # line 5
        )
        with pytest.raises(ValidationFailedError) as caught:
            creator_service.import_creators(db, factories.SYSTEM, brand_id=brand.id, data=text)
        assert [tuple(e["loc"]) for e in caught.value.details] == [
            ("line 3", "handle"),
            ("line 4", "name"),
            ("line 5", "country"),
        ]
        assert caught.value.message.startswith("creator import: 3 bad row(s), nothing imported; first: line 3, handle")
        assert _handles(db) == []

    def test_a_handle_repeated_in_the_file_is_reported_at_its_second_line(self, db: Session) -> None:
        brand = factories.brand(db)
        with pytest.raises(ValidationFailedError) as caught:
            creator_service.import_creators(
                db, factories.SYSTEM, brand_id=brand.id, data="handle,name\nanna,A\nben,B\nANNA,A again\n"
            )
        assert caught.value.details == [{"loc": ["line 4", "handle"], "msg": "anna repeats line 2"}]
        assert _handles(db) == []

    def test_a_handle_that_already_exists_is_reported_and_nothing_is_imported(self, db: Session) -> None:
        brand = factories.brand(db)
        factories.creator(db, brand.id, handle="anna")
        with pytest.raises(ValidationFailedError) as caught:
            creator_service.import_creators(
                db, factories.SYSTEM, brand_id=brand.id, data="handle,name\nben,B\nanna,A\n"
            )
        assert caught.value.details == [{"loc": ["line 3", "handle"], "msg": "anna already exists"}]
        assert _handles(db) == ["anna"]

    def test_a_missing_name_column_fails_the_whole_file(self, db: Session) -> None:
        brand = factories.brand(db)
        with pytest.raises(ValidationFailedError, match="missing column"):
            creator_service.import_creators(db, factories.SYSTEM, brand_id=brand.id, data="handle\nanna\n")

    def test_the_import_is_audited(self, db: Session) -> None:
        brand = factories.brand(db)
        creator_service.import_creators(
            db, factories.SYSTEM, brand_id=brand.id, data="handle,name\nben,B\nanna,A\n", reason="agency file"
        )
        event = _last_event(db)
        assert (event.action, event.after, event.reason) == (
            "creator.imported",
            {"handles": ["anna", "ben"]},
            "agency file",
        )

    def test_staff_of_another_brand_cannot_import_into_it(self, db: Session) -> None:
        brand, other = factories.brand(db), factories.brand(db)
        with pytest.raises(NotFoundError):
            creator_service.import_creators(
                db, factories.actor(db, ("social_ops", other.id)), brand_id=brand.id, data="handle,name\nanna,A\n"
            )

    def test_the_api_answers_422_listing_every_bad_row(self, client: TestClient, db: Session) -> None:
        brand = factories.brand(db)
        key = factories.api_key(db, factories.user(db, ("marketing", brand.id), password=None))
        answer = client.post(
            f"/api/v1/brands/{brand.id}/creators/import",
            headers={"Authorization": f"Bearer {key}"},
            files={"file": ("creators.csv", b"handle,name\n-bad,A\nok_one,\n", "text/csv")},
        )
        assert answer.status_code == 422
        assert [e["loc"] for e in answer.json()["errors"]] == [["line 2", "handle"], ["line 3", "name"]]


class TestImportRoster:
    def test_known_creators_join_the_roster_once(self, db: Session) -> None:
        brand = factories.brand(db)
        agency = factories.agency(db, brand.id)
        anna, ben = factories.creator(db, brand.id, "anna"), factories.creator(db, brand.id, "ben")
        first = creator_service.import_roster(db, factories.SYSTEM, agency_id=agency.id, data="handle\nanna\nBEN\n")
        again = creator_service.import_roster(db, factories.SYSTEM, agency_id=agency.id, data="handle\nanna\n")
        assert (first.created, again.created) == (2, 0)
        assert repository.roster(db, agency.id) == sorted([anna.id, ben.id])

    def test_an_unknown_handle_fails_the_whole_file(self, db: Session) -> None:
        brand = factories.brand(db)
        agency = factories.agency(db, brand.id)
        factories.creator(db, brand.id, "anna")
        with pytest.raises(ValidationFailedError) as caught:
            creator_service.import_roster(db, factories.SYSTEM, agency_id=agency.id, data="handle\nanna\nghost\n\n")
        assert caught.value.details == [{"loc": ["line 3", "handle"], "msg": "no creator 'ghost'"}]
        assert repository.roster(db, agency.id) == []

    def test_a_blank_handle_is_reported(self, db: Session) -> None:
        brand = factories.brand(db)
        agency = factories.agency(db, brand.id)
        with pytest.raises(ValidationFailedError) as caught:
            creator_service.import_roster(db, factories.SYSTEM, agency_id=agency.id, data="handle,note\n,x\n")
        assert caught.value.details == [{"loc": ["line 2", "handle"], "msg": "required"}]

    def test_another_brands_creator_is_unknown_to_the_roster(self, db: Session) -> None:
        brand, other = factories.brand(db), factories.brand(db)
        agency = factories.agency(db, brand.id)
        factories.creator(db, other.id, "stranger")
        with pytest.raises(ValidationFailedError) as caught:
            creator_service.import_roster(db, factories.SYSTEM, agency_id=agency.id, data="handle\nstranger\n")
        assert caught.value.details == [{"loc": ["line 2", "handle"], "msg": "no creator 'stranger'"}]

    def test_a_creator_contracted_with_the_agencys_brand_may_join(self, db: Session) -> None:
        brand, other = factories.brand(db), factories.brand(db)
        factories.skus(db, brand.id)
        agency = factories.agency(db, brand.id)
        guest = factories.creator(db, other.id, "guest")
        factories.contract(db, brand.id, creator_id=guest.id)
        creator_service.import_roster(db, factories.SYSTEM, agency_id=agency.id, data="handle\nguest\n")
        assert repository.roster(db, agency.id) == [guest.id]

    def test_the_agency_itself_may_import_its_roster(self, db: Session) -> None:
        brand = factories.brand(db)
        agency = factories.agency(db, brand.id)
        anna = factories.creator(db, brand.id, "anna")
        me = factories.actor(db, ("agency", brand.id), agency_id=agency.id)
        creator_service.import_roster(db, me, agency_id=agency.id, data="handle\nanna\n")
        assert repository.roster(db, agency.id) == [anna.id]
        assert _last_event(db).actor_id == me.user_id

    def test_another_agency_cannot_find_the_agency(self, db: Session) -> None:
        brand = factories.brand(db)
        agency, rival = factories.agency(db, brand.id), factories.agency(db, brand.id)
        factories.creator(db, brand.id, "anna")
        with pytest.raises(NotFoundError):
            creator_service.import_roster(
                db,
                factories.actor(db, ("agency", brand.id), agency_id=rival.id),
                agency_id=agency.id,
                data="handle\nanna\n",
            )

    def test_finance_can_see_the_agency_but_not_change_its_roster(self, db: Session) -> None:
        brand = factories.brand(db)
        agency = factories.agency(db, brand.id)
        factories.creator(db, brand.id, "anna")
        with pytest.raises(ForbiddenError):
            creator_service.import_roster(
                db, factories.actor(db, ("finance", brand.id)), agency_id=agency.id, data="handle\nanna\n"
            )

    def test_the_roster_import_is_audited(self, db: Session) -> None:
        brand = factories.brand(db)
        agency = factories.agency(db, brand.id)
        anna = factories.creator(db, brand.id, "anna")
        creator_service.import_roster(db, factories.SYSTEM, agency_id=agency.id, data="handle\nanna\n", reason="Q4")
        event = _last_event(db)
        assert (event.action, event.after, event.reason) == (
            "agency.roster_imported",
            {"added": 1, "roster": [anna.id]},
            "Q4",
        )

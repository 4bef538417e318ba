"""The catalog: SKU CSV import (all rows or none), offers and their legal-approved language."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.catalog import repository
from clearline.catalog import service as catalog_service
from clearline.catalog.schemas import OfferCreate
from clearline.kit.errors import ConflictError, ForbiddenError, NotFoundError, ValidationFailedError
from clearline.models import AuditEvent, Sku
from tests import factories

HEADER = "sku,name,category,tier,price,currency,unit_cost,margin_pct,return_rate_pct\n"


def _import(db: Session, brand_id: int, text: str | bytes):  # type: ignore[no-untyped-def]
    return catalog_service.import_skus(db, factories.SYSTEM, brand_id=brand_id, data=text)


def _refused(db: Session, brand_id: int, text: str | bytes) -> ValidationFailedError:
    with pytest.raises(ValidationFailedError) as caught:
        _import(db, brand_id, text)
    return caught.value


def _skus(db: Session, brand_id: int) -> dict[str, Sku]:
    return repository.skus_by_code(db, brand_id=brand_id)


class TestImportSkus:
    def test_a_good_file_creates_every_sku_in_minor_units_and_basis_points(self, db: Session) -> None:
        brand = factories.brand(db)
        report = _import(db, brand.id, factories.SKU_CSV)
        assert (report.created, report.updated) == (3, 0)
        skus = _skus(db, brand.id)
        serum, cleanser = skus["SKU-A1"], skus["SKU-B1"]
        assert (serum.price_amount, serum.unit_cost_amount, serum.margin_bp) == (4900, 1225, None)
        assert (cleanser.price_amount, cleanser.unit_cost_amount, cleanser.margin_bp) == (2400, None, 5500)
        assert (serum.tier, serum.category, serum.currency, serum.return_rate_bp) == ("a", "skincare", "USD", 400)

    def test_optional_columns_may_be_left_out(self, db: Session) -> None:
        brand = factories.brand(db)
        _import(db, brand.id, "sku,name,tier,price,currency,margin_pct\nS1,Soap,A,3.00,eur,40\n")
        soap = _skus(db, brand.id)["S1"]
        assert (soap.tier, soap.currency, soap.category, soap.return_rate_bp, soap.margin_bp) == (
            "a",
            "EUR",
            "",
            0,
            4000,
        )

    def test_a_zero_decimal_currency_is_stored_in_whole_units(self, db: Session) -> None:
        brand = factories.brand(db)
        _import(db, brand.id, HEADER + "J1,Tea,food,a,1500,JPY,600,,0\n")
        assert _skus(db, brand.id)["J1"].price_amount == 1500

    def test_a_re_import_updates_existing_skus_and_adds_new_ones(self, db: Session) -> None:
        brand = factories.brand(db)
        _import(db, brand.id, factories.SKU_CSV)
        report = _import(
            db,
            brand.id,
            HEADER + "SKU-A1,Serum XL,skincare,b,59.00,USD,,60,3\nSKU-D1,Mask,skincare,a,15.00,USD,5.00,,1\n",
        )
        assert (report.created, report.updated) == (1, 1)
        serum = _skus(db, brand.id)["SKU-A1"]
        assert (serum.name, serum.tier, serum.price_amount) == ("Serum XL", "b", 5900)
        assert (serum.unit_cost_amount, serum.margin_bp) == (None, 6000)
        assert serum.updated_at is not None
        assert len(_skus(db, brand.id)) == 4

    def test_a_file_with_several_bad_rows_names_each_by_line_and_column_and_imports_nothing(self, db: Session) -> None:
        brand = factories.brand(db)
        text = (
            HEADER
            + "OK-1,Fine,c,a,10.00,USD,4.00,,1\n"  # line 2
            + "BAD-1,Price,c,a,ten,USD,4.00,,1\n"  # line 3
            + "BAD-2,Currency,c,a,10.00,XXX,4.00,,1\n"  # line 4
            + "OK-2,Fine,c,a,10.00,USD,,30,1\n"  # line 5
            + ",No sku,c,a,10.00,USD,4.00,,1\n"  # line 6
            + "BAD-4,Return,c,a,10.00,USD,4.00,,101\n"  # line 7
        )
        error = _refused(db, brand.id, text)
        assert error.details == [
            {"loc": ["line 3", "price"], "msg": "price: 'ten' is not a decimal number"},
            {"loc": ["line 4", "currency"], "msg": "unknown currency 'XXX'"},
            {"loc": ["line 6", "sku"], "msg": "required"},
            {"loc": ["line 7", "return_rate_pct"], "msg": "101 must be between 0 and 100"},
        ]
        assert error.message.startswith("SKU import: 4 bad row(s), nothing imported; first: line 3, price")
        assert _skus(db, brand.id) == {}

    def test_a_repeated_sku_is_reported_at_its_second_line(self, db: Session) -> None:
        brand = factories.brand(db)
        error = _refused(db, brand.id, factories.SKU_CSV + "SKU-A1,Again,skincare,a,49.00,USD,12.25,,4\n")
        assert error.details == [{"loc": ["line 5", "sku"], "msg": "SKU-A1 repeats line 2"}]
        assert _skus(db, brand.id) == {}

    @pytest.mark.parametrize(("unit_cost", "margin"), [("4.00", "30"), ("", "")], ids=["both", "neither"])
    def test_exactly_one_of_unit_cost_and_margin_pct_is_required(
        self, db: Session, unit_cost: str, margin: str
    ) -> None:
        brand = factories.brand(db)
        error = _refused(db, brand.id, HEADER + f"S1,Soap,c,a,10.00,USD,{unit_cost},{margin},1\n")
        assert error.details == [
            {"loc": ["line 2", "unit_cost"], "msg": "give exactly one of unit_cost and margin_pct"}
        ]

    def test_a_price_finer_than_the_currencys_minor_unit_is_refused(self, db: Session) -> None:
        brand = factories.brand(db)
        error = _refused(db, brand.id, HEADER + "S1,Soap,c,a,10.005,USD,4.00,,1\n")
        assert error.details == [{"loc": ["line 2", "price"], "msg": "more digits than USD allows"}]

    def test_a_unit_cost_finer_than_the_currencys_minor_unit_is_refused(self, db: Session) -> None:
        brand = factories.brand(db)
        error = _refused(db, brand.id, HEADER + "S1,Soap,c,a,1500,JPY,600.5,,1\n")
        assert error.details == [{"loc": ["line 2", "unit_cost"], "msg": "more digits than JPY allows"}]

    @pytest.mark.parametrize("margin", ["100.5", "-1"])
    def test_a_margin_outside_0_to_100_percent_is_refused(self, db: Session, margin: str) -> None:
        brand = factories.brand(db)
        error = _refused(db, brand.id, HEADER + f"S1,Soap,c,a,10.00,USD,,{margin},1\n")
        assert error.details[0]["loc"] == ["line 2", "margin_pct"]

    @pytest.mark.parametrize("column", ["margin_pct", "return_rate_pct"])
    def test_a_percentage_finer_than_a_basis_point_is_refused_not_rounded(self, db: Session, column: str) -> None:
        brand = factories.brand(db)
        margin, returns = ("12.345", "1") if column == "margin_pct" else ("30", "4.125")
        error = _refused(db, brand.id, HEADER + f"S1,Soap,c,a,10.00,USD,,{margin},{returns}\n")
        assert error.details == [{"loc": ["line 2", column], "msg": "at most 2 decimal places (a basis point)"}]

    def test_a_missing_required_column_fails_the_whole_file(self, db: Session) -> None:
        brand = factories.brand(db)
        error = _refused(db, brand.id, "sku,name,price\nS1,Soap,1.00\n")
        assert error.message == "header is missing column(s): tier, currency"
        assert error.details == [
            {"loc": ["line 1", "tier"], "msg": "missing column"},
            {"loc": ["line 1", "currency"], "msg": "missing column"},
        ]

    def test_a_file_with_only_a_header_is_refused(self, db: Session) -> None:
        brand = factories.brand(db)
        assert _refused(db, brand.id, HEADER).details == [{"loc": ["line 2", "file"], "msg": "no data rows"}]

    def test_a_row_with_more_fields_than_the_header_is_refused(self, db: Session) -> None:
        brand = factories.brand(db)
        error = _refused(db, brand.id, HEADER + "S1,Soap,c,a,10.00,USD,4.00,,1,extra\n")
        assert error.details == [{"loc": ["line 2", "row"], "msg": "more fields than the header"}]

    def test_a_file_that_is_not_utf8_is_refused(self, db: Session) -> None:
        brand = factories.brand(db)
        error = _refused(db, brand.id, (HEADER + "S1,Crème,c,a,10.00,USD,4.00,,1\n").encode("latin-1"))
        assert error.message == "file is not UTF-8"

    def test_a_byte_order_mark_and_blank_lines_keep_line_numbers_right(self, db: Session) -> None:
        brand = factories.brand(db)
        text = ("\ufeff" + HEADER + "S1,Soap,c,a,10.00,USD,4.00,,1\n\nS2,Soap,c,a,oops,USD,4.00,,1\n").encode()
        assert _refused(db, brand.id, text).details == [
            {"loc": ["line 4", "price"], "msg": "price: 'oops' is not a decimal number"}
        ]

    def test_the_import_is_audited_with_the_skus_it_touched(self, db: Session) -> None:
        brand = factories.brand(db)
        catalog_service.import_skus(db, factories.SYSTEM, brand_id=brand.id, data=factories.SKU_CSV, reason="Q4 list")
        event = db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
        assert (event.action, event.brand_id, event.reason) == ("sku.imported", brand.id, "Q4 list")
        assert event.after == {"created": 3, "updated": 0, "skus": ["SKU-A1", "SKU-B1", "SKU-C1"]}

    @pytest.mark.parametrize("role", ["marketing", "brand_steward", "finance", "legal"])
    def test_only_brand_ops_may_import(self, db: Session, role: str) -> None:
        brand = factories.brand(db)
        with pytest.raises(ForbiddenError, match="requires role brand_ops"):
            catalog_service.import_skus(
                db, factories.actor(db, (role, brand.id)), brand_id=brand.id, data=factories.SKU_CSV
            )

    def test_brand_ops_of_another_brand_cannot_find_the_brand(self, db: Session) -> None:
        brand, other = factories.brand(db), factories.brand(db)
        with pytest.raises(NotFoundError):
            catalog_service.import_skus(
                db, factories.actor(db, ("brand_ops", other.id)), brand_id=brand.id, data=factories.SKU_CSV
            )

    def test_the_same_sku_code_may_exist_in_two_brands(self, db: Session) -> None:
        brand, other = factories.brand(db), factories.brand(db)
        _import(db, brand.id, factories.SKU_CSV)
        _import(db, other.id, factories.SKU_CSV)
        assert len(_skus(db, brand.id)) == len(_skus(db, other.id)) == 3

    def test_the_api_answers_422_listing_every_bad_row(self, client: TestClient, db: Session) -> None:
        brand = factories.brand(db)
        key = factories.api_key(db, factories.user(db, ("brand_ops", brand.id), password=None))
        text = HEADER + "S1,Soap,c,a,x,USD,4.00,,1\nS2,Soap,c,a,1.00,USD,4.00,30,1\n"
        answer = client.post(
            f"/api/v1/brands/{brand.id}/skus/import",
            headers={"Authorization": f"Bearer {key}"},
            files={"file": ("skus.csv", text.encode(), "text/csv")},
        )
        assert answer.status_code == 422
        assert [e["loc"] for e in answer.json()["errors"]] == [["line 2", "price"], ["line 3", "unit_cost"]]
        assert _skus(db, brand.id) == {}


WINDOW = {"starts_at": dt.datetime(2026, 11, 1, tzinfo=dt.UTC), "ends_at": dt.datetime(2026, 12, 1, tzinfo=dt.UTC)}


class TestCreateOffer:
    def test_an_offer_names_eligible_and_excluded_skus_of_its_brand(self, db: Session) -> None:
        brand = factories.brand(db)
        factories.skus(db, brand.id)
        offer = catalog_service.create_offer(
            db,
            factories.actor(db, ("marketing", brand.id)),
            brand_id=brand.id,
            data=OfferCreate(
                code="BF25", name="Black Friday", eligible_skus=["SKU-A1", "SKU-B1"], excluded_skus=["SKU-C1"], **WINDOW
            ),
        )
        assert (offer.eligible_skus, offer.excluded_skus, offer.language_approved_at) == (
            ["SKU-A1", "SKU-B1"],
            ["SKU-C1"],
            None,
        )

    def test_unknown_skus_are_each_named(self, db: Session) -> None:
        brand = factories.brand(db)
        factories.skus(db, brand.id)
        with pytest.raises(ValidationFailedError) as caught:
            catalog_service.create_offer(
                db,
                factories.SYSTEM,
                brand_id=brand.id,
                data=OfferCreate(
                    code="X1", name="X", eligible_skus=["SKU-A1", "NOPE"], excluded_skus=["GONE"], **WINDOW
                ),
            )
        assert caught.value.details == [
            {"loc": ["eligible_skus", 1], "msg": "unknown SKU 'NOPE'"},
            {"loc": ["excluded_skus", 0], "msg": "unknown SKU 'GONE'"},
        ]

    def test_another_brands_sku_is_unknown(self, db: Session) -> None:
        brand, other = factories.brand(db), factories.brand(db)
        factories.skus(db, other.id)
        with pytest.raises(ValidationFailedError):
            catalog_service.create_offer(
                db,
                factories.SYSTEM,
                brand_id=brand.id,
                data=OfferCreate(code="X1", name="X", eligible_skus=["SKU-A1"], **WINDOW),
            )

    def test_a_repeated_offer_code_is_a_conflict(self, db: Session) -> None:
        brand = factories.brand(db)
        factories.skus(db, brand.id)
        data = OfferCreate(code="X1", name="X", eligible_skus=["SKU-A1"], **WINDOW)
        catalog_service.create_offer(db, factories.SYSTEM, brand_id=brand.id, data=data)
        with pytest.raises(ConflictError):
            catalog_service.create_offer(db, factories.SYSTEM, brand_id=brand.id, data=data)


class TestApproveOfferLanguage:
    def test_legal_approves_and_may_redline_the_language(self, db: Session) -> None:
        brand = factories.brand(db)
        factories.skus(db, brand.id)
        offer = catalog_service.create_offer(
            db,
            factories.SYSTEM,
            brand_id=brand.id,
            data=OfferCreate(code="X1", name="X", eligible_skus=["SKU-A1"], language="Best serum ever!", **WINDOW),
        )
        legal = factories.actor(db, ("legal", brand.id))
        catalog_service.approve_offer_language(
            db, legal, offer_id=offer.id, language="20 % off the serum", reason="claim"
        )
        assert (offer.language, offer.language_approved_by_id) == ("20 % off the serum", legal.user_id)
        assert offer.language_approved_at is not None
        event = db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
        assert event.before == {"language": "Best serum ever!", "approved_by": None}

    def test_marketing_cannot_approve_its_own_offer_language(self, db: Session) -> None:
        brand = factories.brand(db)
        factories.skus(db, brand.id)
        offer = catalog_service.create_offer(
            db,
            factories.SYSTEM,
            brand_id=brand.id,
            data=OfferCreate(code="X1", name="X", eligible_skus=["SKU-A1"], **WINDOW),
        )
        with pytest.raises(ForbiddenError):
            catalog_service.approve_offer_language(
                db, factories.actor(db, ("marketing", brand.id)), offer_id=offer.id, language="ok"
            )

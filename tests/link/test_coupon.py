"""link.coupon: a readable code per creator per campaign, single-use batches, imports of existing codes."""

from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clearline.kit.errors import ConflictError, ForbiddenError, NotFoundError, ValidationFailedError
from clearline.kit.signing import random_code
from clearline.link import coupon
from clearline.models import AuditEvent, CouponCode
from tests import factories
from tests.link.conftest import World, build_world, campaign

BATCH_CODE = re.compile(r"[A-Z0-9]{1,12}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")
PREFIXES = itertools.count(1)
HEADER = "code,creator_handle,valid_from,valid_until,single_use\n"


def brand_codes(db: Session, brand_id: int) -> list[CouponCode]:
    return list(db.scalars(select(CouponCode).where(CouponCode.brand_id == brand_id).order_by(CouponCode.id)))


def issue_code(db: Session, world: World, **overrides: object) -> CouponCode:
    kwargs: dict[str, object] = {"campaign_id": world.campaign.id, "creator_id": world.creator.id, **overrides}
    return coupon.issue_creator_code(db, world.ops, **kwargs)  # type: ignore[arg-type]


def refused_import(db: Session, world: World, text: str) -> list[tuple[str, str]]:
    """The (line, column) of every reported problem; asserts nothing was imported."""
    before = len(brand_codes(db, world.brand.id))
    with pytest.raises(ValidationFailedError) as caught:
        coupon.import_codes(db, world.ops, campaign_id=world.campaign.id, data=text)
    assert len(brand_codes(db, world.brand.id)) == before
    return [(item["loc"][0], item["loc"][1]) for item in caught.value.details]


class TestIssueCreatorCode:
    def test_the_code_is_readable_from_the_handle_and_the_campaign(self, db: Session, world: World) -> None:
        code = issue_code(db, world)
        assert code.code == "ANNAGLOWSPRI"
        assert (code.creator_id, code.campaign_id, code.is_single_use, code.source) == (
            world.creator.id,
            world.campaign.id,
            False,
            "issued",
        )

    def test_the_code_is_valid_for_the_campaigns_window_by_default(self, db: Session, world: World) -> None:
        code = issue_code(db, world)
        assert (code.valid_from, code.valid_until) == (world.campaign.starts_at, world.campaign.ends_at)

    def test_an_earlier_end_of_validity_is_kept(self, db: Session, world: World) -> None:
        until = world.campaign.ends_at - dt.timedelta(days=7)
        assert issue_code(db, world, valid_until=until).valid_until == until

    def test_an_end_of_validity_before_the_campaign_starts_is_refused(self, db: Session, world: World) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            issue_code(db, world, valid_until=world.campaign.starts_at - dt.timedelta(days=1))
        assert caught.value.details[0]["loc"] == ["valid_until"]

    def test_an_end_of_validity_without_a_utc_offset_is_refused_not_a_crash(self, db: Session, world: World) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            issue_code(db, world, valid_until=world.campaign.ends_at.replace(tzinfo=None))
        assert caught.value.details[0]["loc"] == ["valid_until"]

    def test_a_second_code_for_the_same_creator_and_campaign_is_a_conflict(self, db: Session, world: World) -> None:
        first = issue_code(db, world)
        with pytest.raises(ConflictError, match=first.code) as caught:
            issue_code(db, world, code="ANNA20")
        assert caught.value.status_code == 409
        assert [c.code for c in brand_codes(db, world.brand.id)] == [first.code]

    def test_the_same_creator_gets_a_code_in_another_campaign(self, db: Session, world: World) -> None:
        issue_code(db, world)
        summer = campaign(db, world.brand.id, slug="summer-drop")
        assert issue_code(db, world, campaign_id=summer.id).code == "ANNAGLOWSUMM"

    def test_a_collision_on_the_brand_gets_a_numeric_suffix(self, db: Session, world: World) -> None:
        first = issue_code(db, world)
        twin = factories.creator(db, world.brand.id, handle="annaglow")
        triplet = factories.creator(db, world.brand.id, handle="anna_glow")
        second = issue_code(db, world, creator_id=twin.id)
        third = issue_code(db, world, creator_id=triplet.id)
        assert (first.code, second.code, third.code) == ("ANNAGLOWSPRI", "ANNAGLOWSPRI2", "ANNAGLOWSPRI3")

    def test_the_same_readable_code_may_exist_on_another_brand(self, db: Session, world: World) -> None:
        issue_code(db, world)
        other = build_world(db, handle="annaglow")
        assert issue_code(db, other).code == "ANNAGLOWSPRI"

    def test_a_chosen_code_is_uppercased_and_kept(self, db: Session, world: World) -> None:
        assert issue_code(db, world, code=" anna10 ").code == "ANNA10"

    def test_a_chosen_code_taken_on_the_brand_is_a_conflict(self, db: Session, world: World) -> None:
        issue_code(db, world, code="ANNA10")
        with pytest.raises(ConflictError, match="ANNA10"):
            issue_code(db, world, creator_id=world.spare.id, code="anna10")

    @pytest.mark.parametrize("code", ["A1", "ANNA 10", "ANNA%", "-ANNA"])
    def test_a_chosen_code_outside_the_pattern_is_refused(self, db: Session, world: World, code: str) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            issue_code(db, world, code=code)
        assert caught.value.details[0]["loc"] == ["code"]

    def test_issuing_is_audited(self, db: Session, world: World) -> None:
        code = issue_code(db, world)
        event = db.scalar(
            select(AuditEvent).where(AuditEvent.action == "coupon.issued", AuditEvent.entity_id == str(code.id))
        )
        assert event is not None
        assert event.after == {"code": "ANNAGLOWSPRI", "creator": "anna.glow"}

    def test_only_social_ops_or_marketing_issue_codes(self, db: Session, world: World) -> None:
        finance = factories.actor(db, ("finance", world.brand.id))
        with pytest.raises(ForbiddenError):
            coupon.issue_creator_code(db, finance, campaign_id=world.campaign.id, creator_id=world.creator.id)
        marketing = factories.actor(db, ("marketing", world.brand.id))
        made = coupon.issue_creator_code(db, marketing, campaign_id=world.campaign.id, creator_id=world.creator.id)
        assert made.code == "ANNAGLOWSPRI"

    def test_staff_of_another_brand_does_not_see_the_campaign(self, db: Session, world: World) -> None:
        stranger = factories.actor(db, ("social_ops", factories.brand(db).id))
        with pytest.raises(NotFoundError):
            coupon.issue_creator_code(db, stranger, campaign_id=world.campaign.id, creator_id=world.creator.id)


class TestIssueBatch:
    def test_a_batch_of_single_use_codes_is_unique_and_shares_a_batch_id(self, db: Session, world: World) -> None:
        made = coupon.issue_batch(db, world.ops, campaign_id=world.campaign.id, count=500, prefix="vip")
        codes = [c.code for c in made]
        assert len(codes) == len(set(codes)) == 500
        assert all(BATCH_CODE.fullmatch(code) and code.startswith("VIP-") for code in codes)
        assert all(c.is_single_use and c.creator_id is None for c in made)
        assert len({c.batch for c in made}) == 1 and made[0].batch
        assert all((c.valid_from, c.valid_until) == (world.campaign.starts_at, world.campaign.ends_at) for c in made)

    def test_the_prefix_defaults_to_the_campaign_slug(self, db: Session, world: World) -> None:
        (made,) = coupon.issue_batch(db, world.ops, campaign_id=world.campaign.id, count=1)
        assert made.code.startswith("SPRING-")

    def test_a_batch_may_belong_to_a_creator(self, db: Session, world: World) -> None:
        made = coupon.issue_batch(db, world.ops, campaign_id=world.campaign.id, count=3, creator_id=world.creator.id)
        assert {c.creator_id for c in made} == {world.creator.id}
        # Single-use codes do not count as the creator's own code for the campaign.
        assert issue_code(db, world).code == "ANNAGLOWSPRI"

    def test_a_big_batch_never_collides_with_the_codes_already_on_the_brand(self, db: Session, world: World) -> None:
        first = coupon.issue_batch(db, world.ops, campaign_id=world.campaign.id, count=3000, prefix="X")
        second = coupon.issue_batch(db, world.ops, campaign_id=world.campaign.id, count=3000, prefix="X")
        assert not {c.code for c in first} & {c.code for c in second}
        assert (
            db.scalar(select(func.count(func.distinct(CouponCode.code))).where(CouponCode.brand_id == world.brand.id))
            == 6000
        )

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(taken=st.integers(min_value=0, max_value=150), count=st.integers(min_value=1, max_value=50))
    def test_codes_drawn_from_a_tiny_alphabet_still_avoid_every_existing_code(
        self, db: Session, world: World, monkeypatch: pytest.MonkeyPatch, taken: int, count: int
    ) -> None:
        # Two letters and four places give 256 possible codes, so collisions are certain and must be retried.
        monkeypatch.setattr(coupon, "random_code", lambda length, alphabet="": random_code(length, "AB"))
        # Examples share one rolled-back transaction: a fresh prefix gives each its own 256 codes.
        prefix = f"T{next(PREFIXES)}"
        existing = set()
        if taken:
            existing = {
                c.code
                for c in coupon.issue_batch(db, world.ops, campaign_id=world.campaign.id, count=taken, prefix=prefix)
            }
        made = {
            c.code for c in coupon.issue_batch(db, world.ops, campaign_id=world.campaign.id, count=count, prefix=prefix)
        }
        assert len(made) == count
        assert not made & existing

    @pytest.mark.parametrize("count", [0, coupon.BATCH_MAX + 1])
    def test_a_count_outside_the_limits_is_refused(self, db: Session, world: World, count: int) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            coupon.issue_batch(db, world.ops, campaign_id=world.campaign.id, count=count)
        assert caught.value.details[0]["loc"] == ["count"]

    @pytest.mark.parametrize("prefix", ["!!!", "ABCDEFGHIJKLMN"])
    def test_a_prefix_that_is_not_letters_and_digits_is_refused(self, db: Session, world: World, prefix: str) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            coupon.issue_batch(db, world.ops, campaign_id=world.campaign.id, count=1, prefix=prefix)
        assert caught.value.details[0]["loc"] == ["prefix"]

    def test_the_batch_is_audited_once(self, db: Session, world: World) -> None:
        made = coupon.issue_batch(db, world.ops, campaign_id=world.campaign.id, count=20)
        event = db.scalar(
            select(AuditEvent).where(AuditEvent.action == "coupon.batch_issued", AuditEvent.brand_id == world.brand.id)
        )
        assert event is not None
        assert event.after["batch"] == made[0].batch and event.after["count"] == 20


class TestImportCodes:
    def test_a_good_file_imports_every_row(self, db: Session, world: World) -> None:
        text = HEADER + (
            "anna10,anna.glow,,,\n"
            f"SPARE5,{world.spare.handle},2026-11-05T00:00:00Z,2026-11-20T00:00:00Z,false\n"
            "GIFT-1,,,,true\n"
        )
        assert coupon.import_codes(db, world.ops, campaign_id=world.campaign.id, data=text) == 3
        anna, spare, gift = brand_codes(db, world.brand.id)
        assert (anna.code, anna.creator_id, anna.source, anna.is_single_use) == (
            "ANNA10",
            world.creator.id,
            "imported",
            False,
        )
        assert (spare.valid_from, spare.valid_until) == (
            dt.datetime(2026, 11, 5, tzinfo=dt.UTC),
            dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
        )
        assert (gift.creator_id, gift.is_single_use) == (None, True)

    def test_validity_windows_default_to_the_campaigns(self, db: Session, world: World) -> None:
        coupon.import_codes(db, world.ops, campaign_id=world.campaign.id, data=HEADER + "ANNA10,anna.glow,,,\n")
        (imported,) = brand_codes(db, world.brand.id)
        assert (imported.valid_from, imported.valid_until) == (world.campaign.starts_at, world.campaign.ends_at)

    def test_the_optional_columns_may_be_left_out_of_the_header(self, db: Session, world: World) -> None:
        text = "code,creator_handle\nANNA10,anna.glow\n"
        assert coupon.import_codes(db, world.ops, campaign_id=world.campaign.id, data=text.encode()) == 1

    def test_a_file_with_several_bad_rows_reports_each_by_line_and_column_and_imports_nothing(
        self, db: Session, world: World
    ) -> None:
        text = HEADER + (
            "GOOD1,anna.glow,,,\n"
            "bad code,anna.glow,,,\n"
            "GOOD2,anna.glow,yesterday,,\n"
            "GOOD3,anna.glow,2026-11-10T00:00:00Z,2026-11-01T00:00:00Z,\n"
            "GOOD4,anna.glow,,,maybe\n"
            "GOOD5,anna.glow,,,,extra\n"
        )
        assert refused_import(db, world, text) == [
            ("line 3", "code"),
            ("line 4", "valid_from"),
            ("line 5", "valid_until"),
            ("line 6", "single_use"),
            ("line 7", "row"),
        ]
        with pytest.raises(ValidationFailedError, match="5 bad row"):
            coupon.import_codes(db, world.ops, campaign_id=world.campaign.id, data=text)

    def test_a_code_repeated_in_the_file_is_reported_on_its_second_line(self, db: Session, world: World) -> None:
        text = HEADER + "ANNA10,anna.glow,,,\nSPARE5,,,,\nanna10,,,,\n"
        assert refused_import(db, world, text) == [("line 4", "code")]

    def test_a_code_already_on_the_brand_is_reported(self, db: Session, world: World) -> None:
        issue_code(db, world, code="ANNA10")
        assert refused_import(db, world, HEADER + "SPARE5,,,,\nANNA10,,,,\n") == [("line 3", "code")]

    def test_an_unknown_creator_handle_is_reported(self, db: Session, world: World) -> None:
        assert refused_import(db, world, HEADER + "ANNA10,nobody.here,,,\n") == [("line 2", "creator_handle")]

    def test_a_creator_the_importer_cannot_see_is_unknown(self, db: Session, world: World) -> None:
        build_world(db, handle="elsewhere")
        assert refused_import(db, world, HEADER + "ANNA10,elsewhere,,,\n") == [("line 2", "creator_handle")]

    def test_a_window_that_ends_before_it_starts_after_defaults_is_reported(self, db: Session, world: World) -> None:
        late = (world.campaign.ends_at + dt.timedelta(days=1)).isoformat()
        assert refused_import(db, world, HEADER + f"ANNA10,,{late},,\n") == [("line 2", "valid_from")]

    def test_a_file_without_the_required_columns_is_refused(self, db: Session, world: World) -> None:
        assert refused_import(db, world, "code\nANNA10\n") == [("line 1", "creator_handle")]

    def test_an_empty_file_is_refused(self, db: Session, world: World) -> None:
        assert refused_import(db, world, HEADER) == [("line 2", "file")]

    def test_the_import_is_audited(self, db: Session, world: World) -> None:
        coupon.import_codes(db, world.ops, campaign_id=world.campaign.id, data=HEADER + "BBB2,,,,\nA1X,,,,\n")
        event = db.scalar(
            select(AuditEvent).where(AuditEvent.action == "coupon.imported", AuditEvent.brand_id == world.brand.id)
        )
        assert event is not None and event.after == {"codes": ["A1X", "BBB2"]}

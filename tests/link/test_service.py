"""link.service: UTM templates, issuance of the canonical link, rotation, retirement, expiry, sign-off queue."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clearline.kit.errors import ConflictError, ForbiddenError, NotFoundError, ValidationFailedError
from clearline.kit.signing import URL_SAFE
from clearline.link import service, utm
from clearline.models import AuditEvent, Link, LinkChange, UtmTemplate
from tests import factories
from tests.link.conftest import World, build_world, campaign

URL = "https://shop.example.com/p/1?color=red"


def events(db: Session, action: str, entity_id: int | str) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action, AuditEvent.entity_id == str(entity_id))
    return list(db.scalars(stmt.order_by(AuditEvent.id)))


def issue(db: Session, world: World, **overrides: object) -> Link:
    kwargs: dict[str, object] = {
        "campaign_id": world.campaign.id,
        "creator_id": world.creator.id,
        "channel": "instagram",
        "destination_url": URL,
        **overrides,
    }
    return service.issue_link(db, world.ops, **kwargs)  # type: ignore[arg-type]


def live(db: Session, world: World, **overrides: object) -> Link:
    link = issue(db, world, **overrides)
    return service.sign_off(db, world.ops, link_id=link.id)


def field_of(error: ValidationFailedError) -> list[str]:
    return [item["loc"][0] for item in error.details]


class TestUtmTemplate:
    def test_a_brand_without_a_template_uses_the_ga4_defaults(self, db: Session, world: World) -> None:
        assert service.utm_template(db, world.ops, brand_id=world.brand.id) == utm.DEFAULT_TEMPLATE

    def test_the_stored_template_is_returned_once_set(self, db: Session, world: World) -> None:
        params = {"utm_source": "{channel}", "utm_medium": "creator", "utm_campaign": "{brand}-{campaign}"}
        service.set_utm_template(db, world.ops, brand_id=world.brand.id, params=params)
        assert service.utm_template(db, world.ops, brand_id=world.brand.id) == params


class TestSetUtmTemplate:
    PARAMS = {"utm_source": "{channel}", "utm_medium": "affiliate", "utm_campaign": "{brand}-{campaign}"}

    def test_social_ops_replaces_the_template_and_the_change_is_audited(self, db: Session, world: World) -> None:
        stored = service.set_utm_template(
            db, world.ops, brand_id=world.brand.id, params=self.PARAMS, reason="brand prefix"
        )
        assert stored.params == self.PARAMS
        (event,) = events(db, "utm_template.updated", stored.id)
        assert event.before == utm.DEFAULT_TEMPLATE
        assert event.after == self.PARAMS
        assert event.reason == "brand prefix"
        assert event.actor_id == world.ops_user.id

    def test_a_second_change_updates_the_same_row_and_audits_the_previous_value(
        self, db: Session, world: World
    ) -> None:
        first = service.set_utm_template(db, world.ops, brand_id=world.brand.id, params=self.PARAMS)
        changed = {**self.PARAMS, "utm_medium": "creator"}
        second = service.set_utm_template(db, world.ops, brand_id=world.brand.id, params=changed)
        assert second.id == first.id
        assert (
            db.scalar(select(func.count()).select_from(UtmTemplate).where(UtmTemplate.brand_id == world.brand.id)) == 1
        )
        assert events(db, "utm_template.updated", first.id)[-1].before == self.PARAMS

    def test_an_invalid_template_is_refused_naming_the_parameter_and_nothing_is_stored(
        self, db: Session, world: World
    ) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            service.set_utm_template(
                db, world.ops, brand_id=world.brand.id, params={**self.PARAMS, "utm_medium": "Affiliate"}
            )
        assert caught.value.status_code == 422
        assert field_of(caught.value) == ["params.utm_medium"]
        assert service.utm_template(db, world.ops, brand_id=world.brand.id) == utm.DEFAULT_TEMPLATE

    def test_a_missing_required_parameter_is_named(self, db: Session, world: World) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            service.set_utm_template(db, world.ops, brand_id=world.brand.id, params={"utm_source": "{channel}"})
        assert field_of(caught.value) == ["params.utm_medium"]

    def test_only_social_ops_may_change_the_template(self, db: Session, world: World) -> None:
        marketing = factories.actor(db, ("marketing", world.brand.id))
        with pytest.raises(ForbiddenError):
            service.set_utm_template(db, marketing, brand_id=world.brand.id, params=self.PARAMS)

    def test_social_ops_of_another_brand_does_not_see_the_brand(self, db: Session, world: World) -> None:
        other = factories.brand(db)
        stranger = factories.actor(db, ("social_ops", other.id))
        with pytest.raises(NotFoundError):
            service.set_utm_template(db, stranger, brand_id=world.brand.id, params=self.PARAMS)


class TestPreview:
    def test_the_preview_shows_the_utm_values_and_the_landing_url_without_issuing(
        self, db: Session, world: World
    ) -> None:
        shown = service.preview(
            db,
            world.ops,
            campaign_id=world.campaign.id,
            creator_id=world.creator.id,
            channel="TikTok",
            destination_url=URL,
            sku="SKU-A1",
        )
        assert shown["utm"] == {
            "utm_source": "tiktok",
            "utm_medium": "affiliate",
            "utm_campaign": "spring-drop",
            "utm_content": "anna.glow",
            "utm_id": str(world.campaign.id),
            "utm_term": "sku-a1",
        }
        assert str(shown["landing_url"]).startswith(URL + "&utm_source=tiktok&utm_medium=affiliate")
        assert db.scalar(select(func.count()).select_from(Link).where(Link.brand_id == world.brand.id)) == 0

    def test_the_preview_follows_the_brands_template(self, db: Session, world: World) -> None:
        params = {"utm_source": "{channel}", "utm_medium": "creator", "utm_campaign": "{brand}-{campaign}"}
        service.set_utm_template(db, world.ops, brand_id=world.brand.id, params=params)
        shown = service.preview(
            db, world.ops, campaign_id=world.campaign.id, creator_id=world.creator.id, channel="ig", destination_url=URL
        )
        assert shown["utm"] == {
            "utm_source": "ig",
            "utm_medium": "creator",
            "utm_campaign": f"{world.brand.slug}-spring-drop",
        }

    def test_a_destination_off_the_allow_list_is_refused_in_the_preview(self, db: Session, world: World) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            service.preview(
                db,
                world.ops,
                campaign_id=world.campaign.id,
                creator_id=world.creator.id,
                channel="ig",
                destination_url="https://evil.example.net/",
            )
        assert field_of(caught.value) == ["destination_url"]


class TestIssueLink:
    def test_a_new_link_waits_for_signoff_with_a_due_time(self, db: Session, world: World) -> None:
        link = issue(db, world)
        assert link.status == "pending_signoff"
        assert link.signoff_requested_at is not None
        assert link.signoff_due_at == service.calendar().add_hours(link.signoff_requested_at, 1)
        assert link.created_by_id == world.ops_user.id

    def test_the_link_carries_the_rendered_utm_values(self, db: Session, world: World) -> None:
        link = issue(db, world, channel=" Instagram ", sku="SKU-B1")
        assert link.channel == "instagram"
        assert link.utm == {
            "utm_source": "instagram",
            "utm_medium": "affiliate",
            "utm_campaign": "spring-drop",
            "utm_content": "anna.glow",
            "utm_id": str(world.campaign.id),
            "utm_term": "sku-b1",
        }

    def test_the_code_is_eight_characters_of_the_url_safe_alphabet(self, db: Session, world: World) -> None:
        link = issue(db, world)
        assert len(link.code) == service.CODE_LENGTH == 8
        assert set(link.code) <= set(URL_SAFE)

    def test_codes_are_unique_across_links(self, db: Session, world: World) -> None:
        codes = {issue(db, world, creator_id=factories.creator(db, world.brand.id).id).code for _ in range(40)}
        assert len(codes) == 40

    def test_a_second_link_for_the_same_creator_and_campaign_is_a_conflict(self, db: Session, world: World) -> None:
        first = issue(db, world)
        with pytest.raises(ConflictError, match=first.code) as caught:
            issue(db, world, channel="tiktok", destination_url="https://shop.example.com/other")
        assert caught.value.status_code == 409

    def test_per_sku_links_live_beside_the_campaign_link(self, db: Session, world: World) -> None:
        general = issue(db, world)
        serum = issue(db, world, sku="SKU-A1")
        towel = issue(db, world, sku="SKU-C1")
        assert len({general.code, serum.code, towel.code}) == 3
        assert (general.sku, serum.sku, towel.sku) == ("", "SKU-A1", "SKU-C1")

    def test_a_second_link_for_the_same_sku_is_a_conflict(self, db: Session, world: World) -> None:
        issue(db, world, sku="SKU-A1")
        with pytest.raises(ConflictError, match="SKU-A1"):
            issue(db, world, sku="SKU-A1")

    def test_another_creator_gets_its_own_canonical_link(self, db: Session, world: World) -> None:
        issue(db, world)
        assert issue(db, world, creator_id=world.spare.id).creator_id == world.spare.id

    def test_the_same_creator_gets_a_new_canonical_link_in_another_campaign(self, db: Session, world: World) -> None:
        issue(db, world)
        summer = campaign(db, world.brand.id, slug="summer-drop")
        link = issue(db, world, campaign_id=summer.id)
        assert (link.campaign_id, link.utm["utm_campaign"]) == (summer.id, "summer-drop")

    def test_an_unknown_sku_is_refused(self, db: Session, world: World) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            issue(db, world, sku="SKU-NOPE")
        assert field_of(caught.value) == ["sku"]

    def test_a_sku_of_another_brand_is_unknown_here(self, db: Session, world: World) -> None:
        other = factories.brand(db)
        factories.skus(db, other.id, "sku,name,category,tier,price,currency,unit_cost\nSKU-Z9,Gel,skin,a,9.00,USD,3\n")
        with pytest.raises(ValidationFailedError):
            issue(db, world, sku="SKU-Z9")

    def test_the_link_expires_with_the_campaign_by_default(self, db: Session, world: World) -> None:
        assert issue(db, world).expires_at == world.campaign.ends_at

    def test_an_earlier_expiry_is_kept(self, db: Session, world: World) -> None:
        soon = world.campaign.ends_at - dt.timedelta(days=10)
        assert issue(db, world, expires_at=soon).expires_at == soon

    def test_an_expiry_after_the_campaign_ends_is_refused(self, db: Session, world: World) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            issue(db, world, expires_at=world.campaign.ends_at + dt.timedelta(seconds=1))
        assert field_of(caught.value) == ["expires_at"]

    def test_an_expiry_in_the_past_is_refused(self, db: Session, world: World) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            issue(db, world, expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        assert field_of(caught.value) == ["expires_at"]

    def test_an_expiry_without_a_utc_offset_is_refused_not_a_crash(self, db: Session, world: World) -> None:
        naive = (world.campaign.ends_at - dt.timedelta(days=1)).replace(tzinfo=None)
        with pytest.raises(ValidationFailedError) as caught:
            issue(db, world, expires_at=naive)
        assert field_of(caught.value) == ["expires_at"]

    def test_a_blank_channel_is_refused(self, db: Session, world: World) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            issue(db, world, channel="  ")
        assert field_of(caught.value) == ["channel"]

    def test_a_channel_longer_than_its_column_is_refused(self, db: Session, world: World) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            issue(db, world, channel="x" * 33)
        assert field_of(caught.value) == ["channel"]

    def test_a_destination_longer_than_its_column_is_refused(self, db: Session, world: World) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            issue(db, world, destination_url=URL + "&q=" + "x" * 2000)
        assert field_of(caught.value) == ["destination_url"]

    def test_a_destination_off_the_allow_list_is_refused(self, db: Session, world: World) -> None:
        with pytest.raises(ValidationFailedError) as caught:
            issue(db, world, destination_url="https://shop.example.com.evil.net/")
        assert field_of(caught.value) == ["destination_url"]

    def test_a_draft_stays_draft_until_submitted(self, db: Session, world: World) -> None:
        link = issue(db, world, submit=False)
        assert (link.status, link.signoff_due_at) == ("draft", None)

    def test_issuing_is_audited_and_announced_to_the_redirect_workers(self, db: Session, world: World) -> None:
        link = issue(db, world, sku="SKU-A1", is_single_use=True)
        (event,) = events(db, "link.issued", link.id)
        assert event.after["code"] == link.code
        assert event.after["creator"] == "anna.glow"
        assert event.after["single_use"] is True
        assert len(events(db, "link.submitted", link.id)) == 1
        assert db.scalar(select(func.count()).select_from(LinkChange).where(LinkChange.link_id == link.id)) >= 1

    def test_only_social_ops_issues_links(self, db: Session, world: World) -> None:
        marketing = factories.actor(db, ("marketing", world.brand.id))
        with pytest.raises(ForbiddenError):
            service.issue_link(
                db,
                marketing,
                campaign_id=world.campaign.id,
                creator_id=world.creator.id,
                channel="ig",
                destination_url=URL,
            )

    def test_social_ops_of_another_brand_does_not_see_the_campaign(self, db: Session, world: World) -> None:
        stranger = factories.actor(db, ("social_ops", factories.brand(db).id))
        with pytest.raises(NotFoundError):
            service.issue_link(
                db,
                stranger,
                campaign_id=world.campaign.id,
                creator_id=world.creator.id,
                channel="ig",
                destination_url=URL,
            )


class TestSubmitForSignoff:
    def test_a_draft_moves_to_pending_signoff(self, db: Session, world: World) -> None:
        link = issue(db, world, submit=False)
        service.submit_for_signoff(db, world.ops, link_id=link.id)
        assert link.status == "pending_signoff"
        assert link.signoff_due_at is not None

    def test_a_link_already_pending_cannot_be_submitted_again(self, db: Session, world: World) -> None:
        link = issue(db, world)
        with pytest.raises(ConflictError):
            service.submit_for_signoff(db, world.ops, link_id=link.id)


class TestRotate:
    NEW = "https://shop.example.com/p/2?ref=spring"

    def test_rotation_keeps_the_code_and_points_at_the_new_destination(self, db: Session, world: World) -> None:
        link = live(db, world)
        code = link.code
        rotated = service.rotate(db, world.ops, link_id=link.id, destination_url=self.NEW, reason="p/1 sold out")
        assert (rotated.id, rotated.code, rotated.status) == (link.id, code, "live")
        assert rotated.destination_url == self.NEW

    def test_rotation_is_audited_with_its_reason(self, db: Session, world: World) -> None:
        link = live(db, world)
        service.rotate(db, world.ops, link_id=link.id, destination_url=self.NEW, reason="p/1 sold out")
        (event,) = events(db, "link.rotated", link.id)
        assert event.before == {"destination_url": URL}
        assert event.after == {"destination_url": self.NEW}
        assert event.reason == "p/1 sold out"
        assert event.actor_id == world.ops_user.id

    def test_rotation_resets_the_health_of_the_old_destination(self, db: Session, world: World) -> None:
        link = live(db, world)
        link.health, link.broken_since = "broken", dt.datetime.now(dt.UTC)
        service.rotate(db, world.ops, link_id=link.id, destination_url=self.NEW, reason="fixed landing page")
        assert (link.health, link.broken_since, link.escalated_at) == ("unknown", None, None)

    def test_a_destination_off_the_allow_list_is_refused_and_the_link_is_unchanged(
        self, db: Session, world: World
    ) -> None:
        link = live(db, world)
        with pytest.raises(ValidationFailedError) as caught:
            service.rotate(db, world.ops, link_id=link.id, destination_url="https://evil.example.net/", reason="x")
        assert field_of(caught.value) == ["destination_url"]
        assert link.destination_url == URL
        assert events(db, "link.rotated", link.id) == []

    @pytest.mark.parametrize("reason", ["", "   "])
    def test_a_rotation_needs_a_reason(self, db: Session, world: World, reason: str) -> None:
        link = live(db, world)
        with pytest.raises(ValidationFailedError) as caught:
            service.rotate(db, world.ops, link_id=link.id, destination_url=self.NEW, reason=reason)
        assert field_of(caught.value) == ["reason"]

    def test_a_retired_link_cannot_be_rotated(self, db: Session, world: World) -> None:
        link = live(db, world)
        service.retire(db, world.ops, link_id=link.id, reason="campaign paused")
        with pytest.raises(ConflictError):
            service.rotate(db, world.ops, link_id=link.id, destination_url=self.NEW, reason="x")

    def test_only_social_ops_rotates(self, db: Session, world: World) -> None:
        link = live(db, world)
        creator = factories.actor(db, ("creator", world.brand.id), creator_id=world.creator.id)
        with pytest.raises(ForbiddenError):
            service.rotate(db, creator, link_id=link.id, destination_url=self.NEW, reason="mine")
        assert link.destination_url == URL


class TestRetire:
    def test_a_retired_link_is_audited_with_its_reason(self, db: Session, world: World) -> None:
        link = live(db, world)
        service.retire(db, world.ops, link_id=link.id, reason="creator left")
        assert link.status == "retired"
        (event,) = events(db, "link.retired", link.id)
        assert (event.before, event.after, event.reason) == ({"status": "live"}, {"status": "retired"}, "creator left")

    def test_a_link_cannot_be_retired_twice(self, db: Session, world: World) -> None:
        link = live(db, world)
        service.retire(db, world.ops, link_id=link.id, reason="creator left")
        with pytest.raises(ConflictError):
            service.retire(db, world.ops, link_id=link.id, reason="again")

    def test_a_retirement_needs_a_reason(self, db: Session, world: World) -> None:
        link = live(db, world)
        with pytest.raises(ValidationFailedError) as caught:
            service.retire(db, world.ops, link_id=link.id, reason=" ")
        assert field_of(caught.value) == ["reason"]
        assert link.status == "live"


class TestExpireDue:
    def test_links_past_their_expiry_expire_and_others_stay(self, db: Session, world: World) -> None:
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        pending = issue(db, world, expires_at=soon)
        going_live = live(db, world, sku="SKU-A1", expires_at=soon)
        draft = issue(db, world, sku="SKU-B1", expires_at=soon, submit=False)
        lasting = live(db, world, sku="SKU-C1")
        retired = issue(db, world, creator_id=world.spare.id, expires_at=soon)
        service.retire(db, world.ops, link_id=retired.id, reason="dropped")

        count = service.expire_due(db, factories.SYSTEM, now=soon + dt.timedelta(seconds=1))

        assert count == 3
        assert [x.status for x in (pending, going_live, draft)] == ["expired"] * 3
        assert (lasting.status, retired.status) == ("live", "retired")

    def test_expiry_is_audited(self, db: Session, world: World) -> None:
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        link = live(db, world, expires_at=soon)
        service.expire_due(db, factories.SYSTEM, now=soon)
        (event,) = events(db, "link.expired", link.id)
        assert (event.before, event.after) == ({"status": "live"}, {"status": "expired"})

    def test_nothing_is_due_before_the_expiry(self, db: Session, world: World) -> None:
        issue(db, world)
        assert service.expire_due(db, factories.SYSTEM, now=dt.datetime.now(dt.UTC)) == 0


class TestSignoffQueue:
    def test_pending_links_are_listed_in_order_of_their_due_time(self, db: Session, world: World) -> None:
        first = issue(db, world)
        second = issue(db, world, creator_id=world.spare.id)
        signed = live(db, world, sku="SKU-A1")
        second.signoff_due_at = first.signoff_due_at - dt.timedelta(minutes=5)
        queue = service.signoff_queue(db, world.ops, brand_id=world.brand.id, now=second.signoff_requested_at)
        assert [x.id for x in queue["pending"]] == [second.id, first.id]
        assert signed not in queue["pending"]
        assert queue["breaches"] == []

    def test_an_overdue_pending_link_is_a_breach(self, db: Session, world: World) -> None:
        link = issue(db, world)
        queue = service.signoff_queue(
            db, world.ops, brand_id=world.brand.id, now=link.signoff_due_at + dt.timedelta(seconds=1)
        )
        assert queue["breaches"] == [link]

    def test_a_link_signed_off_after_its_due_time_stays_a_breach(self, db: Session, world: World) -> None:
        link = issue(db, world)
        link.signoff_due_at = link.signoff_requested_at - dt.timedelta(minutes=1)
        service.sign_off(db, world.ops, link_id=link.id)
        queue = service.signoff_queue(db, world.ops, brand_id=world.brand.id)
        assert queue["pending"] == [] and queue["breaches"] == [link]

    def test_the_queue_only_holds_the_brands_links(self, db: Session, world: World) -> None:
        issue(db, world)
        other = build_world(db, handle="other.brand.creator")
        issue(db, other)
        queue = service.signoff_queue(db, world.ops, brand_id=world.brand.id)
        assert {x.brand_id for x in queue["pending"]} == {world.brand.id}

    def test_social_ops_of_another_brand_gets_not_found(self, db: Session, world: World) -> None:
        stranger = factories.actor(db, ("social_ops", factories.brand(db).id))
        with pytest.raises(NotFoundError):
            service.signoff_queue(db, stranger, brand_id=world.brand.id)


class TestReadiness:
    def test_a_live_link_of_a_contracted_creator_is_ready(self, db: Session, world: World) -> None:
        link = live(db, world)
        assert service.readiness(db, link) == {"contract": True, "signoff": True, "health": True}

    def test_a_pending_link_of_an_uncontracted_creator_lacks_contract_and_signoff(
        self, db: Session, world: World
    ) -> None:
        link = issue(db, world, creator_id=world.spare.id)
        assert service.readiness(db, link) == {"contract": False, "signoff": False, "health": True}

    def test_a_broken_landing_page_is_not_ready(self, db: Session, world: World) -> None:
        link = live(db, world)
        link.health = "broken"
        assert service.readiness(db, link)["health"] is False

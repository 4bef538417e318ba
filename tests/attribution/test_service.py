"""C6 attribution: a creator's coupon, else a signed click id inside the window, else a UTM last touch."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from clearline.attribution import service as attribution_service
from clearline.kit.signing import Signer
from clearline.models import CouponCode
from tests.commission.program import Program, signer

LINE = [("SKU-A1", 1, "49.00")]


def _landing(**params: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"https://shop.example.com/p/1?{query}"


class TestAttribute:
    def test_a_creator_coupon_attributes_the_order_to_that_creator(self, program: Program) -> None:
        program.creator("anna.glow")
        code = program.coupon("anna.glow")
        order = program.order(at=program.at(5), lines=LINE, coupon=code.lower())
        found = program.attribution(order)
        assert (found.via, found.creator_id, found.coupon_code) == ("coupon", program.creators["anna.glow"].id, code)
        assert found.campaign_id == program.campaign.id
        assert found.reason.startswith("Attributed by rule 1 (coupon): coupon " + code)

    def test_a_coupon_beats_a_click_of_the_same_creator(self, program: Program) -> None:
        program.creator("anna.glow")
        code = program.coupon("anna.glow")
        clid = program.click(program.link("anna.glow"), at=program.at(4))
        order = program.order(at=program.at(5), lines=LINE, coupon=code, click_id=clid)
        found = program.attribution(order)
        assert found.via == "coupon"
        assert found.conflict is None

    def test_a_click_beats_a_utm_touch(self, program: Program) -> None:
        program.creator("anna.glow")
        program.creator("ben.makes")
        clid = program.click(program.link("anna.glow"), at=program.at(4))
        landing = _landing(utm_campaign="spring", utm_content="ben.makes")
        order = program.order(at=program.at(5), lines=LINE, click_id=clid, landing_url=landing)
        found = program.attribution(order)
        assert (found.via, found.creator_id) == ("click", program.creators["anna.glow"].id)
        assert found.conflict is not None and found.conflict["others"] == [{"via": "utm", "creator": "ben.makes"}]

    def test_a_signed_click_inside_the_contract_window_attributes(self, program: Program) -> None:
        program.creator("anna.glow", terms={**_cpa(), "attribution_window_days": 7})
        link = program.link("anna.glow")
        clid = program.click(link, at=program.at(3))
        order = program.order(at=program.at(9, hours=11), lines=LINE, click_id=clid)
        found = program.attribution(order)
        assert (found.via, found.link_id, found.click_id) == ("click", link.id, clid.split(".")[0])
        assert "inside the 7-day window" in found.reason
        assert f"link {link.code}" in found.reason
        assert len(program.lines(order)) == 1

    def test_a_signed_click_older_than_the_contract_window_does_not_attribute(self, program: Program) -> None:
        program.creator("anna.glow", terms={**_cpa(), "attribution_window_days": 7})
        clid = program.click(program.link("anna.glow"), at=program.at(3))
        order = program.order(at=program.at(10, hours=13), lines=LINE, click_id=clid)
        found = program.attribution(order)
        assert found.via == "none" and found.creator_id is None
        assert "outside the 7-day window" in found.reason
        assert program.lines(order, current_only=False) == []

    def test_a_click_after_the_order_does_not_attribute(self, program: Program) -> None:
        program.creator("anna.glow")
        clid = program.click(program.link("anna.glow"), at=program.at(6))
        order = program.order(at=program.at(5), lines=LINE, click_id=clid)
        assert program.attribution(order).via == "none"

    def test_a_forged_click_id_is_ignored_with_a_note(self, program: Program) -> None:
        program.creator("anna.glow")
        link = program.link("anna.glow")
        program.click(link, at=program.at(4), raw="CLK-REAL-1")
        forged = Signer("not-the-secret", "click-id").sign("CLK-REAL-1")
        order = program.order(at=program.at(5), lines=LINE, click_id=forged)
        found = program.attribution(order)
        assert found.via == "none"
        assert "signature does not verify (forged or altered): ignored" in found.reason

    def test_an_altered_click_id_is_ignored_with_a_note(self, program: Program) -> None:
        program.creator("anna.glow")
        program.creator("ben.makes")
        program.click(program.link("anna.glow"), at=program.at(4), raw="CLK-ANNA-1")
        program.click(program.link("ben.makes"), at=program.at(4), raw="CLK-BENN-1")
        signature = signer().sign("CLK-ANNA-1").split(".")[1]
        order = program.order(at=program.at(5), lines=LINE, click_id=f"CLK-BENN-1.{signature}")
        found = program.attribution(order)
        assert found.via == "none"
        assert "forged or altered" in found.reason

    def test_a_click_id_without_a_signature_is_ignored(self, program: Program) -> None:
        program.creator("anna.glow")
        program.click(program.link("anna.glow"), at=program.at(4), raw="CLK-BARE-1")
        order = program.order(at=program.at(5), lines=LINE, click_id="CLK-BARE-1")
        assert program.attribution(order).via == "none"

    def test_a_bot_click_never_attributes(self, program: Program) -> None:
        program.creator("anna.glow")
        clid = program.click(program.link("anna.glow"), at=program.at(4), is_bot=True)
        order = program.order(at=program.at(5), lines=LINE, click_id=clid)
        found = program.attribution(order)
        assert found.via == "none"
        assert "is not on record as a human click" in found.reason
        assert program.lines(order, current_only=False) == []

    def test_a_signed_click_id_that_was_never_logged_does_not_attribute(self, program: Program) -> None:
        program.creator("anna.glow")
        order = program.order(at=program.at(5), lines=LINE, click_id=signer().sign("CLK-NEVER-SEEN"))
        found = program.attribution(order)
        assert found.via == "none" and "CLK-NEVER-SEEN is not on record" in found.reason

    def test_a_clid_inside_the_landing_url_attributes(self, program: Program) -> None:
        program.creator("anna.glow")
        clid = program.click(program.link("anna.glow"), at=program.at(4))
        order = program.order(at=program.at(5), lines=LINE, landing_url=_landing(ref="x", clid=clid))
        found = program.attribution(order)
        assert (found.via, found.creator_id) == ("click", program.creators["anna.glow"].id)

    def test_a_utm_last_touch_attributes_by_handle_and_campaign_slug(self, program: Program) -> None:
        program.creator("anna.glow")
        landing = _landing(utm_source="instagram", utm_campaign="spring", utm_content="anna.glow")
        order = program.order(at=program.at(5), lines=LINE, landing_url=landing)
        found = program.attribution(order)
        assert (found.via, found.creator_id, found.campaign_id) == (
            "utm",
            program.creators["anna.glow"].id,
            program.campaign.id,
        )
        assert "UTM last touch" in found.reason and "anna.glow" in found.reason and "spring" in found.reason
        assert len(program.lines(order)) == 1

    def test_a_utm_naming_an_unknown_creator_does_not_attribute(self, program: Program) -> None:
        program.creator("anna.glow")
        order = program.order(
            at=program.at(5), lines=LINE, landing_url=_landing(utm_campaign="spring", utm_content="nobody")
        )
        found = program.attribution(order)
        assert found.via == "none" and "match no creator or campaign" in found.reason

    def test_a_utm_touch_long_after_the_campaign_does_not_attribute(self, program: Program) -> None:
        program.creator("anna.glow")
        landing = _landing(utm_campaign="spring", utm_content="anna.glow")
        order = program.order(at=program.campaign.ends_at + dt.timedelta(days=31), lines=LINE, landing_url=landing)
        found = program.attribution(order)
        assert found.via == "none" and "outside the campaign" in found.reason

    def test_coupon_of_one_creator_and_click_of_another_is_a_conflict_for_fraud_review(self, program: Program) -> None:
        program.creator("anna.glow")
        program.creator("ben.makes")
        code = program.coupon("anna.glow")
        clid = program.click(program.link("ben.makes"), at=program.at(4))
        order = program.order(at=program.at(5), lines=LINE, coupon=code, click_id=clid)
        found = program.attribution(order)
        assert (found.via, found.creator_id) == ("coupon", program.creators["anna.glow"].id)
        assert found.conflict == {
            "winner": {"via": "coupon", "creator": "anna.glow"},
            "others": [{"via": "click", "creator": "ben.makes"}],
            "status": "fraud_review",
        }
        assert "Conflict: click says ben.makes — raised to fraud review." in found.reason
        assert {c.creator_id for c in program.lines(order)} == {program.creators["anna.glow"].id}

    def test_two_creators_coupons_on_one_order_are_a_conflict_and_the_first_wins(self, program: Program) -> None:
        program.creator("anna.glow")
        program.creator("ben.makes")
        codes = [program.coupon("ben.makes"), program.coupon("anna.glow")]
        order = program.order(at=program.at(5), lines=LINE, coupon=codes)
        found = program.attribution(order)
        assert (found.via, found.coupon_code) == ("coupon", codes[0])
        assert found.conflict is not None and found.conflict["others"] == [{"via": "coupon", "creator": "anna.glow"}]
        assert found.conflict["status"] == "fraud_review"

    def test_an_order_with_no_touch_says_why_it_is_not_attributed(self, program: Program) -> None:
        order = program.order(at=program.at(5), lines=LINE)
        found = program.attribution(order)
        assert found.via == "none"
        assert found.reason == "Not attributed: no creator coupon, no valid signed click id and no UTM touch."

    def test_a_creator_without_an_accepted_contract_is_attributed_but_earns_nothing(self, program: Program) -> None:
        program.creator("anna.glow", accept=False)
        code = program.coupon("anna.glow")
        order = program.order(at=program.at(5), lines=LINE, coupon=code)
        found = program.attribution(order)
        assert (found.via, found.creator_id, found.contract_id) == ("coupon", program.creators["anna.glow"].id, None)
        assert "no accepted contract with the brand at order time: no commission" in found.reason
        assert program.lines(order, current_only=False) == []

    def test_an_accepted_contract_is_named_in_the_reason(self, program: Program) -> None:
        program.creator("anna.glow")
        code = program.coupon("anna.glow")
        order = program.order(at=program.at(5), lines=LINE, coupon=code)
        contract = program.contracts["anna.glow"]
        assert program.attribution(order).contract_id == contract.id
        assert f"Contract {contract.id} applies." in program.attribution(order).reason

    def test_an_order_before_the_contract_started_earns_nothing(self, program: Program) -> None:
        program.creator("anna.glow")
        code = program.coupon("anna.glow")
        coupon = program.db.scalar(select(CouponCode).where(CouponCode.code == code))
        assert coupon is not None
        coupon.valid_from = program.campaign.starts_at = program.start - dt.timedelta(days=10)
        order = program.order(at=program.at(-2), lines=LINE, coupon=code)
        found = program.attribution(order)
        assert found.via == "coupon" and found.contract_id is None
        assert program.lines(order, current_only=False) == []

    def test_a_code_that_belongs_to_no_creator_is_noted(self, program: Program) -> None:
        order = program.order(at=program.at(5), lines=LINE, coupon="WELCOME10")
        found = program.attribution(order)
        assert found.via == "none" and "coupon WELCOME10 is not a creator code" in found.reason

    def test_every_attribution_carries_a_readable_reason(self, program: Program) -> None:
        program.creator("anna.glow")
        code = program.coupon("anna.glow")
        clid = program.click(program.link("anna.glow"), at=program.at(4))
        landing = _landing(utm_campaign="spring", utm_content="anna.glow")
        orders = [
            program.order(at=program.at(5), lines=LINE, coupon=code),
            program.order(at=program.at(5), lines=LINE, click_id=clid),
            program.order(at=program.at(5), lines=LINE, landing_url=landing),
            program.order(at=program.at(5), lines=LINE),
        ]
        reasons = [program.attribution(o).reason for o in orders]
        assert all(reason.endswith(".") and len(reason) > 40 for reason in reasons)
        assert [r.split(":")[0] for r in reasons] == [
            "Attributed by rule 1 (coupon)",
            "Attributed by rule 2 (signed click)",
            "Attributed by rule 3 (UTM last touch)",
            "Not attributed",
        ]


class TestCurrent:
    def test_current_returns_the_one_current_attribution_of_an_order(self, program: Program) -> None:
        program.creator("anna.glow")
        order = program.order(at=program.at(5), lines=LINE, coupon=program.coupon("anna.glow"))
        assert attribution_service.current(program.db, order.id) == program.attribution(order)

    def test_current_is_none_for_an_unknown_order(self, program: Program) -> None:
        assert attribution_service.current(program.db, 987654321) is None


def _cpa() -> dict[str, object]:
    return {"model": "cpa", "currency": "USD", "cpa": {"per": "unit", "rates": {"new": {"a": "8.00", "b": "4.00"}}}}

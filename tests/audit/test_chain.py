"""The audit trail: every mutation is one link of a hash chain, and tampering is found and named."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from clearline.audit import service as audit
from clearline.auth.actor import Actor
from clearline.brand import service as brand_service
from clearline.brand.schemas import BrandUpdate
from clearline.cli.main import app as cli
from clearline.kit.db import unit_of_work
from clearline.models import AuditEvent, AuditHead
from tests import factories
from tests.auth.matrix import (
    Endpoint,
    World,
    caller,
    client_for,
    rolled_back_session,
    send,
    shared_world,
)
from tests.auth.routes import ENDPOINTS
from tests.committed import session_on

ACTION = re.compile(r"^[a-z_]+\.[a-z_]+$")

# Each mutating route: the audit action(s) it writes, and whether the last event keeps a "before" state.
# None: nothing to audit — a preview changes nothing; signed intake keeps every event raw in the inbox.
AUDITED: dict[str, tuple[tuple[str, ...], bool] | None] = {
    "POST /api/v1/users": (("user.created",), False),
    "POST /api/v1/users/{user_id}/grants": (("role_grant.created",), False),
    "POST /api/v1/api-keys": (("api_key.created",), False),
    "DELETE /api/v1/api-keys/{key_id}": (("api_key.revoked",), True),
    "POST /api/v1/brands": (("brand.created",), False),
    "PATCH /api/v1/brands/{brand_id}": (("brand.updated",), True),
    "POST /api/v1/brands/{brand_id}/campaigns": (("campaign.created",), False),
    "POST /api/v1/brands/{brand_id}/skus/import": (("sku.imported",), False),
    "POST /api/v1/brands/{brand_id}/offers": (("offer.created",), False),
    "POST /api/v1/offers/{offer_id}/language-approval": (("offer.language_approved",), True),
    "POST /api/v1/brands/{brand_id}/creators": (("creator.created",), False),
    "POST /api/v1/brands/{brand_id}/creators/import": (("creator.imported",), False),
    "POST /api/v1/brands/{brand_id}/agencies": (("agency.created",), False),
    "POST /api/v1/agencies/{agency_id}/roster/import": (("agency.roster_imported",), False),
    "POST /api/v1/contract-templates": (("contract_template.created",), False),
    "POST /api/v1/contract-templates/{template_id}/versions": (("contract_template.versioned",), True),
    "POST /api/v1/brands/{brand_id}/contracts": (("contract.created",), False),
    "POST /api/v1/contracts/{contract_id}/accept": (("contract.accepted",), True),
    "POST /api/v1/contracts/{contract_id}/terminate": (("contract.terminated",), True),
    "PUT /api/v1/brands/{brand_id}/utm-template": (("utm_template.updated",), True),
    "POST /api/v1/links/preview": None,
    "POST /api/v1/links": (("link.issued", "link.submitted"), True),
    "POST /api/v1/links/{link_id}/submit": (("link.submitted",), True),
    "POST /api/v1/links/{link_id}/signoff": (("link.signed_off",), True),
    "POST /api/v1/links/{link_id}/rotate": (("link.rotated",), True),
    "POST /api/v1/links/{link_id}/retire": (("link.retired",), True),
    "POST /api/v1/campaigns/{campaign_id}/coupons": (("coupon.issued",), False),
    "POST /api/v1/campaigns/{campaign_id}/coupon-batches": (("coupon.batch_issued",), False),
    "POST /api/v1/campaigns/{campaign_id}/coupons/import": (("coupon.imported",), False),
    "POST /api/v1/postbacks/{brand_slug}/orders": None,
    "POST /api/v1/postbacks/{brand_slug}/refunds": None,
    "POST /api/v1/integrations/shopify/{brand_slug}/webhooks": None,
    "POST /api/v1/integrations/woocommerce/{brand_slug}/webhooks": None,
    "POST /api/v1/imports/orders": (("order.imported",), False),
    "POST /api/v1/events/replay": (("event.replayed",), False),
    "POST /api/v1/brands/{brand_id}/secrets/{kind}": (("brand_secret.rotated",), False),
    "POST /api/v1/brands/{brand_id}/orders/{order_id}/reattribute": (("order.reattributed",), True),
    "POST /api/v1/fx-rates/import": (("fx_rate.imported",), False),
    "POST /api/v1/payout-runs": (("payout_run.created",), False),
    "POST /api/v1/payout-runs/{run_id}/approve": (("payout_run.approved",), True),
    "POST /api/v1/payout-runs/{run_id}/paid": (("payout_run.paid",), True),
    "POST /api/v1/payout-runs/{run_id}/reconcile": (("payout_run.reconciled",), False),
    "POST /api/v1/disputes": (("dispute.opened",), False),
    "POST /api/v1/disputes/{dispute_id}/resolve": (("dispute.rejected",), True),
    "POST /api/v1/brands/{brand_id}/briefs": (("brief.created",), False),
    "PUT /api/v1/briefs/{brief_id}": (("brief.updated",), True),
    "POST /api/v1/briefs/{brief_id}/submit": (("brief.submitted",), True),
    "POST /api/v1/brands/{brand_id}/brief-templates": (("brief_template.created",), False),
    "POST /api/v1/approvals/{step_id}/decision": (("approval.approved",), False),
    "POST /api/v1/creatives": (("creative.created",), False),
    "POST /api/v1/creatives/{creative_id}/versions": (("creative.versioned",), False),
    "POST /api/v1/creatives/{creative_id}/schedule": (("creative.scheduled",), False),
    "POST /api/v1/creatives/{creative_id}/proofs": (("creative.posted",), False),
}
MUTATING = [e for e in ENDPOINTS if e.method != "GET"]


def _events(db: Session) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def _seed_chain(db: Session) -> list[AuditEvent]:
    """Five events: a brand, its update, a creator, a user and an API key."""
    brand = factories.brand(db)
    brand_service.update_brand(
        db, factories.SYSTEM, brand_id=brand.id, data=BrandUpdate(name="Renamed", reason="rebrand")
    )
    factories.creator(db, brand.id)
    factories.api_key(db, factories.user(db, ("finance", brand.id), password=None))
    return _events(db)


def _tamper(db: Session, sql: str, **params: object) -> None:
    db.execute(text(sql), params)
    db.expire_all()  # what verify reads must come from the database, not the identity map


class TestRecord:
    def test_the_first_event_links_to_the_genesis_hash(self, db: Session) -> None:
        factories.brand(db)
        first = _events(db)[0]
        assert first.prev_hash == audit.GENESIS
        assert len(first.hash) == 64

    def test_each_event_links_to_the_hash_of_the_one_before(self, db: Session) -> None:
        events = _seed_chain(db)
        assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]

    def test_the_head_points_at_the_last_event(self, db: Session) -> None:
        events = _seed_chain(db)
        head = db.get(AuditHead, 1)
        assert head is not None
        assert (head.last_event_id, head.last_hash) == (events[-1].id, events[-1].hash)

    def test_an_event_keeps_actor_action_entity_before_after_and_reason(self, db: Session) -> None:
        brand = factories.brand(db)
        admin = factories.actor(db, ("admin", brand.id))
        brand_service.update_brand(
            db, admin, brand_id=brand.id, data=BrandUpdate(cost_center="CC-NEW", reason="finance asked")
        )
        event = _events(db)[-1]
        assert (event.actor_id, event.actor_label) == (admin.user_id, admin.label)
        assert event.action == "brand.updated"
        assert (event.entity_type, event.entity_id, event.brand_id) == ("brands", str(brand.id), brand.id)
        assert event.before is not None and event.after is not None
        assert event.before["cost_center"] != "CC-NEW"
        assert event.after["cost_center"] == "CC-NEW"
        assert event.reason == "finance asked"

    def test_an_automated_change_records_the_human_who_reviewed_it(self, db: Session) -> None:
        reviewer = factories.user(db, ("finance", None), password=None)
        brand = factories.brand(db)
        event = audit.record(
            db,
            Actor.system("job:payout"),
            "brand.updated",
            brand,
            after={"name": brand.name},
            reviewed_by_id=reviewer.id,
        )
        assert event.reviewed_by_id == reviewer.id
        assert audit.verify(db).ok

    def test_decimals_and_dates_in_a_snapshot_are_kept_as_text(self, db: Session) -> None:
        import datetime as dt
        from decimal import Decimal

        brand = factories.brand(db)
        event = audit.record(
            db,
            factories.SYSTEM,
            "brand.updated",
            brand,
            after={"rate": Decimal("8.50"), "at": dt.datetime(2026, 11, 1, tzinfo=dt.UTC)},
        )
        assert event.after == {"rate": "8.50", "at": "2026-11-01T00:00:00+00:00"}
        assert audit.verify(db).ok


class TestVerify:
    def test_an_intact_chain_verifies(self, db: Session) -> None:
        events = _seed_chain(db)
        result = audit.verify(db)
        assert (result.ok, result.checked, result.broken_event_id) == (True, len(events), None)

    def test_an_empty_chain_verifies(self, db: Session) -> None:
        assert audit.verify(db).ok

    def test_a_long_chain_is_walked_in_batches(self, db: Session) -> None:
        events = _seed_chain(db)
        assert audit.verify(db, batch=2).checked == len(events)

    def test_an_event_whose_content_was_updated_is_named(self, db: Session) -> None:
        events = _seed_chain(db)
        target = events[2]
        _tamper(db, "UPDATE audit_events SET reason = 'nothing to see' WHERE id = :id", id=target.id)
        result = audit.verify(db)
        assert not result.ok
        assert result.broken_event_id == target.id
        assert result.problem == f"event {target.id} ({target.action}): content altered"

    def test_an_event_whose_actor_was_changed_is_named(self, db: Session) -> None:
        events = _seed_chain(db)
        target = events[1]
        _tamper(db, "UPDATE audit_events SET actor_label = 'someone@else' WHERE id = :id", id=target.id)
        assert audit.verify(db).broken_event_id == target.id

    def test_an_altered_event_with_a_recomputed_hash_breaks_the_next_link(self, db: Session) -> None:
        events = _seed_chain(db)
        target = events[1]
        forged = db.get(AuditEvent, target.id)
        assert forged is not None
        forged.reason = "forged"
        new_hash = audit._digest(forged)
        db.expire_all()
        _tamper(db, "UPDATE audit_events SET reason = 'forged', hash = :h WHERE id = :id", h=new_hash, id=target.id)
        result = audit.verify(db)
        assert result.broken_event_id == events[2].id
        assert result.problem.startswith(f"event {events[2].id}: link broken")

    def test_an_event_deleted_in_the_middle_is_found_at_the_next_event(self, db: Session) -> None:
        events = _seed_chain(db)
        _tamper(db, "DELETE FROM audit_events WHERE id = :id", id=events[2].id)
        result = audit.verify(db)
        assert not result.ok
        assert result.broken_event_id == events[3].id
        assert result.problem == (
            f"event {events[3].id}: link broken — an event after event {events[1].id} was deleted or altered"
        )
        assert result.checked == 2

    def test_the_first_event_deleted_is_found(self, db: Session) -> None:
        events = _seed_chain(db)
        _tamper(db, "DELETE FROM audit_events WHERE id = :id", id=events[0].id)
        result = audit.verify(db)
        assert result.broken_event_id == events[1].id
        assert "at the start" in result.problem

    def test_the_last_event_deleted_is_named(self, db: Session) -> None:
        last = _seed_chain(db)[-1].id
        _tamper(db, "DELETE FROM audit_events WHERE id = :id", id=last)
        result = audit.verify(db)
        assert not result.ok
        assert result.broken_event_id == last
        assert result.problem == f"event {last}: the chain's last event(s) were deleted"

    def test_the_last_event_deleted_together_with_the_head_is_found(self, db: Session) -> None:
        last = _seed_chain(db)[-1].id
        _tamper(db, "DELETE FROM audit_events WHERE id = :id", id=last)
        _tamper(db, "DELETE FROM audit_head")
        result = audit.verify(db)
        assert not result.ok
        assert "head" in result.problem

    def test_an_event_appended_behind_the_heads_back_is_found(self, db: Session) -> None:
        events = _seed_chain(db)
        head = db.get(AuditHead, 1)
        assert head is not None
        saved = (head.last_event_id, head.last_hash)
        factories.brand(db)
        _tamper(db, "UPDATE audit_head SET last_event_id = :id, last_hash = :h", id=saved[0], h=saved[1])
        result = audit.verify(db)
        assert not result.ok
        assert result.broken_event_id == events[-1].id


@pytest.fixture(scope="class")
def shared(engine: Engine) -> Iterator[tuple[Connection, World, FastAPI]]:
    with shared_world(engine) as built:
        yield built


class TestEveryMutation:
    """Every mutating route, called by a role allowed to, writes actor, action, entity, after (and before
    for a change of state) to the chain, which still verifies afterwards."""

    def test_every_mutating_route_has_an_expected_audit_action(self) -> None:
        assert sorted(e.key for e in MUTATING) == sorted(AUDITED)

    @pytest.mark.parametrize("endpoint", MUTATING, ids=lambda e: e.key)
    def test_the_mutation_is_recorded_in_the_chain(
        self, endpoint: Endpoint, shared: tuple[Connection, World, FastAPI]
    ) -> None:
        connection, world, app = shared
        with rolled_back_session(connection) as db:
            client: TestClient = client_for(app, db)
            role = sorted(endpoint.allowed - {"admin"} or endpoint.allowed or {"admin"})[0]
            who = caller(db, role, world.home, everywhere=endpoint.everywhere)
            if endpoint.prepare is not None:
                endpoint.prepare(db, world.home)
            last = db.scalar(select(func.max(AuditEvent.id)))
            call = endpoint.request(world.home, who)
            headers = {} if endpoint.signed else who.headers
            answer = send(client, endpoint, call, headers, signed=endpoint.signed)
            assert answer.status_code == endpoint.ok, answer.text
            new = list(db.scalars(select(AuditEvent).where(AuditEvent.id > last).order_by(AuditEvent.id)))
            expected = AUDITED[endpoint.key]
            if expected is None:
                assert new == []
                return
            actions, has_before = expected
            assert tuple(e.action for e in new) == actions
            for event in new:
                assert ACTION.match(event.action)
                assert (event.actor_id, event.actor_label) == (who.user.id, who.user.email)
                assert event.entity_type and event.entity_id
                assert event.after
            assert (new[-1].before is not None) is has_before
            if isinstance(call.json, dict) and call.json.get("reason"):
                assert new[-1].reason == call.json["reason"]
            assert audit.verify(db).ok


class TestVerifyEndpoint:
    def test_an_intact_chain_is_reported_ok(self, client: TestClient, db: Session) -> None:
        events = _seed_chain(db)
        key = factories.api_key(db, factories.user(db, ("admin", None), password=None))
        answer = client.get("/api/v1/audit/verify", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200
        # the admin user and its key are two more events
        assert answer.json() == {"ok": True, "checked": len(events) + 2, "broken_event_id": None, "problem": ""}

    def test_an_altered_event_is_reported_by_id(self, client: TestClient, db: Session) -> None:
        events = _seed_chain(db)
        key = factories.api_key(db, factories.user(db, ("admin", None), password=None))
        _tamper(db, "UPDATE audit_events SET reason = 'x' WHERE id = :id", id=events[1].id)
        body = client.get("/api/v1/audit/verify", headers={"Authorization": f"Bearer {key}"}).json()
        assert body["ok"] is False
        assert body["broken_event_id"] == events[1].id
        assert body["problem"].startswith(f"event {events[1].id} ")

    def test_a_deleted_event_is_reported_at_the_next_one(self, client: TestClient, db: Session) -> None:
        events = _seed_chain(db)
        key = factories.api_key(db, factories.user(db, ("admin", None), password=None))
        _tamper(db, "DELETE FROM audit_events WHERE id = :id", id=events[2].id)
        body = client.get("/api/v1/audit/verify", headers={"Authorization": f"Bearer {key}"}).json()
        assert (body["ok"], body["broken_event_id"]) == (False, events[3].id)


runner = CliRunner()


def _seed_committed() -> list[tuple[int, str]]:
    with unit_of_work() as session:
        _seed_chain(session)
    with session_on_settings() as session:
        return [(e.id, e.action) for e in _events(session)]


def session_on_settings() -> Session:
    from clearline.config import get_settings

    return session_on(get_settings().database_url)


def _sql(url: str, sql: str, **params: object) -> None:
    with session_on(url) as session:
        session.execute(text(sql), params)
        session.commit()


class TestVerifyCommand:
    def test_help_describes_the_command(self) -> None:
        result = runner.invoke(cli, ["audit", "verify", "--help"])
        assert result.exit_code == 0
        assert "hash chain" in result.output

    def test_an_intact_chain_passes(self, committed: str) -> None:
        events = _seed_committed()
        result = runner.invoke(cli, ["audit", "verify"])
        assert result.exit_code == 0, result.output
        assert f"audit chain intact: {len(events)} events verified" in result.stdout

    def test_an_updated_row_fails_naming_the_event(self, committed: str) -> None:
        events = _seed_committed()
        target_id, action = events[2]
        _sql(committed, "UPDATE audit_events SET after = NULL WHERE id = :id", id=target_id)
        result = runner.invoke(cli, ["audit", "verify"])
        assert result.exit_code == 1
        assert result.stderr.strip() == (
            f"error: audit chain broken: event {target_id} ({action}): content altered (2 events verified before it)"
        )

    def test_a_row_deleted_in_the_middle_fails_naming_the_event_after_the_gap(self, committed: str) -> None:
        events = _seed_committed()
        _sql(committed, "DELETE FROM audit_events WHERE id = :id", id=events[2][0])
        result = runner.invoke(cli, ["audit", "verify"])
        assert result.exit_code == 1
        line = result.stderr.strip()
        assert "\n" not in line
        assert line.startswith(f"error: audit chain broken: event {events[3][0]}: link broken")
        assert f"after event {events[1][0]}" in line

    def test_the_last_row_deleted_fails_naming_it(self, committed: str) -> None:
        events = _seed_committed()
        _sql(committed, "DELETE FROM audit_events WHERE id = :id", id=events[-1][0])
        result = runner.invoke(cli, ["audit", "verify"])
        assert result.exit_code == 1
        line = result.stderr.strip()
        assert "\n" not in line
        assert f"event {events[-1][0]}: the chain's last event(s) were deleted" in line

    def test_verifying_writes_nothing(self, committed: str) -> None:
        events = _seed_committed()
        runner.invoke(cli, ["audit", "verify"])
        with session_on(committed) as session:
            assert len(_events(session)) == len(events)

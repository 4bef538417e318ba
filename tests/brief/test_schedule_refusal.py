"""A refused schedule is itself on the record: its `schedule.refused` audit event survives the 409 (through the
API and the page), on a database the requests really commit to, and the audit chain still verifies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from clearline.app import create_app
from clearline.brief import creative
from clearline.cli.main import app as cli
from clearline.kit.db import unit_of_work
from clearline.models import AuditEvent, ScheduledPost
from tests import factories
from tests.brief.conftest import approved_brief, build_program
from tests.committed import session_on
from tests.web.conftest import log_in

runner = CliRunner()
PASSWORD = "correct horse battery"


@pytest.fixture
def waiting(committed: str) -> Iterator[dict[str, object]]:
    """Committed: a draft creative by a contracted creator (no live link, not approved) and a social ops user."""
    with unit_of_work() as session:
        brand, campaign, creator, actors = build_program(session)
        brief = approved_brief(session, brand, campaign, actors)
        made = creative.create_creative(
            session, actors["social_ops"], brief_id=brief.id, creator_id=creator.id, channel="instagram"
        )
        ops = factories.user(session, ("social_ops", brand.id))
        key = factories.api_key(session, ops)
        setup = {"brief_id": brief.id, "creative_id": made.id, "email": ops.email, "key": key}
    yield setup


def _refusals(url: str, creative_id: int) -> list[AuditEvent]:
    with session_on(url) as session:
        return list(
            session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "schedule.refused", AuditEvent.entity_id == str(creative_id)
                )
            )
        )


def _chain_verifies() -> None:
    result = runner.invoke(cli, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "audit chain intact" in result.stdout


class TestRefusedScheduleIsRecorded:
    def test_the_api_answers_409_and_the_refusal_stays_in_the_audit_chain(
        self, committed: str, waiting: dict[str, object]
    ) -> None:
        later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
        with TestClient(create_app()) as client:
            answer = client.post(
                f"/api/v1/creatives/{waiting['creative_id']}/schedule",
                json={"scheduled_for": later},
                headers={"authorization": f"Bearer {waiting['key']}"},
            )
        assert answer.status_code == 409
        assert [e["loc"] for e in answer.json()["errors"]] == [["link"], ["approval"]]
        [event] = _refusals(committed, int(waiting["creative_id"]))  # type: ignore[call-overload]
        assert [m["item"] for m in event.after["missing"]] == ["link", "approval"]
        with session_on(committed) as session:
            assert session.scalar(select(ScheduledPost.id)) is None
        _chain_verifies()

    def test_the_page_lists_what_is_missing_and_the_refusal_stays_in_the_audit_chain(
        self, committed: str, waiting: dict[str, object]
    ) -> None:
        with TestClient(create_app()) as client:
            client.headers["accept"] = "text/html"
            token = log_in(client, str(waiting["email"]), PASSWORD)
            answer = client.post(
                f"/briefs/{waiting['brief_id']}/creatives/{waiting['creative_id']}/schedule",
                data={"scheduled_for": "", "csrf_token": token},
            )
        assert answer.status_code == 409
        assert "no live, signed-off sales link" in answer.text
        assert "the creative is not approved for instagram" in answer.text
        [event] = _refusals(committed, int(waiting["creative_id"]))  # type: ignore[call-overload]
        assert event.actor_label == waiting["email"]
        _chain_verifies()

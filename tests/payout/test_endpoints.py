"""The payout API with API keys: runs, four eyes, the two files, reconciliation and disputes."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from fastapi.testclient import TestClient

from tests import factories
from tests.payout.program import Program
from tests.payout.test_export import DETAIL_HEADER, PAYOUT_HEADER


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Keys:
    def __init__(self, program: Program) -> None:
        db = program.db
        self.finance = bearer(factories.api_key(db, program.finance_user))
        self.finance2 = bearer(factories.api_key(db, program.finance2_user))
        self.anna = bearer(factories.api_key(db, program.payees["anna"].user))
        self.ben = bearer(factories.api_key(db, program.payees["ben"].user))
        self.marketing = bearer(factories.api_key(db, factories.user(db, ("marketing", program.brand.id))))
        other = factories.brand(db)
        self.outsider = bearer(factories.api_key(db, factories.user(db, ("finance", other.id))))


@pytest.fixture
def keys(program: Program) -> Keys:
    program.creator("anna")
    program.creator("ben")
    program.order("anna", day=5, lines=[("SKU-A1", 2, "49.00")])
    program.order("ben", day=6, lines=[("SKU-B1", 1, "24.00")])
    keys = Keys(program)
    # The app's unit of work rolls back to the last commit on an error answer: keep the setup below it.
    program.db.commit()
    return keys


def create(client: TestClient, program: Program, headers: dict[str, str], **body: object):  # type: ignore[no-untyped-def]
    payload = {"brand_id": program.brand.id, "as_of": dt.datetime.now(dt.UTC).isoformat(), "minimum": "0.01"}
    payload.update(body)
    return client.post("/api/v1/payout-runs", json=payload, headers=headers)


class TestRunEndpoints:
    def test_finance_creates_a_run_another_approves_it_and_both_files_download(self, client, program, keys):
        created = create(client, program, keys.finance)
        assert created.status_code == 201, created.text
        run = created.json()
        assert (run["status"], run["totals"], len(run["lines"])) == ("draft", {"USD": "20.00"}, 2)
        assert run["created_by_label"] == program.finance.label

        own = client.post(f"/api/v1/payout-runs/{run['id']}/approve", headers=keys.finance)
        assert own.status_code == 403 and "four eyes" in own.json()["detail"]
        approved = client.post(f"/api/v1/payout-runs/{run['id']}/approve", headers=keys.finance2)
        assert approved.status_code == 200
        assert (approved.json()["status"], approved.json()["approved_by_label"]) == ("approved", program.finance2.label)

        payout = client.get(f"/api/v1/payout-runs/{run['id']}/payout.csv", headers=keys.finance)
        assert payout.status_code == 200 and payout.headers["content-type"].startswith("text/csv")
        assert payout.text.splitlines()[0] == PAYOUT_HEADER
        assert {r["run_approved_by"] for r in csv.DictReader(io.StringIO(payout.text))} == {program.finance2.label}
        detail = client.get(f"/api/v1/payout-runs/{run['id']}/detail.csv", headers=keys.finance)
        assert detail.text.splitlines()[0] == DETAIL_HEADER and len(detail.text.splitlines()) == 3

        listed = client.get(f"/api/v1/brands/{program.brand.id}/payout-runs", headers=keys.finance2)
        assert [r["id"] for r in listed.json()] == [run["id"]]
        paid = client.post(f"/api/v1/payout-runs/{run['id']}/paid?reference=BATCH-7", headers=keys.finance)
        assert paid.json()["status"] == "paid"

    def test_the_same_run_again_is_409_nothing_to_pay(self, client, program, keys):
        run = create(client, program, keys.finance).json()
        client.post(f"/api/v1/payout-runs/{run['id']}/approve", headers=keys.finance2)
        again = create(client, program, keys.finance2, as_of=run["as_of"])
        assert again.status_code == 409
        assert again.json()["detail"].startswith("nothing to pay as of")

    def test_a_future_or_naive_as_of_is_422_naming_the_field(self, client, program, keys):
        future = create(
            client, program, keys.finance, as_of=(dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
        )
        assert future.status_code == 422 and future.json()["errors"] == [{"loc": ["as_of"], "msg": "in the future"}]
        naive = create(client, program, keys.finance, as_of="2026-09-01T00:00:00")
        assert naive.status_code == 422 and naive.json()["errors"][0]["loc"] == ["as_of"]

    def test_only_finance_on_the_brand_reaches_runs(self, client, program, keys):
        assert create(client, program, keys.marketing).status_code == 403
        assert create(client, program, keys.anna).status_code == 403
        assert create(client, program, keys.outsider).status_code == 404
        assert create(client, program, {}).status_code == 401
        run = create(client, program, keys.finance).json()
        for who, status in ((keys.anna, 403), (keys.marketing, 403), (keys.outsider, 404)):
            assert client.get(f"/api/v1/payout-runs/{run['id']}", headers=who).status_code == status
            assert client.post(f"/api/v1/payout-runs/{run['id']}/approve", headers=who).status_code == status
        client.post(f"/api/v1/payout-runs/{run['id']}/approve", headers=keys.finance2)
        assert client.get(f"/api/v1/payout-runs/{run['id']}/payout.csv", headers=keys.anna).status_code == 403
        assert client.get(f"/api/v1/payout-runs/{run['id']}/detail.csv", headers=keys.outsider).status_code == 404

    def test_a_draft_cannot_be_downloaded(self, client, program, keys):
        run = create(client, program, keys.finance).json()
        answer = client.get(f"/api/v1/payout-runs/{run['id']}/payout.csv", headers=keys.finance)
        assert answer.status_code == 409


class TestReconcileEndpoint:
    def _approved(self, client, program, keys) -> dict:  # type: ignore[no-untyped-def, type-arg]
        run = create(client, program, keys.finance).json()
        return client.post(f"/api/v1/payout-runs/{run['id']}/approve", headers=keys.finance2).json()

    def test_the_paid_file_is_matched_line_by_line(self, client, program, keys):
        run = self._approved(client, program, keys)
        anna, ben = sorted(run["lines"], key=lambda x: x["total_amount"], reverse=True)
        paid = (
            f"payout_line_id,paid_amount,currency,paid_at,reference\n"
            f"{anna['id']},16.00,USD,2026-11-20T10:00:00Z,B-1\n{ben['id']},3.00,USD,2026-11-20T10:00:00Z,B-2\n"
        )
        answer = client.post(
            f"/api/v1/payout-runs/{run['id']}/reconcile",
            headers=keys.finance,
            files={"file": ("paid.csv", paid, "text/csv")},
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["matched"], body["mismatched"], body["missing"], body["unknown"], body["accuracy_bp"]) == (
            1,
            1,
            0,
            0,
            5000,
        )
        (mismatch,) = [d for d in body["details"] if d["status"] == "mismatched"]
        assert (mismatch["expected"], mismatch["paid"]) == ("4.00", "3.00")

    def test_a_bad_paid_file_is_422_naming_line_and_column(self, client, program, keys):
        run = self._approved(client, program, keys)
        paid = "payout_line_id,paid_amount,currency,paid_at,reference\n1,abc,USD,,B-1\n"
        answer = client.post(
            f"/api/v1/payout-runs/{run['id']}/reconcile",
            headers=keys.finance,
            files={"file": ("paid.csv", paid, "text/csv")},
        )
        assert answer.status_code == 422
        assert answer.json()["errors"] == [
            {"loc": ["line 2", "paid_amount"], "msg": "paid_amount: 'abc' is not a decimal number"}
        ]


class TestDisputeEndpoints:
    def test_the_creator_disputes_and_finance_upholds_with_an_adjustment(self, client, program, keys):
        line_id = program.commission_lines(program.order("anna", day=7))[0].id
        program.db.commit()
        opened = client.post(
            "/api/v1/disputes", json={"commission_line_id": line_id, "reason": "wrong tier"}, headers=keys.anna
        )
        assert opened.status_code == 201, opened.text
        dispute = opened.json()
        assert client.get("/api/v1/disputes", headers=keys.anna).json()[0]["id"] == dispute["id"]
        assert client.get("/api/v1/disputes", headers=keys.ben).json() == []

        refused = client.post(
            f"/api/v1/disputes/{dispute['id']}/resolve",
            headers=keys.anna,
            json={"decision": "upheld", "reason": "I say so", "adjustment": "100"},
        )
        assert refused.status_code == 404
        resolved = client.post(
            f"/api/v1/disputes/{dispute['id']}/resolve",
            headers=keys.finance,
            json={"decision": "upheld", "reason": "bonus agreed", "adjustment": "1.50"},
        )
        assert resolved.status_code == 200
        assert (resolved.json()["status"], resolved.json()["adjustment_amount"]) == ("upheld", 150)

        run = create(client, program, keys.finance).json()
        anna = next(x for x in run["lines"] if x["payee_id"] == program.payees["anna"].payee_id)
        assert (anna["commission_amount"], anna["adjustment_amount"], anna["total_amount"]) == (2400, 150, 2550)

    def test_someone_else_cannot_dispute_the_line(self, client, program, keys):
        line_id = program.commission_lines(program.order("anna", day=7))[0].id
        program.db.commit()
        body = {"commission_line_id": line_id, "reason": "mine, surely"}
        assert client.post("/api/v1/disputes", json=body, headers=keys.ben).status_code == 404
        assert client.post("/api/v1/disputes", json=body, headers=keys.finance).status_code == 403
        assert (
            client.post(
                "/api/v1/disputes", json={"commission_line_id": line_id, "reason": ""}, headers=keys.anna
            ).status_code
            == 422
        )

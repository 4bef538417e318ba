"""`clearline secrets rekey`: after the data key (or the secret key it is derived from) changes, every brand
signing secret is re-sealed under the new key, all or nothing, and running it again changes nothing."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from click.testing import Result
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from clearline.auth.actor import Actor
from clearline.cli.main import app as cli
from clearline.config import get_settings
from clearline.ingest import signatures
from clearline.kit import sealing
from clearline.kit.db import engine_for
from clearline.kit.sealing import UnreadableSecretError
from clearline.models import AuditEvent, BrandSecret
from tests import factories

NEW_KEY = base64.b64encode(bytes(range(32))).decode()
THIRD_KEY = base64.b64encode(bytes(range(100, 132))).decode()


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


@pytest.fixture
def sealed_under_the_old_key(committed: str) -> Iterator[dict[tuple[int, str], str]]:
    """Two brands' secrets sealed under the key derived from the secret key; then the data key is set to a new
    one, as an operator would. Yields the secrets in clear by (brand id, kind)."""
    clear: dict[tuple[int, str], str] = {}
    with Session(engine_for(committed), expire_on_commit=False) as session:
        for slug in ("rekey-a", "rekey-b"):
            brand = factories.brand(session, slug=slug)
            for kind, given in (("postback", None), ("shopify", f"shpss_{slug}")):
                secret, _ = signatures.rotate(session, Actor.system("test"), brand_id=brand.id, kind=kind, secret=given)
                clear[(brand.id, kind)] = secret
        session.commit()
    old_secret_key = get_settings().secret_key
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLEARLINE_DATA_KEY", NEW_KEY)
        patch.setenv("CLEARLINE_OLD_SECRET_KEY", old_secret_key)
        get_settings.cache_clear()
        try:
            yield clear
        finally:
            get_settings.cache_clear()
    get_settings.cache_clear()


def _opened(url: str) -> dict[tuple[int, str], str]:
    with Session(engine_for(url)) as session:
        return {
            (row.brand_id, row.kind): signatures.open_secret(row.sealed_secret, brand_id=row.brand_id, kind=row.kind)
            for row in session.scalars(select(BrandSecret))
        }


class TestRekey:
    def test_every_secret_is_resealed_under_the_new_key_and_audited(self, committed, sealed_under_the_old_key):
        with pytest.raises(UnreadableSecretError):
            _opened(committed)  # the new key opens nothing yet

        result = run("secrets", "rekey")

        assert result.exit_code == 0, result.output
        assert "4 re-sealed, 0 already under the current key" in result.stdout
        assert _opened(committed) == sealed_under_the_old_key
        with Session(engine_for(committed)) as session:
            events = session.scalars(select(AuditEvent).where(AuditEvent.action == "brand_secret.rekeyed")).all()
        assert len(events) == 2  # one per brand

    def test_running_it_again_changes_nothing(self, committed, sealed_under_the_old_key):
        run("secrets", "rekey")
        with Session(engine_for(committed)) as session:
            before = sorted(session.scalars(select(BrandSecret.sealed_secret)))

        again = run("secrets", "rekey")

        assert again.exit_code == 0, again.output
        assert "0 re-sealed, 4 already under the current key" in again.stdout
        with Session(engine_for(committed)) as session:
            assert sorted(session.scalars(select(BrandSecret.sealed_secret))) == before

    def test_a_secret_under_neither_key_stops_it_naming_the_row_and_nothing_is_resealed(
        self, committed, sealed_under_the_old_key
    ):
        with Session(engine_for(committed)) as session:
            stray = session.scalars(select(BrandSecret).order_by(BrandSecret.id.desc())).first()
            assert stray is not None
            stray.sealed_secret = signatures.seal_secret(
                "x", brand_id=stray.brand_id, kind=stray.kind, key=sealing.parse_data_key(THIRD_KEY)
            )
            session.commit()
            stray_id = stray.id
            before = sorted(session.scalars(select(BrandSecret.sealed_secret)))

        result = run("secrets", "rekey")

        assert result.exit_code == 1
        assert f"brand_secrets row {stray_id}" in result.output and "nothing was re-sealed" in result.output
        with Session(engine_for(committed)) as session:
            assert sorted(session.scalars(select(BrandSecret.sealed_secret))) == before

    def test_the_old_data_key_can_be_given_instead(self, committed, sealed_under_the_old_key):
        old = base64.b64encode(sealing.derive_data_key(get_settings().secret_key)).decode()

        result = run("secrets", "rekey", env={"CLEARLINE_OLD_SECRET_KEY": "", "CLEARLINE_OLD_DATA_KEY": old})

        assert result.exit_code == 0, result.output
        assert _opened(committed) == sealed_under_the_old_key

    @pytest.mark.parametrize(
        "env, message",
        [
            ({"CLEARLINE_OLD_SECRET_KEY": ""}, "give exactly one of"),
            ({"CLEARLINE_OLD_DATA_KEY": "c2hvcnQ="}, "give exactly one of"),  # with the secret key too
            ({"CLEARLINE_OLD_SECRET_KEY": "", "CLEARLINE_OLD_DATA_KEY": "c2hvcnQ="}, "--old-data-key: the data key"),
        ],
    )
    def test_a_missing_or_bad_old_key_is_refused(self, committed, sealed_under_the_old_key, env, message):
        result = run("secrets", "rekey", env=env)

        assert result.exit_code != 0
        assert message in result.output

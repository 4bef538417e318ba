"""The Alembic migrations, run from nothing, build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

import clearline.models  # noqa: F401  (registers every table on the metadata)
from clearline.kit.db import Base
from tests.conftest import ROOT


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "compare_server_default": False, "target_metadata": Base.metadata},
        )
        return compare_metadata(context, Base.metadata)


class TestMigrations:
    def test_a_freshly_migrated_database_matches_the_models(self, engine: Engine) -> None:
        assert _diff(engine) == []

    def test_every_model_table_exists_after_migrating(self, engine: Engine) -> None:
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables

    def test_the_database_is_at_the_single_head_revision(self, engine: Engine) -> None:
        heads = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_heads()
        assert len(heads) == 1, f"migrations branch: heads {heads}"
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_heads() == tuple(heads)

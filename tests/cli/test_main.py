"""The `clearline` command line: every command has --help, succeeds, and fails with one line and exit 1.

Commands open their own unit of work and commit, so these tests run against the ``committed`` database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import inspect, select
from typer.testing import CliRunner

from clearline.cli.main import app as cli
from clearline.kit.db import engine_for, unit_of_work
from clearline.models import ApiKey, Creator, RoleGrant, RosterEntry, Sku, User
from tests import factories
from tests.committed import session_on
from tests.conftest import _fresh_database, drop_database, use_database

runner = CliRunner()

COMMANDS = [
    ["db", "upgrade"],
    ["users", "create"],
    ["apikeys", "create"],
    ["import", "skus"],
    ["import", "creators"],
    ["audit", "verify"],
]


def run(*args: str, input: str | None = None) -> Result:
    return runner.invoke(cli, list(args), input=input)


def reason(result: Result) -> str:
    """The one-line reason a failed command gives: the first line on stderr."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines and lines[0].startswith("error: "), result.stderr
    return lines[0]


def seed_brand(slug: str = "acme") -> int:
    with unit_of_work() as session:
        return factories.brand(session, slug=slug).id


def seed_user(*grants: tuple[str, int | None]) -> str:
    with unit_of_work() as session:
        return factories.user(session, *grants, password=None).email


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class TestHelp:
    def test_the_top_level_help_lists_the_command_groups(self) -> None:
        result = run("--help")
        assert result.exit_code == 0
        for group in ("db", "users", "apikeys", "import", "audit"):
            assert group in result.output

    @pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
    def test_every_command_has_help(self, command: list[str]) -> None:
        result = run(*command, "--help")
        assert result.exit_code == 0
        assert "Usage:" in result.output and " ".join(command) in result.output


@pytest.fixture
def empty_database(tmp_path: Path, database_url: str) -> Iterator[str]:
    """A database with no tables at all, which the settings point at for the test."""
    url = _fresh_database(tmp_path, "upgrade")
    use_database(url)
    try:
        yield url
    finally:
        use_database(database_url)
        engine_for(url).dispose()
        drop_database(url)


class TestDbUpgrade:
    def test_an_empty_database_is_brought_to_the_latest_revision(self, empty_database: str) -> None:
        result = run("db", "upgrade")
        assert result.exit_code == 0, result.output
        assert "database is at the latest revision" in result.stdout
        tables = set(inspect(engine_for(empty_database)).get_table_names())
        assert {"alembic_version", "users", "brands", "audit_events", "contracts"} <= tables

    def test_upgrading_twice_changes_nothing(self, empty_database: str) -> None:
        assert run("db", "upgrade").exit_code == 0
        assert run("db", "upgrade").exit_code == 0

    def test_an_unreachable_database_fails_with_one_line(self, tmp_path: Path, database_url: str) -> None:
        use_database(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
        try:
            result = run("db", "upgrade")
        finally:
            use_database(database_url)
        assert reason(result).startswith("error: migration failed: (sqlite3.OperationalError) unable to open")
        assert len(result.stderr.splitlines()) == 1


class TestUsersCreate:
    def test_a_user_is_created_with_grants_per_brand(self, committed: str) -> None:
        brand_id = seed_brand("acme")
        result = run(
            "users", "create", "--email", "Fin@Example.com", "--name", "Fin", "--role", "finance:acme",
            "--role", "marketing", "--password", "long enough pw",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        with session_on(committed) as session:
            user = session.scalars(select(User).where(User.email == "fin@example.com")).one()
            grants = {
                (g.role, g.brand_id) for g in session.scalars(select(RoleGrant).where(RoleGrant.user_id == user.id))
            }
        assert f"created user {user.id} <Fin@Example.com>" in result.stdout
        assert grants == {("finance", brand_id), ("marketing", None)}
        assert user.password_hash is not None and user.password_hash.startswith("$argon2")

    def test_the_password_is_prompted_for_when_not_given(self, committed: str) -> None:
        result = run(
            "users", "create", "--email", "p@example.com", "--name", "P", input="long enough pw\nlong enough pw\n"
        )
        assert result.exit_code == 0, result.output
        with session_on(committed) as session:
            assert session.scalars(select(User.password_hash).where(User.email == "p@example.com")).one()

    def test_a_creator_user_is_bound_to_its_handle(self, committed: str) -> None:
        brand_id = seed_brand("acme")
        with unit_of_work() as session:
            creator_id = factories.creator(session, brand_id, handle="anna").id
        result = run(
            "users", "create", "--email", "anna@example.com", "--name", "Anna", "--role", "creator:acme",
            "--creator", "anna", "--password", "",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        with session_on(committed) as session:
            assert session.scalars(select(User.creator_id).where(User.email == "anna@example.com")).one() == creator_id

    def test_an_unknown_brand_fails_naming_it(self, committed: str) -> None:
        result = run(
            "users", "create", "--email", "x@example.com", "--name", "X", "--role", "finance:nope", "--password", ""
        )
        assert reason(result) == "error: no brand 'nope'"

    def test_an_unknown_role_fails_and_the_details_name_it(self, committed: str) -> None:
        result = run("users", "create", "--email", "x@example.com", "--name", "X", "--role", "wizard", "--password", "")
        assert reason(result) == "error: invalid role grants"
        assert "grants › 0 › role: unknown role 'wizard'" in result.stderr
        with session_on(committed) as session:
            assert session.scalars(select(User)).all() == []

    def test_an_unknown_creator_handle_fails_naming_it(self, committed: str) -> None:
        seed_brand("acme")
        result = run(
            "users", "create", "--email", "x@example.com", "--name", "X", "--role", "creator:acme",
            "--creator", "ghost", "--password", "",
        )  # fmt: skip
        assert reason(result) == "error: no creator 'ghost'"

    def test_acting_as_a_user_who_is_not_an_admin_is_refused(self, committed: str) -> None:
        brand_id = seed_brand("acme")
        marketer = seed_user(("marketing", brand_id))
        result = run("users", "create", "--email", "x@example.com", "--name", "X", "--password", "", "--as", marketer)
        assert reason(result) == "error: requires role admin on all brands"

    def test_an_e_mail_in_use_is_refused(self, committed: str) -> None:
        email = seed_user()
        result = run("users", "create", "--email", email, "--name", "X", "--password", "")
        assert reason(result) == f"error: a user with e-mail {email} exists"


class TestApikeysCreate:
    def test_the_secret_is_printed_once_and_stored_hashed(self, committed: str) -> None:
        email = seed_user(("finance", None))
        result = run("apikeys", "create", "--email", email, "--name", "erp")
        assert result.exit_code == 0, result.output
        secret = result.stdout.strip().splitlines()[-1]
        assert secret.startswith("clk_")
        with session_on(committed) as session:
            key = session.scalars(select(ApiKey)).one()
        assert (key.name, key.key_hash) == ("erp", hashlib.sha256(secret.encode()).hexdigest())

    def test_an_unknown_user_fails_naming_it(self, committed: str) -> None:
        assert reason(run("apikeys", "create", "--email", "ghost@example.com")) == "error: no user ghost@example.com"

    def test_a_non_admin_cannot_create_a_key_for_someone_else(self, committed: str) -> None:
        owner, other = seed_user(), seed_user(("finance", None))
        result = run("apikeys", "create", "--email", owner, "--as", other)
        assert reason(result) == "error: requires role admin on all brands"
        with session_on(committed) as session:
            assert session.scalars(select(ApiKey)).all() == []


class TestImportSkus:
    def test_a_good_file_is_imported_and_a_second_run_updates(self, committed: str, tmp_path: Path) -> None:
        seed_brand("acme")
        path = write(tmp_path, "skus.csv", factories.SKU_CSV)
        first = run("import", "skus", str(path), "--brand", "acme")
        assert first.exit_code == 0, first.output
        assert "SKUs: 3 created, 0 updated" in first.stdout
        assert "SKUs: 0 created, 3 updated" in run("import", "skus", str(path), "--brand", "acme").stdout

    def test_a_bad_file_fails_with_one_line_then_every_bad_row_and_imports_nothing(
        self, committed: str, tmp_path: Path
    ) -> None:
        seed_brand("acme")
        text = factories.SKU_CSV + "BAD-1,X,c,a,ten,USD,1.00,,1\nBAD-2,Y,c,a,1.00,USD,,,1\n"
        result = run("import", "skus", str(write(tmp_path, "skus.csv", text)), "--brand", "acme")
        assert reason(result) == (
            "error: SKU import: 2 bad row(s), nothing imported; "
            "first: line 5, price: price: 'ten' is not a decimal number"
        )
        assert "line 6 › unit_cost: give exactly one of unit_cost and margin_pct" in result.stderr
        with session_on(committed) as session:
            assert session.scalars(select(Sku)).all() == []

    def test_a_missing_file_fails_naming_it(self, committed: str, tmp_path: Path) -> None:
        seed_brand("acme")
        missing = tmp_path / "nope.csv"
        assert reason(run("import", "skus", str(missing), "--brand", "acme")) == f"error: {missing}: no such file"

    def test_an_unknown_brand_fails_naming_it(self, committed: str, tmp_path: Path) -> None:
        path = write(tmp_path, "skus.csv", factories.SKU_CSV)
        assert reason(run("import", "skus", str(path), "--brand", "ghost")) == "error: no brand 'ghost'"

    def test_acting_as_a_user_without_brand_ops_is_refused(self, committed: str, tmp_path: Path) -> None:
        brand_id = seed_brand("acme")
        marketer = seed_user(("marketing", brand_id))
        path = write(tmp_path, "skus.csv", factories.SKU_CSV)
        result = run("import", "skus", str(path), "--brand", "acme", "--as", marketer)
        assert reason(result) == f"error: requires role brand_ops on brand {brand_id}"


class TestImportCreators:
    def test_a_good_file_is_imported(self, committed: str, tmp_path: Path) -> None:
        seed_brand("acme")
        path = write(tmp_path, "creators.csv", "handle,name,channels\nanna,Anna,instagram;tiktok\nben,Ben,\n")
        result = run("import", "creators", str(path), "--brand", "acme")
        assert result.exit_code == 0, result.output
        assert "creators: 2 created" in result.stdout
        with session_on(committed) as session:
            assert sorted(session.scalars(select(Creator.handle))) == ["anna", "ben"]

    def test_the_creators_can_join_an_agencys_roster_in_the_same_run(self, committed: str, tmp_path: Path) -> None:
        brand_id = seed_brand("acme")
        with unit_of_work() as session:
            agency_id = factories.agency(session, brand_id).id
        path = write(tmp_path, "creators.csv", "handle,name\nanna,Anna\n")
        result = run("import", "creators", str(path), "--brand", "acme", "--agency", str(agency_id))
        assert result.exit_code == 0, result.output
        with session_on(committed) as session:
            assert len(session.scalars(select(RosterEntry).where(RosterEntry.agency_id == agency_id)).all()) == 1

    def test_a_bad_file_fails_with_one_line_and_imports_nothing(self, committed: str, tmp_path: Path) -> None:
        seed_brand("acme")
        path = write(tmp_path, "creators.csv", "handle,name\nanna,Anna\n-x,Bad\n")
        result = run("import", "creators", str(path), "--brand", "acme")
        assert reason(result).startswith("error: creator import: 1 bad row(s), nothing imported; first: line 3, handle")
        with session_on(committed) as session:
            assert session.scalars(select(Creator)).all() == []

    def test_an_unknown_agency_rolls_the_whole_run_back(self, committed: str, tmp_path: Path) -> None:
        seed_brand("acme")
        path = write(tmp_path, "creators.csv", "handle,name\nanna,Anna\n")
        result = run("import", "creators", str(path), "--brand", "acme", "--agency", "999999")
        assert reason(result) == "error: no agency 999999"
        with session_on(committed) as session:
            assert session.scalars(select(Creator)).all() == []


class TestAuditVerify:
    def test_a_fresh_database_has_an_intact_empty_chain(self, committed: str) -> None:
        result = run("audit", "verify")
        assert result.exit_code == 0
        assert "audit chain intact: 0 events verified" in result.stdout

    def test_every_command_above_leaves_a_verifiable_chain(self, committed: str, tmp_path: Path) -> None:
        seed_brand("acme")
        run("import", "skus", str(write(tmp_path, "skus.csv", factories.SKU_CSV)), "--brand", "acme")
        run("users", "create", "--email", "a@example.com", "--name", "A", "--password", "")
        run("apikeys", "create", "--email", "a@example.com")
        result = run("audit", "verify")
        assert result.exit_code == 0
        assert "audit chain intact: 4 events verified" in result.stdout

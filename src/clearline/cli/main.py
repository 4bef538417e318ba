"""`clearline` — the command line. Every command has --help and exits non-zero with a one-line reason."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.table import Table

from clearline.cli.common import (
    AsOption,
    brand_id_for,
    command_unit,
    console,
    fail,
    read_file,
    resolve_actor,
)

app = typer.Typer(
    help="Clearline: creator programs that pay only for sales.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Users and role grants.", no_args_is_help=True)
apikeys_app = typer.Typer(help="API keys (hashed; shown once).", no_args_is_help=True)
import_app = typer.Typer(help="CSV imports (all rows or none).", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
secrets_app = typer.Typer(help="Brand signing secrets (encrypted at rest).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(apikeys_app, name="apikeys")
app.add_typer(import_app, name="import")
app.add_typer(audit_app, name="audit")
app.add_typer(ledger_app, name="ledger")
app.add_typer(secrets_app, name="secrets")


def _register_domains() -> None:
    from clearline.cli import links, orders, payouts

    app.add_typer(links.app, name="links")
    app.add_typer(payouts.app, name="payouts")
    app.add_typer(orders.events_app, name="events")
    app.add_typer(orders.explain_app, name="explain")
    app.add_typer(orders.commissions_app, name="commissions")
    app.add_typer(orders.orders_app, name="orders")
    import_app.command("orders")(orders.import_orders)
    import_app.command("fx")(orders.import_fx)


_register_domains()


def _upgrade() -> None:
    from alembic import command
    from alembic.config import Config

    root = Path(__file__).resolve().parents[3]
    ini = root / "alembic.ini"
    if not ini.exists():
        fail(f"alembic.ini not found at {ini}")
    command.upgrade(Config(str(ini)), "head")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to CLEARLINE_DATABASE_URL."""
    try:
        _upgrade()
    except Exception as exc:  # noqa: BLE001 - any failure becomes one line
        fail(f"migration failed: {exc}")
    console.print("[green]database is at the latest revision[/]")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(None, help="Port (default: $PORT or 8000)."),
    workers: int = typer.Option(1, help="Worker processes; with more than one, run `clearline worker` for jobs."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve the web UI, the API and the redirect hot path (periodic jobs in-process with one worker)."""
    import uvicorn

    if workers > 1:
        os.environ["CLEARLINE_RUN_JOBS"] = "false"
    uvicorn.run(
        "clearline.app:create_served_app",
        factory=True,
        # uvicorn's HTTP protocol with redirects answered ahead of ASGI (clearline/link/protocol.py says why)
        http="clearline.link.protocol:RedirectProtocol",
        host=host,
        workers=workers,
        port=port or int(os.environ.get("PORT", "8000")),
        proxy_headers=True,
        log_level=log_level,
        access_log=False,
    )


@app.command()
def demo(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(None, help="Port (default: $PORT or 8000)."),
    no_serve: bool = typer.Option(False, "--no-serve", help="Migrate and seed only."),
) -> None:
    """Migrate, seed the pilot program (idempotent), print the logins and serve."""
    from clearline.config import get_settings
    from clearline.demo.seed import seed_pilot

    _upgrade()
    from clearline.demo.simulate import pilot_briefs, pilot_payout, simulate_pilot

    with command_unit() as session:
        result = seed_pilot(session)
    with command_unit() as session:
        simulation = simulate_pilot(session)
    with command_unit() as session:
        briefs = pilot_briefs(session)
    with command_unit() as session:
        payout = pilot_payout(session)
    port = port or int(os.environ.get("PORT", "8000"))
    console.print(f"database: {get_settings().database_url}")
    console.print("pilot seeded" if result.created else "pilot already seeded")
    if not simulation.skipped:
        console.print(
            f"30-day pilot simulated: {simulation.clicks} clicks, {simulation.orders} orders, "
            f"{simulation.refunds} returns, {simulation.chargebacks} chargeback, "
            f"{simulation.cleared} commission lines cleared"
        )
    if briefs:
        console.print(
            f"briefs: {briefs['briefs']}, content scheduled for {briefs['scheduled']} creators, "
            f"{briefs['refused']} schedule refused (no approval yet), "
            f"{briefs['breached']} SLA breach escalated"
        )
    if not payout.skipped:
        console.print(
            f"payout run {payout.run_id}: {payout.lines} payee line(s), "
            + ", ".join(f"{v} {k}" for k, v in (payout.totals or {}).items())
            + f"; approved by a second finance user, exported, paid and reconciled — payout accuracy "
            f"{payout.accuracy_bp / 100:.2f} %"
        )
    table = Table(title=f"Demo logins — http://{host}:{port}/")
    table.add_column("e-mail")
    table.add_column("password")
    for email, password in result.logins:
        table.add_row(email, password)
    console.print(table)
    if not no_serve:
        serve(host=host, port=port, workers=1, log_level="info")


@app.command()
def worker(
    jobs: bool = typer.Option(True, "--jobs/--no-jobs", help="Run the periodic jobs (link health, expiry, SLAs)."),
    drain: bool = typer.Option(
        None,
        "--drain/--no-drain",
        help="Process stored orders and refunds. Default: only when CLEARLINE_DRAIN_IN_SERVE=false, so serve and "
        "the worker do not both drain.",
        show_default=False,
    ),
    batch: int = typer.Option(200, min=1, help="Inbox events per drain transaction."),
    poll: float = typer.Option(0.25, min=0.01, help="Seconds between looks at the inbox when it was empty."),
    lag_target: float = typer.Option(
        2.0, min=0, help="While postbacks arrive, how far processing may lag before it takes over 10 % of the time."
    ),
    lag_limit: float = typer.Option(30.0, min=0, help="The lag at which it takes 90 % (linear in between)."),
) -> None:
    """Run background work outside `serve`: the periodic jobs and the inbox drainer. Stops gracefully on
    SIGINT or SIGTERM: the drain batch in progress is committed, the jobs consumer finishes its task."""
    import signal
    import threading

    from clearline.config import get_settings
    from clearline.ingest.drainer import ArrivalWatch, Drainer
    from clearline.kit.db import get_engine

    settings = get_settings()
    if drain is None:
        drain = not settings.drain_in_serve
    elif drain and settings.drain_in_serve and settings.database_url.startswith("sqlite"):
        # Two drainers on SQLite would queue on its one writer, and SKIP LOCKED means nothing there.
        fail("--drain on SQLite needs CLEARLINE_DRAIN_IN_SERVE=false (serve drains the inbox itself)")
    if not (jobs or drain):
        fail("nothing to run: no jobs, and the inbox is drained by serve (CLEARLINE_DRAIN_IN_SERVE is true)")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # (start_consumer keeps the handlers it finds)
        signal.signal(signum, lambda *_: stop.set())
    consumer = drainer = None
    if jobs:
        from clearline.kit.jobs import start_consumer

        consumer = start_consumer()
    if drain:
        # Beside the intake's process it still shares the machine and the database: while postbacks arrive it
        # keeps to the same adaptive share as serve's own drainer (clearline/ingest/drainer.py).
        engine = get_engine()
        drainer = Drainer(
            engine,
            batch_size=batch,
            poll_interval=poll,
            busy=ArrivalWatch(engine),
            lag_target=lag_target,
            lag_limit=lag_limit,  # (one at or under the target: full pressure past the target)
        )
        drainer.start()
    running = ", ".join(name for name, on in (("jobs", jobs), ("drain", drain)) if on)
    console.print(f"worker running ({running}); Ctrl-C to stop")
    while not stop.wait(0.5):
        pass
    if drainer is not None:
        drainer.stop()
        console.print(f"drainer stopped: {drainer.processed} processed, {drainer.failed} failed")
    if consumer is not None:
        consumer.stop(graceful=True)


@users_app.command("create")
def users_create(
    email: str = typer.Option(..., help="Login e-mail."),
    name: str = typer.Option(..., help="Display name."),
    role: list[str] = typer.Option([], help="role or role:brand-slug; repeat for more grants."),
    password: str = typer.Option(None, help="Password (prompted when omitted; empty for API-only)."),
    creator: str = typer.Option(None, help="Creator handle this user acts as."),
    as_: str = AsOption,
) -> None:
    """Create a user with role grants, e.g. --role finance:acme-beauty --role admin."""
    from clearline.auth import service
    from clearline.creator import repository as creator_repository

    if password is None:
        password = (
            typer.prompt("Password", hide_input=True, confirmation_prompt=True, default="", show_default=False) or None
        )
    with command_unit() as session:
        actor = resolve_actor(session, as_)
        grants: list[tuple[str, int | None]] = []
        for item in role:
            name_, _, slug = item.partition(":")
            grants.append((name_, brand_id_for(session, slug) if slug else None))
        creator_id = None
        if creator:
            found = creator_repository.creators_by_handle(session, [creator])
            if not found:
                fail(f"no creator {creator!r}")
            creator_id = found[creator].id
        # `--password ""` means an API-only user, the same as an empty answer at the prompt.
        user = service.create_user(
            session, actor, email=email, name=name, password=password or None, grants=grants, creator_id=creator_id
        )
        user_id = user.id
    console.print(f"created user {user_id} <{email}>")


@apikeys_app.command("create")
def apikeys_create(
    email: str = typer.Option(..., help="The user the key belongs to."),
    name: str = typer.Option("cli", help="A label for the key."),
    as_: str = AsOption,
) -> None:
    """Create an API key; the secret is printed once and only its hash is stored."""
    from sqlalchemy import select

    from clearline.auth import service
    from clearline.models import User

    with command_unit() as session:
        actor = resolve_actor(session, as_)
        user = session.scalar(select(User).where(User.email == email.lower()))
        if user is None:
            fail(f"no user {email}")
        _, secret = service.create_api_key(session, actor, user_id=user.id, name=name)  # type: ignore[union-attr]
    console.print("API key (shown once, store it now):")
    print(secret)


@import_app.command("skus")
def import_skus(
    file: Path = typer.Argument(
        ..., help="CSV: sku,name,category,tier,price,currency,unit_cost,margin_pct,return_rate_pct"
    ),
    brand: str = typer.Option(..., help="Brand slug."),
    as_: str = AsOption,
) -> None:
    """Import or update SKUs; one bad row and nothing is imported."""
    from clearline.catalog import service

    data = read_file(file)
    with command_unit() as session:
        report = service.import_skus(
            session,
            resolve_actor(session, as_),
            brand_id=brand_id_for(session, brand),
            data=data,
            reason=f"import {file.name}",
        )
    console.print(f"SKUs: {report.created} created, {report.updated} updated")


@import_app.command("creators")
def import_creators(
    file: Path = typer.Argument(..., help="CSV: handle,name,email,channels,country,vendor_id,payout_reference"),
    brand: str = typer.Option(..., help="Brand slug."),
    agency: int = typer.Option(None, help="Also add them to this agency's roster (id)."),
    as_: str = AsOption,
) -> None:
    """Import creators (channels separated by ';'); one bad row and nothing is imported."""
    from clearline.creator import service

    data = read_file(file)
    with command_unit() as session:
        actor = resolve_actor(session, as_)
        report = service.import_creators(
            session, actor, brand_id=brand_id_for(session, brand), data=data, reason=f"import {file.name}"
        )
        if agency is not None:
            service.import_roster(session, actor, agency_id=agency, data=data)
    console.print(f"creators: {report.created} created")


@secrets_app.command("rekey")
def secrets_rekey(
    old_data_key: str = typer.Option(
        None, envvar="CLEARLINE_OLD_DATA_KEY", help="The CLEARLINE_DATA_KEY the secrets were sealed under."
    ),
    old_secret_key: str = typer.Option(
        None,
        envvar="CLEARLINE_OLD_SECRET_KEY",
        help="Or the CLEARLINE_SECRET_KEY they were sealed under, when no data key was set.",
    ),
    as_: str = AsOption,
) -> None:
    """Re-seal every brand signing secret under the current data key after it (or the secret key it is derived
    from) changed. All or nothing; running it again changes nothing. Give the old key by environment variable
    rather than on the command line, where the shell history and the process list would show it."""
    from clearline.ingest import signatures
    from clearline.kit import sealing

    if (old_data_key is None) == (old_secret_key is None):
        fail("give exactly one of --old-data-key and --old-secret-key")
    if old_secret_key is not None:
        old = sealing.derive_data_key(old_secret_key)
    else:
        try:
            old = sealing.parse_data_key(old_data_key)
        except ValueError as exc:
            fail(f"--old-data-key: {exc}")
    with command_unit() as session:
        counts = signatures.rekey(session, resolve_actor(session, as_), old_key=old)
    console.print(f"signing secrets: {counts['resealed']} re-sealed, {counts['current']} already under the current key")


approvals_app = typer.Typer(help="Approval SLAs.", no_args_is_help=True)
app.add_typer(approvals_app, name="approvals")


@approvals_app.command("check")
def approvals_check() -> None:
    """Mark overdue approval steps as breached and escalate them; exit 2 when any is overdue."""
    from clearline.auth.actor import Actor
    from clearline.brief import approval

    with command_unit() as session:
        overdue = approval.check_breaches(session, Actor.system("cli:approvals check"))
        lines = [
            f"step {s.id}: {s.kind} of {s.subject_type} {s.subject_id} ({s.role}) due {s.due_at:%Y-%m-%d %H:%M}"
            for s in overdue
        ]
    for line in lines:
        console.print(line)
    console.print(f"{len(lines)} newly overdue step(s) escalated")
    if lines:
        raise typer.Exit(code=2)


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain; exit 1 naming the first broken link."""
    from clearline.audit import service

    with command_unit() as session:
        result = service.verify(session)
    if not result.ok:
        fail(f"audit chain broken: {result.problem} ({result.checked} events verified before it)")
    console.print(f"[green]audit chain intact[/]: {result.checked} events verified")


@db_app.command("check")
def db_check() -> None:
    """Check what the schema leaves to the code instead of foreign keys: every ledger posting has its entry and
    account and every entry balances; every inbox event's brand exists. And that every brand signing secret
    opens under the current data key. Exit 1 naming the problems."""
    from clearline.ingest import integrity as inbox
    from clearline.ingest import signatures
    from clearline.ledger import service as ledger

    with command_unit() as session:
        report = ledger.integrity(session)
        orphans = inbox.orphans(session)
        sealed = signatures.unreadable(session)
    problems = [f"ledger: {problem}" for problem in report.problems[:20]] + [f"inbox: {line}" for line in orphans]
    problems += [f"secrets: {line}" for line in sealed]
    if problems:
        fail(f"{len(problems)} problem(s) found (at most 20 of each kind shown): " + "; ".join(problems))
    console.print(
        f"[green]database intact[/]: {report.entries} ledger entries and {report.postings} postings; "
        "every inbox event's brand exists; every signing secret opens"
    )


@ledger_app.command("check")
def ledger_check() -> None:
    """Check every posting has its entry and account and every entry balances; exit 1 naming the first problem."""
    from clearline.ledger import service as ledger

    with command_unit() as session:
        report = ledger.integrity(session)
    if not report.ok:
        fail(f"ledger broken: {report.problems[0]} ({len(report.problems)} problem(s) found)")
    console.print(f"[green]ledger intact[/]: {report.entries} entries, {report.postings} postings checked")


if __name__ == "__main__":
    app()

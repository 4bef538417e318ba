"""`clearline payouts run|approve|export|paid|reconcile`."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import typer
from rich.progress import Progress
from rich.table import Table

from clearline.cli.common import AsOption, brand_id_for, command_unit, console, fail, read_file, resolve_actor
from clearline.kit.money import format_minor

app = typer.Typer(help="Payout runs, the finance files and reconciliation.", no_args_is_help=True)


@app.command("run")
def run(brand: str = typer.Option(..., help="Brand slug."),
        as_of: str = typer.Option(..., help="Pay what cleared by this date/time (ISO 8601, UTC; not in the future)."),
        minimum: str = typer.Option("50.00", help="Minimum payout; smaller balances carry forward."),
        as_: str = AsOption) -> None:
    """Create a draft payout run (finance). Running it again pays nothing twice."""
    from clearline.kit.clock import parse_datetime, utcnow
    from clearline.payout import service

    try:
        when = parse_datetime(as_of if "T" in as_of else as_of + "T23:59:59Z")
    except ValueError:
        fail(f"--as-of {as_of!r} is not an ISO date")
    if "T" not in as_of:
        when = min(when, utcnow())  # a bare date means the end of that day, or now if that day is today
    with command_unit() as session, Progress(console=console, transient=True) as progress:
        progress.add_task("building the run", total=None)
        created = service.create_run(session, resolve_actor(session, as_), brand_id=brand_id_for(session, brand),
                                     as_of=when, minimum=Decimal(minimum))
        run_id, lines, totals = created.id, service.run_lines(session, created.id), service.totals(session, created.id)
        carried = created.carried_forward
    table = Table("line", "payee", "currency", "commission", "retainer", "adjustment", "clawback", "total",
                  title=f"payout run {run_id} (draft)")
    for line in lines:
        m = lambda v, c=line.currency: format_minor(v, c)  # noqa: E731
        table.add_row(str(line.id), f"{line.payee_type} {line.payee_name}", line.currency, m(line.commission_amount),
                      m(line.retainer_amount), m(line.adjustment_amount), m(line.clawback_amount), m(line.total_amount))
    console.print(table)
    console.print("totals: " + ", ".join(f"{v} {k}" for k, v in totals.items()) +
                  (f"; {len(carried)} payee(s) below the minimum carried forward" if carried else ""))


@app.command("approve")
def approve(run_id: int = typer.Argument(...), as_: str = AsOption) -> None:
    """Approve a run (a finance user other than its creator)."""
    from clearline.payout import service

    with command_unit() as session:
        approved = service.approve_run(session, resolve_actor(session, as_), run_id=run_id)
        who = approved.approved_by_label
    console.print(f"run {run_id} approved by {who}")


@app.command("export")
def export(run_id: int = typer.Argument(...),
           out: Path = typer.Option(Path("."), help="Directory for payout-run-N.csv and payout-run-N-detail.csv."),
           as_: str = AsOption) -> None:
    """Write the payout CSV (INTERFACES §6) and the detail CSV (§7) of an approved run."""
    from clearline.payout import export as export_service

    if not out.is_dir():
        fail(f"{out} is not a directory")
    with command_unit() as session:
        payout, detail = export_service.export(session, resolve_actor(session, as_), run_id=run_id)
    (out / f"payout-run-{run_id}.csv").write_text(payout)
    (out / f"payout-run-{run_id}-detail.csv").write_text(detail)
    console.print(f"wrote {out / f'payout-run-{run_id}.csv'} and {out / f'payout-run-{run_id}-detail.csv'}")


@app.command("paid")
def paid(run_id: int = typer.Argument(...), reference: str = typer.Option("", help="Bank batch reference."),
         as_: str = AsOption) -> None:
    """Mark an approved run paid."""
    from clearline.payout import service

    with command_unit() as session:
        service.mark_paid(session, resolve_actor(session, as_), run_id=run_id, reference=reference)
    console.print(f"run {run_id} marked paid")


@app.command("reconcile")
def reconcile(run_id: int = typer.Argument(...),
              file: Path = typer.Argument(..., help="CSV: payout_line_id,paid_amount,currency,paid_at,reference"),
              as_: str = AsOption) -> None:
    """Match finance's paid file to the run; exit 2 unless every line matched."""
    from clearline.payout import export as export_service

    data = read_file(file)
    with command_unit() as session:
        result = export_service.reconcile(session, resolve_actor(session, as_), run_id=run_id, data=data)
        counts = (result.matched, result.mismatched, result.missing, result.unknown, result.accuracy_bp)
        problems = [d for d in result.details if d["status"] != "matched"]
    for d in problems:
        amounts = f" (expected {d.get('expected')}, paid {d.get('paid')})" if d["status"] == "mismatched" else ""
        console.print(f"  line {d['payout_line_id']}: {d['status']}{amounts}")
    matched, mismatched, missing, unknown, accuracy = counts
    console.print(f"matched {matched}, mismatched {mismatched}, missing {missing}, unknown {unknown}; "
                  f"payout accuracy {accuracy / 100:.2f} %")
    if mismatched or missing or unknown:
        raise typer.Exit(code=2)

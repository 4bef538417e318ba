"""`clearline import orders|fx`, `clearline events replay`, `clearline explain order`, `clearline commissions`,
`clearline orders reattribute`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from clearline.cli.common import (
    AsOption,
    brand_id_for,
    command_unit,
    console,
    err_console,
    fail,
    read_file,
    resolve_actor,
)
from clearline.kit.errors import ValidationFailedError

events_app = typer.Typer(help="The inbox of incoming events.", no_args_is_help=True)
explain_app = typer.Typer(help="Explain commissions end to end.", no_args_is_help=True)
commissions_app = typer.Typer(help="Commission clearing and reserves.", no_args_is_help=True)
orders_app = typer.Typer(help="Orders: explicit, audited re-attribution.", no_args_is_help=True)


def import_orders(
    file: Path = typer.Argument(..., help="CSV: order_id,created_at,currency,sku,quantity,unit_price,discount,"
                                          "coupon_code,click_id,customer_id,new_customer"),
    brand: str = typer.Option(..., help="Brand slug."),
    quarantine: bool = typer.Option(False, help="Import the good orders; write bad rows to a rejects file."),
    rejects: Path = typer.Option(None, help="Where --quarantine writes rejected rows (default FILE.rejects.csv)."),
    as_: str = AsOption,
) -> None:
    """Import orders from CSV; by default one bad row and nothing is imported."""
    from clearline.brand import repository
    from clearline.ingest import csv_import

    data = read_file(file)
    # Store first, process after: the checked orders are committed to the inbox before any is processed, so
    # a failure while processing leaves them stored for `clearline events replay`.
    with command_unit() as session, Progress(console=console, transient=True) as progress:
        progress.add_task(f"checking and storing {file.name}", total=None)
        actor = resolve_actor(session, as_)
        brand_row = repository.get(session, actor, brand_id_for(session, brand))
        try:
            report, accepted = csv_import.accept_orders(session, actor, brand=brand_row, data=data,
                                                        quarantine=quarantine, filename=file.name)
        except ValidationFailedError as exc:
            _refuse_file(exc)
        csv_import.record_import(session, actor, brand=brand_row, report=report, filename=file.name)
    with command_unit() as session, Progress(console=console, transient=True) as progress:
        progress.add_task(f"processing {len(accepted.waiting)} order(s)", total=None)
        csv_import.process_accepted(session, report, accepted)
    console.print(f"orders: {report.orders} imported, {report.duplicates} already known, "
                  f"{report.failed_processing} waiting for replay")
    if report.first_accepted_at is not None:
        console.print(f"the same file was imported whole on {report.first_accepted_at:%Y-%m-%d %H:%M:%S} UTC: "
                      "nothing stored again")
    if report.rejected:
        target = rejects or file.with_suffix(".rejects.csv")
        target.write_text(report.rejects_csv())
        console.print(f"[yellow]{len(report.rejected)} row(s) rejected → {target}[/]")


def _refuse_file(exc: ValidationFailedError) -> None:
    """Every bad row, not only the first few: the file is corrected from this list (nothing was imported)."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", exc.message), highlight=False, soft_wrap=True)
    for item in exc.details or []:
        loc = " › ".join(str(part) for part in item.get("loc", []))
        err_console.print(f"  {loc}: {item.get('msg')}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code=1)


def import_fx(file: Path = typer.Argument(..., help="CSV: day,base,quote,rate (1 base = rate quote)."),
              as_: str = AsOption) -> None:
    """Import FX rates (finance)."""
    from clearline.commission import fx

    data = read_file(file)
    with command_unit() as session:
        count = fx.import_rates(session, resolve_actor(session, as_), data=data)
    console.print(f"FX rates: {count} imported")


@events_app.command("replay")
def replay(brand: str = typer.Option(None, help="Only this brand."),
           all_: bool = typer.Option(False, "--all", help="Also re-run handled events (changes nothing)."),
           event: list[int] = typer.Option([], help="Only these inbox event ids.")) -> None:
    """Process stored events again — unhandled ones by default. Safe to run any number of times."""
    from clearline.ingest import service

    with command_unit() as session:
        counts = service.replay(session, brand_id=brand_id_for(session, brand) if brand else None,
                                include_handled=all_, event_ids=event or None)
    console.print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    if counts["failed"]:
        raise typer.Exit(code=2)


@explain_app.command("order")
def explain_order(order_id: str = typer.Argument(...), brand: str = typer.Option(..., help="Brand slug."),
                  as_json: bool = typer.Option(False, "--json", help="Print JSON."), as_: str = AsOption) -> None:
    """Order → attribution reason → rule → contract version → rate → amount → ledger transfers."""
    from clearline.commission import explain

    with command_unit() as session:
        result = explain.explain_order(session, resolve_actor(session, as_), brand_id=brand_id_for(session, brand),
                                       order_id=order_id)
    if as_json:
        print(json.dumps(result, default=str, indent=2))
        return
    console.print(f"[bold]Order {result['order_id']}[/] {result['created_at']:%Y-%m-%d %H:%M} UTC, "
                  f"{result['currency']}, via {result['source']}")
    lines = Table("line", "sku", "qty", "net", "refunded", "eligibility")
    for line in result["lines"]:
        lines.add_row(str(line["line_no"]), line["sku"], str(line["quantity"]), line["net_revenue"],
                      line["refunded"], line["ineligible_reason"] or "eligible")
    console.print(lines)
    for attribution in result["attributions"]:
        mark = "current" if attribution["is_current"] else "superseded"
        console.print(f"attribution ({mark}, {attribution['via']}): {attribution['reason']}")
    for c in result["commissions"]:
        console.print(f"\n[bold]commission {c['commission_line_id']}[/] line {c['order']['line_no']} "
                      f"{c['order']['sku']}: {c['rule']['text']} → {c['amount']} {c['currency']} "
                      f"(reversed {c['reversed']}, net {c['net']}); contract {c['contract']['contract_id']} "
                      f"v{c['contract']['version']}; eligible {c['eligible_at']:%Y-%m-%d}")
        for t in c["ledger"]:
            postings = ", ".join(f"{p['account']} {p['amount']}" for p in t["postings"])
            console.print(f"  {t['kind']:<24} {postings}")
    if not result["commissions"]:
        console.print("no commission lines")


@commissions_app.command("clear")
def clear(brand: str = typer.Option(None, help="Only this brand."),
          as_of: str = typer.Option(None, help="ISO date/time (default now).")) -> None:
    """Move commissions whose verification window has ended to available; release due reserves."""
    from clearline.commission import service
    from clearline.kit.clock import parse_datetime

    try:
        now = parse_datetime(as_of) if as_of else None
    except ValueError:
        fail(f"--as-of {as_of!r} is not an ISO date/time")
    with command_unit() as session:
        brand_id = brand_id_for(session, brand) if brand else None
        cleared = service.clear_due(session, now=now, brand_id=brand_id)
        released = service.release_reserves(session, now=now, brand_id=brand_id)
    console.print(f"cleared {cleared} commission line(s); released {released} reserve(s)")


@commissions_app.command("close-period")
def close_period(brand: str = typer.Option(..., help="Brand slug."),
                 period: str = typer.Option(..., help="Month, YYYY-MM."), as_: str = AsOption) -> None:
    """Post the month's retainers and volume-tier bonuses (idempotent)."""
    from clearline.commission import period as period_service

    with command_unit() as session:
        report = period_service.close_period(session, resolve_actor(session, as_),
                                             brand_id=brand_id_for(session, brand), period=period)
    for rule, contract_id, currency, amount in report.lines:
        from clearline.kit.money import format_minor

        console.print(f"{rule:<14} contract {contract_id}: {format_minor(amount, currency)} {currency}")
    console.print(f"period {period} closed: {len(report.lines)} new line(s)")


@orders_app.command("reattribute")
def reattribute(order_id: str = typer.Argument(..., help="The order's id as the shop sent it."),
                brand: str = typer.Option(..., help="Brand slug."),
                creator: str = typer.Option(None, help="Handle of the creator who should get the order."),
                nobody: bool = typer.Option(False, "--nobody", help="Attribute the order to no one."),
                via: str = typer.Option(None, help="Evidence for the new creator: coupon, click or utm (needed "
                                                   "when no touch on the order names them)."),
                reason: str = typer.Option(..., help="Why; kept in the audit trail."),
                as_: str = AsOption) -> None:
    """Move an order to another creator (finance): old commissions reversed or clawed back, new ones accrue."""
    from sqlalchemy import select

    from clearline.attribution import reattribution
    from clearline.models import Creator

    if bool(creator) == nobody:
        fail("give exactly one of --creator HANDLE or --nobody")
    with command_unit() as session:
        actor = resolve_actor(session, as_)
        brand_id = brand_id_for(session, brand)
        creator_id = None
        if creator:
            creator_id = session.scalar(select(Creator.id).where(Creator.handle == creator.strip().lower()))
            if creator_id is None:
                fail(f"no creator {creator!r}")
        result = reattribution.reattribute(session, actor, brand_id=brand_id, order_id=order_id,
                                           creator_id=creator_id, campaign_id=None, reason=reason, via=via)
    who = f"@{creator}" if creator else "no one"
    console.print(f"order {order_id} re-attributed to {who}: reversed {result['reversed_amount']} minor units, "
                  f"{len(result['commission_line_ids'])} new commission line(s)")

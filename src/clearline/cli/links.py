"""`clearline links ...`: issue, sign off, rotate and health-check tracked links."""

from __future__ import annotations

import httpx
import typer
from rich.console import Console
from rich.measure import Measurement
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import select

from clearline.cli.common import AsOption, brand_id_for, command_unit, console, fail, resolve_actor
from clearline.models import Campaign

app = typer.Typer(help="Tracked links: issue, sign off, rotate, health checks.", no_args_is_help=True)


def _campaign_id(session, brand: str, slug: str) -> int:  # type: ignore[no-untyped-def]
    found = session.scalar(
        select(Campaign.id).where(Campaign.brand_id == brand_id_for(session, brand), Campaign.slug == slug)
    )
    if found is None:
        fail(f"no campaign {slug!r} on brand {brand!r}")
    return found


def _link_id(session, actor, code: str) -> int:  # type: ignore[no-untyped-def]
    """The id of the link the actor may see under ``code`` (an unseen link is "no link", named by its code)."""
    from clearline.link import repository

    return repository.get_link_by_code(session, actor, code.strip()).id


@app.command("issue")
def issue(
    brand: str = typer.Option(..., help="Brand slug."),
    campaign: str = typer.Option(..., help="Campaign slug."),
    creator: str = typer.Option(..., help="Creator handle."),
    channel: str = typer.Option(..., help="Channel (becomes utm_source), e.g. instagram."),
    url: str = typer.Option(..., help="Destination on one of the brand's allowed domains."),
    sku: str = typer.Option("", help="Optional SKU for a per-SKU link."),
    single_use: bool = typer.Option(False, help="The link works once (high-value products)."),
    as_: str = AsOption,
) -> None:
    """Issue the canonical link for a creator and campaign; it waits for ops sign-off."""
    from clearline.link import repository, service

    with command_unit() as session:
        actor = resolve_actor(session, as_)
        campaign_id = _campaign_id(session, brand, campaign)
        handle = creator.strip().lower()
        found = repository.readable_creators_by_handle(session, actor, [handle])
        if handle not in found:
            fail(f"no creator {creator!r}")
        link = service.issue_link(
            session,
            actor,
            campaign_id=campaign_id,
            creator_id=found[handle].id,
            channel=channel,
            destination_url=url,
            sku=sku,
            is_single_use=single_use,
        )
        code, due = link.code, link.signoff_due_at
    console.print(f"issued /r/{code} — pending sign-off, due {due.isoformat() if due else '?'}")


@app.command("signoff")
def signoff(
    code: str = typer.Argument(..., help="The link's code."),
    comment: str = typer.Option("", help="Sign-off comment."),
    as_: str = AsOption,
) -> None:
    """Sign a link off so it goes live (needs the creator's accepted contract)."""
    from clearline.link import service

    with command_unit() as session:
        actor = resolve_actor(session, as_)
        link = service.sign_off(session, actor, link_id=_link_id(session, actor, code), comment=comment)
        status = link.status
    console.print(f"/r/{code} is {status}")


@app.command("rotate")
def rotate(
    code: str = typer.Argument(...),
    url: str = typer.Option(..., help="New destination."),
    reason: str = typer.Option(..., help="Why (kept in the audit trail)."),
    as_: str = AsOption,
) -> None:
    """Point a link at a new destination; same code, audited."""
    from clearline.link import service

    with command_unit() as session:
        actor = resolve_actor(session, as_)
        link = service.rotate(
            session, actor, link_id=_link_id(session, actor, code), destination_url=url, reason=reason
        )
        destination = link.destination_url
    console.print(f"/r/{code} now points at {destination}")


@app.command("list")
def list_links(brand: str = typer.Option(..., help="Brand slug."), as_: str = AsOption) -> None:
    """Links of a brand with status, readiness and health."""
    from clearline.link import repository, service

    with command_unit() as session:
        actor = resolve_actor(session, as_)
        table = Table("code", "creator", "sku", "channel", "status", "contract", "sign-off", "health", "expires")
        links = repository.list_links(session, actor, brand_id=brand_id_for(session, brand))
        handles = repository.creator_handles(session, [link.creator_id for link in links])
        for link in links:
            ready = service.readiness(session, link)
            table.add_row(
                link.code,
                handles.get(link.creator_id, str(link.creator_id)),
                link.sku,
                link.channel,
                link.status,
                "✓" if ready["contract"] else "✗",
                "✓" if ready["signoff"] else "✗",
                link.health,
                link.expires_at.date().isoformat(),
            )
    # Never squeeze the table below its natural width: a wrapped or truncated code cannot be copied,
    # and piped output (no terminal, 80 columns) would otherwise cut every row.
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    Console(width=max(console.width, natural)).print(table)


@app.command("check")
def check(
    brand: str = typer.Option(None, help="Only this brand."),
    timeout: float = typer.Option(10.0, help="Seconds per landing page."),
) -> None:
    """Probe every live link's landing page; broken ones alert ops and the creator, >2 h escalates."""
    from clearline.auth.actor import Actor
    from clearline.link import health, repository

    with (
        command_unit() as session,
        httpx.Client(timeout=timeout, headers={"user-agent": "clearline-linkcheck"}) as client,
    ):
        brand_id = brand_id_for(session, brand) if brand else None
        total = repository.count_live(session, brand_id=brand_id)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("checking links", total=total)

            original = client.get

            def counted(url, **kwargs):  # type: ignore[no-untyped-def]
                try:
                    return original(url, **kwargs)
                finally:
                    progress.advance(task)

            client.get = counted  # type: ignore[method-assign]
            report = health.check_links(session, Actor.system("cli:links check"), client=client, brand_id=brand_id)
    console.print(
        f"checked {report.checked}: {report.ok} ok, {len(report.broken)} broken "
        f"{report.broken or ''}, {len(report.escalated)} escalated, {len(report.recovered)} recovered"
    )
    if report.broken or report.escalated:
        raise typer.Exit(code=2)

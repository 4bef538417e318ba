"""What every CLI command shares: the acting user, the unit of work and one-line failures."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy import select
from sqlalchemy.orm import Session

from clearline.auth import service as auth_service
from clearline.auth.actor import Actor
from clearline.kit.db import unit_of_work
from clearline.kit.errors import ClearlineError, NotFoundError

console = Console()
err_console = Console(stderr=True)


def fail(message: str, details: list[dict] | None = None) -> None:  # type: ignore[type-arg]
    # The reason stays on one line: only its first line (a driver error appends a "Background" link),
    # and never wrapped at the terminal's width (soft_wrap), so scripts can grep it.
    reason = next((line.strip() for line in str(message).splitlines() if line.strip()), "failed")
    err_console.print(Text.assemble(("error:", "bold red"), " ", reason), highlight=False, soft_wrap=True)
    for item in (details or [])[:50]:
        loc = " › ".join(str(part) for part in item.get("loc", []))
        err_console.print(f"  {loc}: {item.get('msg')}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code=1)


@contextmanager
def command_unit() -> Iterator[Session]:
    """The command is the unit of work; a domain error becomes one red line and exit code 1."""
    try:
        with unit_of_work() as session:
            yield session
    except ClearlineError as exc:
        fail(exc.message, exc.details if isinstance(exc.details, list) else None)
    except OSError as exc:
        fail(str(exc))


def resolve_actor(session: Session, email: str | None) -> Actor:
    """`--as EMAIL` acts with that user's roles; without it the CLI acts as the operator (admin)."""
    email = email or os.environ.get("CLEARLINE_ACTOR")
    if not email:
        return Actor.system(f"cli:{getpass.getuser()}")
    from clearline.models import User

    user = session.scalar(select(User).where(User.email == email.lower()))
    if user is None:
        raise NotFoundError(f"no user {email}")
    return auth_service.actor_for(session, user)


def brand_id_for(session: Session, slug: str) -> int:
    from clearline.brand import repository

    brand = repository.by_slug(session, slug)
    if brand is None:
        raise NotFoundError(f"no brand {slug!r}")
    return brand.id


def read_file(path: Path) -> bytes:
    if not path.is_file():
        fail(f"{path}: no such file")
    return path.read_bytes()


AsOption = typer.Option(None, "--as", help="Act as this user's e-mail (default: the operator, as admin).")
